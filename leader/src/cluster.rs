//! Cluster membership on the leader: which worker node owns which slice, which workers are
//! alive (heartbeats), and the leader's own Flight endpoint that workers register with.
//!
//! Slices are fixed when the cluster is created: node `n` owns slices
//! `n*K .. (n+1)*K` for `K` slices per node. Because all segment files live in the shared
//! storage root, a restarted (or replacement) worker takes over the same slices with no
//! data movement.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::{Action, FlightClient, FlightData, PutResult, Ticket};
use basalt_storage::layout::SliceId;
use basalt_worker::node::service::BoxedStream;
use basalt_worker::protocol::{self, Heartbeat, HeartbeatReply, RegisterRequest, RegisterResponse};
use futures::StreamExt;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};
use tracing::info;

use crate::error::{Result, code};
use crate::sql_err;

/// A worker that has not heartbeated for this long is considered down.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub node_id: u32,
    pub addr: String,
    pub last_seen: Instant,
}

#[derive(Debug)]
pub struct Cluster {
    pub nodes: u32,
    pub slices_per_node: u32,
    pub storage_url: String,
    workers: RwLock<BTreeMap<u32, WorkerInfo>>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Cluster {
    pub fn new(nodes: u32, slices_per_node: u32, storage_url: String) -> Self {
        Self {
            nodes,
            slices_per_node,
            storage_url,
            workers: RwLock::new(BTreeMap::new()),
            channels: Mutex::new(HashMap::new()),
        }
    }

    pub fn slice_count(&self) -> u32 {
        self.nodes * self.slices_per_node
    }

    pub fn owner_of(&self, slice: u32) -> u32 {
        slice / self.slices_per_node
    }

    pub fn slices_of(&self, node: u32) -> Vec<u32> {
        (node * self.slices_per_node..(node + 1) * self.slices_per_node).collect()
    }

    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.workers
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }

    /// Workers that heartbeated recently.
    pub fn live_workers(&self) -> usize {
        self.workers
            .read()
            .expect("lock")
            .values()
            .filter(|w| Self::is_alive(w))
            .count()
    }

    fn is_alive(w: &WorkerInfo) -> bool {
        w.last_seen.elapsed() < WORKER_TIMEOUT
    }

    fn register(&self, req: RegisterRequest) -> std::result::Result<RegisterResponse, Status> {
        let mut workers = self.workers.write().expect("lock");
        let node_id = match req.node_id {
            Some(n) if n < self.nodes => n,
            Some(n) => {
                return Err(Status::invalid_argument(format!(
                    "node id {n} is outside this cluster of {} nodes",
                    self.nodes
                )));
            }
            None => (0..self.nodes)
                .find(|n| workers.get(n).is_none_or(|w| !Self::is_alive(w)))
                .ok_or_else(|| {
                    Status::resource_exhausted("every node id is taken by a live worker")
                })?,
        };
        info!(node = node_id, addr = %req.flight_addr, "worker registered");
        workers.insert(
            node_id,
            WorkerInfo {
                node_id,
                addr: req.flight_addr,
                last_seen: Instant::now(),
            },
        );
        Ok(RegisterResponse {
            node_id,
            slices: self.slices_of(node_id),
            slice_count: self.slice_count(),
            storage_url: self.storage_url.clone(),
        })
    }

    fn heartbeat(&self, hb: Heartbeat) -> HeartbeatReply {
        let mut workers = self.workers.write().expect("lock");
        match workers.get_mut(&hb.node_id) {
            Some(w) if w.addr == hb.flight_addr => {
                w.last_seen = Instant::now();
                HeartbeatReply { known: true }
            }
            _ => HeartbeatReply { known: false },
        }
    }

    /// The live worker that serves `slice`: its node id and Flight address.
    pub fn worker_for(&self, slice: SliceId) -> Result<(u32, String)> {
        let workers = self.workers.read().expect("lock");
        match slice {
            SliceId::Slice(s) => {
                let node = self.owner_of(s);
                match workers.get(&node) {
                    Some(w) if Self::is_alive(w) => Ok((node, w.addr.clone())),
                    Some(w) => Err(sql_err!(
                        code::CONNECTION_FAILURE,
                        "worker {node} ({}) owning slice {s} is not available: no heartbeat for {:.1}s",
                        w.addr,
                        w.last_seen.elapsed().as_secs_f64()
                    )),
                    None => Err(sql_err!(
                        code::CONNECTION_FAILURE,
                        "worker {node} owning slice {s} is not available: it has not registered"
                    )),
                }
            }
            SliceId::All => workers
                .values()
                .find(|w| Self::is_alive(w))
                .map(|w| (w.node_id, w.addr.clone()))
                .ok_or_else(|| sql_err!(code::CONNECTION_FAILURE, "no worker is available")),
        }
    }

