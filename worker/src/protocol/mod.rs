//! Messages between the leader and workers. They ride inside Arrow Flight calls:
//! tickets of `DoGet`, descriptors and results of `DoPut`, bodies of `DoAction`. Each is
//! serialized with bincode; a plan fragment inside is datafusion-proto bytes.

use basalt_storage::layout::SliceId;
use basalt_storage::segment::Codec;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Result, WorkerError};

pub mod flight;

/// Worker → leader: announce a worker (at start and after the leader forgets it).
pub const ACTION_REGISTER: &str = "basalt.register";
/// Worker → leader: "still alive".
pub const ACTION_HEARTBEAT: &str = "basalt.heartbeat";
/// Leader → worker: liveness probe.
pub const ACTION_PING: &str = "basalt.ping";
/// Leader → worker: rewrite segments of one slice without their deleted rows (VACUUM).
pub const ACTION_REWRITE: &str = "basalt.rewrite";
/// Leader → worker: load input files into a table (COPY); body a `load::LoadRequest`.
pub const ACTION_LOAD: &str = "basalt.load";
/// Leader → worker: run a slice's fragment and write its result as UNLOAD files; body an
/// `unload::UnloadRequest`, reply the `Vec<unload::UnloadedFile>` written.
pub const ACTION_UNLOAD: &str = "basalt.unload";
/// Leader → worker: the worker's recent scan records (`stl_scan`).
pub const ACTION_SCAN_LOG: &str = "basalt.scan_log";
/// Leader → worker: what the worker's exchanges received recently (`svl_query_report`).
pub const ACTION_EXCHANGE_LOG: &str = "basalt.exchange_log";
/// Progress of the COPYs a worker is running (`stv_load_state`).
pub const ACTION_LOAD_STATE: &str = "basalt.load_state";

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
    /// The segment's deletion vector, once any of its rows are deleted.
    pub deletes: Option<DeleteRef>,
    /// Whether the segment is part of its slice's sorted region: ordered by the sort key
    /// together with every other such segment of the slice (the leader decides this; a
    /// worker always reports `false`).
    pub sorted_region: bool,
}

impl SegmentRef {
    /// Rows not deleted.
    pub fn live_rows(&self) -> u64 {
        self.rows - self.deletes.as_ref().map_or(0, |d| d.count)
    }
}

/// A committed deletion-vector file and how many rows it deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRef {
    pub path: String,
    pub count: u64,
}

/// A segment a scan reads: its file, its deletion vector, and its position in the table's
/// segment list (the high half of the row ids a DML scan emits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSegment {
    pub path: String,
    pub deletes: Option<String>,
    pub ordinal: u32,
}

/// Where a scan finds one table column in a segment. A column keeps the name it was
/// stored under when it is renamed, and segments written before it was added lack it:
/// their rows read as `missing` (the ADD COLUMN default, as text) or NULL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredColumn {
    pub stored: String,
    pub missing: Option<String>,
}

/// `DoGet` ticket: run `plan` over the given segments of one slice and stream the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FragmentTicket {
    /// The leader's query number (what `stl_scan.query` reports).
    pub query: u64,
    pub slice: SliceId,
    /// datafusion-proto bytes; the leaf is a `SliceScanExec` that the worker binds to
    /// `segments`.
    pub plan: Vec<u8>,
    pub segments: Vec<ScanSegment>,
    /// A fragment that joins tables inside the slice (a co-located join, or a join with
    /// a DISTSTYLE ALL table) reads these too: per other table, its id, the slice it is
    /// read from and that slice's segments. Leaves of any other table read `segments`.
    pub also: Vec<(u64, SliceId, Vec<ScanSegment>)>,
    /// When another worker's exchange asks: only the rows that hash to its slice.
    pub route: Option<Route>,
}

/// `DoAction(rewrite)` body: read `segments` of one slice (all columns, deleted rows
/// dropped), optionally sort them by `sort_key`, and write them as new segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RewriteRequest {
    pub query: u64,
    pub table_id: u64,
    pub table_name: String,
    pub slice: SliceId,
    /// The table schema as Arrow IPC, fields named as stored (what the new segments are
    /// written with).
    pub schema_ipc: Vec<u8>,
    /// Per field of the schema: where older segments hold it.
    pub columns: Vec<StoredColumn>,
    pub segments: Vec<ScanSegment>,
    /// Column indices to sort by (empty: keep the segments' order).
    pub sort_key: Vec<usize>,
    /// Sort in z-order over `sort_key` (an INTERLEAVED key) rather than lexicographically.
    pub interleaved: bool,
    pub codecs: Vec<Codec>,
}

/// One scan of one slice, as a worker logs it for `stl_scan`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanRecord {
    pub query: u64,
    pub slice: SliceId,
    pub table_id: u64,
    pub table_name: String,
    /// Microseconds since the Unix epoch.
    pub start_us: i64,
    pub end_us: i64,
    /// Rows the scan emitted (deleted rows and rows failing its filter removed).
    pub rows: u64,
    /// Rows in the blocks it read, before either was removed.
    pub rows_pre_filter: u64,
    /// Encoded bytes of the blocks it read.
    pub bytes: u64,
    /// Whether zone maps restricted the scan (Redshift's range-restricted scan).
    pub is_rrscan: bool,
    pub blocks_total: u64,
    pub blocks_scanned: u64,
}

/// `DoPut` descriptor command: the rows that follow belong to `table_id` on `slice`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteRequest {
    pub table_id: u64,
    pub slice: SliceId,
    /// Column indices of the sort key, in key order (empty: keep arrival order).
    pub sort_key: Vec<usize>,
    /// INTERLEAVED sort key: z-order over the key columns instead of lexicographic.
    pub interleaved: bool,
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

/// What a consumer asks a producing slice for: its share of exchange `exchange`, dealt
/// to `consumers` (slice numbers) by hashing `column` over `slices` slices, or every row
/// to every consumer when `column` is None (a broadcast).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub exchange: u64,
    pub column: Option<usize>,
    pub slices: u32,
    pub consumers: Vec<u32>,
    pub keep: u32,
}
