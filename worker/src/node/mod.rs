//! Running a worker process: bind the Flight endpoint, register with the leader (which
//! tells the worker its node id, its slices and the storage root), serve, and heartbeat.
//! A worker keeps no state of its own, so it can be killed and restarted at any time.
//!
//! The top of the worker: [`service`] answers the leader's and other workers' Flight
//! calls by dispatching to `exec`, `load` and `unload`; [`liveness`] keeps heartbeats on
//! a runtime of their own; [`unwind`] turns a panic in any request into that request's
//! error. Nothing below imports from here.

pub mod liveness;
pub mod service;
pub mod unwind;

use std::net::SocketAddr;
use std::time::Duration;

use arrow_flight::FlightClient;
use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::{info, warn};

use crate::error::{Result, WorkerError};
use crate::node::service::WorkerService;
use crate::protocol::flight::{MAX_MESSAGE_BYTES, call_action, connect, nodelay_incoming};
use crate::protocol::{self, Heartbeat, HeartbeatReply, RegisterRequest, RegisterResponse};

/// How often a worker tells the leader it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The leader's cluster (Flight) endpoint, `host:port`.
    pub leader: String,
    /// Where this worker's Flight endpoint listens (`host:0` picks a free port).
    pub listen: String,
    /// The address other nodes use to reach this worker, when it differs from `listen`.
    pub advertise: Option<String>,
    pub node_id: Option<u32>,
}

async fn register(cfg: &WorkerConfig, flight_addr: &str, node_id: Option<u32>) -> RegisterResponse {
    let req = RegisterRequest {
        node_id,
        flight_addr: flight_addr.to_string(),
    };
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut client = connect(&cfg.leader).await?;
            let reply = call_action(
                &mut client,
                protocol::ACTION_REGISTER,
                protocol::encode(&req),
            )
            .await?;
            protocol::decode::<RegisterResponse>(&reply)
        };
        match attempt.await {
            Ok(resp) => return resp,
            Err(e) => {
                warn!(
                    "registering with leader {} failed: {e}; retrying",
                    cfg.leader
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Run a worker until the process is stopped.
pub async fn run_worker(cfg: WorkerConfig) -> Result<()> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| WorkerError::Rpc(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| WorkerError::Rpc(e.to_string()))?;
    let flight_addr = cfg.advertise.clone().unwrap_or_else(|| local.to_string());
    let reg = register(&cfg, &flight_addr, cfg.node_id).await;
    info!(
        node = reg.node_id,
        slices = ?reg.slices,
        %flight_addr,
        "worker registered with leader {}",
        cfg.leader
    );
    let root = basalt_storage::layout::StorageRoot::open(&reg.storage_url)?;
    let service = FlightServiceServer::new(WorkerService::new(root))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let server = Server::builder()
        .add_service(service)
        .serve_with_incoming(nodelay_incoming(listener));

    let heartbeat_cfg = cfg.clone();
    let mut node_id = reg.node_id;
    let heartbeat = async move {
        let mut client: Option<FlightClient> = None;
        loop {
            tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            if client.is_none() {
                client = connect(&heartbeat_cfg.leader).await.ok();
            }
            let Some(c) = client.as_mut() else { continue };
            let hb = Heartbeat {
                node_id,
                flight_addr: flight_addr.clone(),
            };
            match call_action(c, protocol::ACTION_HEARTBEAT, protocol::encode(&hb)).await {
                Ok(reply) => {
                    if let Ok(HeartbeatReply { known: false }) = protocol::decode(&reply) {
                        let reg = register(&heartbeat_cfg, &flight_addr, Some(node_id)).await;
                        node_id = reg.node_id;
                        info!(node = node_id, "re-registered with leader");
                    }
                }
                Err(e) => {
                    warn!("heartbeat to leader failed: {e}");
                    client = None;
                }
            }
        }
    };
    let heartbeat = crate::node::liveness::spawn(heartbeat);
    tokio::select! {
        r = server => r.map_err(|e| WorkerError::Rpc(e.to_string())),
        _ = heartbeat => Ok(()),
    }
}