    /// A Flight client for `addr`, reusing an open HTTP/2 channel when there is one.
    pub async fn client(&self, addr: &str) -> Result<FlightClient> {
        let flight_client = |channel| {
            FlightClient::new_from_inner(basalt_worker::protocol::flight::flight_service_client(
                channel,
            ))
        };
        if let Some(ch) = self.channels.lock().expect("lock").get(addr) {
            return Ok(flight_client(ch.clone()));
        }
        let channel = basalt_worker::protocol::flight::peer_endpoint(addr)
            .map_err(|e| sql_err!(code::INTERNAL, "worker {e}"))?
            .connect()
            .await
            .map_err(|e| sql_err!(code::CONNECTION_FAILURE, "cannot connect to {addr}: {e}"))?;
        self.channels
            .lock()
            .expect("lock")
            .insert(addr.to_string(), channel.clone());
        Ok(flight_client(channel))
    }

    /// Run `DoAction(action)` on the worker at `addr` and return its one reply body.
    /// Failures name the worker; a stale channel is dropped so the next call reconnects.
    pub async fn call(
        &self,
        node: u32,
        addr: &str,
        action: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes> {
        self.call_inner(node, addr, action, body, false).await
    }

    /// Like [`Cluster::call`], but an error the worker itself reports (the query failed,
    /// a file could not be written) comes back with the worker's message and a SQLSTATE
    /// judged from it, not as a connection failure.
    pub async fn run(
        &self,
        node: u32,
        addr: &str,
        action: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes> {
        self.call_inner(node, addr, action, body, true).await
    }

    async fn call_inner(
        &self,
        node: u32,
        addr: &str,
        action: &str,
        body: Vec<u8>,
        worker_errors: bool,
    ) -> Result<bytes::Bytes> {
        let fail = |e: &dyn std::fmt::Display| {
            sql_err!(
                code::CONNECTION_FAILURE,
                "worker {node} ({addr}) failed during {action}: {e}"
            )
        };
        let mut client = self.client(addr).await?;
        let replies: std::result::Result<Vec<bytes::Bytes>, _> = match client
            .do_action(arrow_flight::Action::new(action, body))
            .await
        {
            Ok(stream) => futures::TryStreamExt::try_collect(stream).await,
            Err(e) => Err(e),
        };
        match replies {
            Ok(mut r) if !r.is_empty() => Ok(r.swap_remove(0)),
            Ok(_) => Err(fail(&"empty reply")),
            Err(e) => {
                self.forget_channel(addr);
                // A gRPC status carries the worker's own message; transport details
                // (hyper, broken pipes) say no more than "the worker went away".
                match e {
                    arrow_flight::error::FlightError::Tonic(status)
                        if worker_errors
                            && matches!(
                                status.code(),
                                tonic::Code::Internal
                                    | tonic::Code::InvalidArgument
                                    | tonic::Code::Aborted
                            )
                            && !status.message().contains("transport") =>
                    {
                        Err(crate::error::LeaderError::DataFusion(
                            datafusion::error::DataFusionError::Execution(
                                status.message().to_string(),
                            ),
                        ))
                    }
                    arrow_flight::error::FlightError::Tonic(status) => Err(fail(&status.message())),
                    other => Err(fail(&other)),
                }
            }
        }
    }

    /// Drop a cached channel after a failure so the next call reconnects.
    pub fn forget_channel(&self, addr: &str) {
        self.channels.lock().expect("lock").remove(addr);
    }

    /// Serve the cluster endpoint on `listener` until the process stops.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        let svc = FlightServiceServer::new(ClusterService { cluster: self });
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(basalt_worker::protocol::flight::nodelay_incoming(listener))
            .await
            .map_err(|e| sql_err!(code::INTERNAL, "cluster endpoint failed: {e}"))
    }
}

struct ClusterService {
    cluster: Arc<Cluster>,
}

basalt_worker::flight_service!(ClusterService, {
    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> std::result::Result<Response<BoxedStream<arrow_flight::Result>>, Status> {
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            protocol::ACTION_REGISTER => {
                let req: RegisterRequest = protocol::decode(&action.body)?;
                protocol::encode(&self.cluster.register(req)?)
            }
            protocol::ACTION_HEARTBEAT => {
                let hb: Heartbeat = protocol::decode(&action.body)?;
                protocol::encode(&self.cluster.heartbeat(hb))
            }
            other => return Err(Status::unimplemented(format!("unknown action {other}"))),
        };
        let reply = arrow_flight::Result { body: body.into() };
        Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
    }

    async fn do_get(
        &self,
        _request: Request<Ticket>,
    ) -> std::result::Result<Response<BoxedStream<FlightData>>, Status> {
        Err(Status::unimplemented("do_get"))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<BoxedStream<PutResult>>, Status> {
        Err(Status::unimplemented("do_put"))
    }
});
