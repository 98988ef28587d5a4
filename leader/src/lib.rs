//! The Basalt leader: the only node clients talk to. It speaks the PostgreSQL wire
//! protocol, parses Redshift SQL, keeps the durable catalog, plans queries with DataFusion
//! and sends plan fragments to the workers that own the data.
//!
//! Module map: [`server`] (wire protocol, auth) → [`session`] (transactions, statement
//! dispatch) → [`ddl`]/[`dialect`] (Redshift DDL) and DataFusion with [`table`] (tables as
//! DataFusion sees them) and [`exec`] (distributed execution, drawn by [`explain`]) → [`cluster`] (workers and
//! slices) and [`catalog`] (durable metadata). [`types`] is the one type mapping, and
//! [`error`] the one error-to-SQLSTATE mapping.

pub mod alter;
pub mod catalog;
pub mod cluster;
pub mod comments;
pub mod config;
pub mod constraints;
pub mod copy;
pub mod ddl;
pub mod dml;
pub mod error;
pub mod exec;
pub mod explain;
pub mod gc;
pub mod maintenance;
pub mod pg_catalog;
pub mod querylog;
pub mod server;
pub mod session;
pub mod sql;
pub mod system;
pub mod table;
pub mod unload;
pub mod views;

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
    let engine = Arc::new(session::Engine::new(catalog, cluster.clone(), config)?);
    // Files of writes that a crash cut short are referenced by no table: delete them.
    let sweep = gc::sweep_orphans(
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
            r = server::serve_pg(engine, pg_listener) => r,
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
