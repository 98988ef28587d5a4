//! The Basalt leader: the only node clients talk to. It speaks the PostgreSQL wire
//! protocol, parses Redshift SQL, keeps the durable catalog, plans queries with DataFusion
//! and sends plan fragments to the workers that own the data.
//!
//! Modules, each importing only those after it (`tests/layout.rs` checks):
//! [`wire`] (the PostgreSQL protocol, authentication, TLS) → [`session`] (transaction
//! control and dispatch) → [`commands`] (one module per statement family, over the
//! statement context) → [`plan`] (the DataFusion session, tables as DataFusion sees
//! them, distributed execution, EXPLAIN) → [`system`] (pg_catalog, information_schema
//! and the STL/STV/SVV tables) → [`catalog`] (durable metadata) and [`cluster`] (workers
//! and slices) → [`sql`] (the Redshift dialect and the one SQL↔Arrow↔PostgreSQL type
//! map). [`error`] is the one error-to-SQLSTATE mapping.

pub mod catalog;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod error;
pub mod plan;
pub mod session;
pub mod sql;
pub mod system;
pub mod wire;

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::info;

pub use config::LeaderConfig;
pub use error::{LeaderError, Result};

/// A started leader: its bound addresses, the cluster membership, and the task serving.
pub struct LeaderHandle {
    pub pg_addr: std::net::SocketAddr,
    pub cluster_addr: std::net::SocketAddr,
    pub cluster: Arc<cluster::Cluster>,
    pub serving: tokio::task::JoinHandle<Result<()>>,
}

/// Start a leader: open the catalog, bind the cluster endpoint for workers and the
/// PostgreSQL endpoint for clients, and serve both in the background.
pub async fn start_leader(config: LeaderConfig) -> Result<LeaderHandle> {
    let catalog = Arc::new(catalog::Catalog::open(
        &Path::new(&config.data_dir).join("catalog"),
        config.slice_count(),
    )?);
    let snapshot = catalog.snapshot();
    if snapshot.slice_count != config.slice_count() {
        return Err(LeaderError::Catalog(format!(
            "this cluster was created with {} slices; it cannot start with {} workers x {} slices",
            snapshot.slice_count, config.workers, config.slices_per_worker
        )));
    }
    // Fail before binding anything if the admin password is missing off loopback.
    config.admin_password()?;
    let cluster = Arc::new(cluster::Cluster::new(
        config.workers,
        config.slices_per_worker,
        config.storage_url()?,
    ));
    // Bound here, served on the liveness runtime (see `basalt_worker::node::liveness`).
    let cluster_listener = std::net::TcpListener::bind(&config.cluster_listen)?;
    cluster_listener.set_nonblocking(true)?;
    let pg_listener = TcpListener::bind(&config.listen).await?;
    let pg_addr = pg_listener.local_addr()?;
    let cluster_addr = cluster_listener.local_addr()?;
    info!(%pg_addr, %cluster_addr, storage = %cluster.storage_url, "leader started");
    let started_us = now_us();
    let engine = Arc::new(plan::engine::Engine::new(catalog, cluster.clone(), config)?);
    // Files of writes that a crash cut short are referenced by no table: delete them.
    let sweep = catalog::gc::sweep_orphans(
        engine.storage.clone(),
        engine.catalog.snapshot(),
        started_us,
    );
    tokio::spawn(async move {
        let deleted = sweep.await;
        if deleted > 0 {
            info!(
                deleted,
                "deleted files no table references (left by an earlier crash)"
            );
        }
    });
    let serving_cluster = cluster.clone();
    let cluster_serving = basalt_worker::node::liveness::spawn(async move {
        serving_cluster
            .serve(TcpListener::from_std(cluster_listener)?)
            .await
    });
    let serving = tokio::spawn(async move {
        tokio::select! {
            r = cluster_serving => r.unwrap_or_else(|e| Err(crate::error::panicked_join(e))),
            r = wire::serve_pg(engine, pg_listener) => r,
        }
    });
    Ok(LeaderHandle {
        pg_addr,
        cluster_addr,
        cluster,
        serving,
    })
}

/// Run a leader until it fails or the process stops.
pub async fn run_leader(config: LeaderConfig) -> Result<()> {
    let handle = start_leader(config).await?;
    handle
        .serving
        .await
        .map_err(|e| LeaderError::Catalog(format!("leader task failed: {e}")))?
}

pub(crate) use basalt_worker::recent::now_us;
