//! Messages between the leader and workers. They ride inside Arrow Flight calls:
//! tickets of `DoGet`, descriptors and results of `DoPut`, bodies of `DoAction`. Each is
//! serialized with bincode; a plan fragment inside is datafusion-proto bytes.

use basalt_storage::layout::SliceId;
use basalt_storage::segment::Codec;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Result, WorkerError};

/// Worker → leader: announce a worker (at start and after the leader forgets it).
pub const ACTION_REGISTER: &str = "basalt.register";
/// Worker → leader: "still alive".
pub const ACTION_HEARTBEAT: &str = "basalt.heartbeat";
/// Leader → worker: liveness probe.
pub const ACTION_PING: &str = "basalt.ping";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The node id the worker asks for (`None`: the leader picks a free one).
    pub node_id: Option<u32>,
    /// Where the worker's Flight endpoint listens, as `host:port`.
    pub flight_addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub node_id: u32,
    pub slices: Vec<u32>,
    pub slice_count: u32,
    pub storage_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: u32,
    pub flight_addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// False when the leader does not know this worker (it restarted): register again.
    pub known: bool,
}

/// One committed segment as the leader's catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub slice: SliceId,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// `DoGet` ticket: run `plan` over the given segments of one slice and stream the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FragmentTicket {
    pub query_id: String,
    pub slice: SliceId,
    /// datafusion-proto bytes; the leaf is a `SliceScanExec` that the worker binds to
    /// `segments`.
    pub plan: Vec<u8>,
    pub segments: Vec<String>,
}

/// `DoPut` descriptor command: the rows that follow belong to `table_id` on `slice`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteRequest {
    pub table_id: u64,
    pub slice: SliceId,
    /// Column indices of the sort key, in key order (empty: keep arrival order).
    pub sort_key: Vec<usize>,
    /// One codec per column.
    pub codecs: Vec<Codec>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("protocol messages always serialize")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| WorkerError::BadRequest(format!("malformed message: {e}")))
}
