//! Running a worker process: bind the Flight endpoint, register with the leader (which
//! tells the worker its node id, its slices and the storage root), serve, and heartbeat.
//! A worker keeps no state of its own, so it can be killed and restarted at any time.

use std::net::SocketAddr;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::{Action, FlightClient};
use futures::TryStreamExt;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Endpoint, Server};
use tracing::{info, warn};

use crate::error::{Result, WorkerError};
use crate::protocol::{self, Heartbeat, HeartbeatReply, RegisterRequest, RegisterResponse};
use crate::service::WorkerService;

/// How often a worker tells the leader it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// Largest gRPC message either side accepts (a batch of wide rows can be large).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

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

/// Accepted connections with Nagle's algorithm off. (Tonic's `tcp_nodelay` applies only
/// to listeners it binds itself; without it small responses wait out delayed ACKs, ~40 ms.)
pub fn nodelay_incoming(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// How every Basalt node reaches another's Flight endpoint: fail fast if nobody answers,
/// notice a dead peer within seconds, and flow control per stream only. Many result
/// streams share one HTTP/2 connection, and a stream whose reader is busy elsewhere (a
/// hash join's probe side while it builds, a repartition's gated input) must not use up
/// a connection-wide window the other streams need — with exchanges between workers that
/// would be a deadlock. Each stream still buffers at most its own window.
pub fn peer_endpoint(addr: &str) -> std::result::Result<Endpoint, String> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(3))
        .initial_stream_window_size(2 << 20)
        .initial_connection_window_size(i32::MAX as u32))
}

/// A Flight client on `channel` that takes messages up to [`MAX_MESSAGE_BYTES`] either
/// way, as the servers do (tonic's default of 4 MB is too small for a batch of wide rows
/// or a load's reply listing many rejected rows).
pub fn flight_service_client(
    channel: tonic::transport::Channel,
) -> arrow_flight::flight_service_client::FlightServiceClient<tonic::transport::Channel> {
    arrow_flight::flight_service_client::FlightServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Open a Flight client to `addr` (`host:port`), failing fast if nobody answers.
pub async fn connect(addr: &str) -> Result<FlightClient> {
    let channel = peer_endpoint(addr)
        .map_err(WorkerError::Rpc)?
        .connect()
        .await
        .map_err(|e| WorkerError::Rpc(format!("cannot connect to {addr}: {e}")))?;
    Ok(FlightClient::new_from_inner(flight_service_client(channel)))
}

/// Send one `DoAction` and return the first result body.
pub async fn call_action(client: &mut FlightClient, kind: &str, body: Vec<u8>) -> Result<Vec<u8>> {
    let mut results = client
        .do_action(Action::new(kind, body))
        .await
        .map_err(|e| WorkerError::Rpc(e.to_string()))?;
    let first = results
        .try_next()
        .await
        .map_err(|e| WorkerError::Rpc(e.to_string()))?
        .ok_or_else(|| WorkerError::Rpc(format!("{kind}: empty reply")))?;
    Ok(first.to_vec())
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
    let heartbeat = crate::liveness::spawn(heartbeat);
    tokio::select! {
        r = server => r.map_err(|e| WorkerError::Rpc(e.to_string())),
        _ = heartbeat => Ok(()),
    }
}
