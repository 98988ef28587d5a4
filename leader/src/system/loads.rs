//! The COPY and UNLOAD logs: rejected rows (`stl_load_errors`), loaded files
//! (`stl_load_commits`), the COPYs running now (`stv_load_state`) and the files UNLOADs
//! wrote (`stl_unload_log`). Commands write them; the system tables read them.

use std::sync::Mutex;

use basalt_worker::load::LoadError;
use basalt_worker::recent::RecentLog;
use basalt_worker::unload::{UnloadFormat, UnloadedFile};

/// A rejected row with the COPY it belongs to.
#[derive(Debug, Clone)]
pub struct LoadErrorRow {
    pub query: u64,
    /// The first slice of the worker that read the row.
    pub slice: u32,
    pub table_id: u64,
    /// The field's position in the input (0-based), for field errors.
    pub field: Option<usize>,
    pub start_us: i64,
    pub error: LoadError,
}

/// One input file of a successful COPY (`stl_load_commits`).
#[derive(Debug, Clone)]
pub struct LoadCommitRow {
    pub query: u64,
    pub filename: String,
    pub lines_scanned: u64,
    pub curtime_us: i64,
    /// `Text`, `CSV`, `JSON`, `FixedWidth` or `Parquet`.
    pub file_format: &'static str,
}

/// A COPY in progress (`stv_load_state`): per worker node, the bytes and files it was
/// given.
#[derive(Debug, Clone)]
pub struct RunningLoad {
    pub query: u64,
    pub started_us: i64,
    pub shares: Vec<(u32, u64, u64)>,
}

/// Recent rejected rows (`stl_load_errors`) and loaded files (`stl_load_commits`) of
/// every COPY, and the COPYs running now.
#[derive(Debug, Default)]
pub struct LoadLog {
    pub errors: RecentLog<LoadErrorRow, 100_000>,
    pub commits: RecentLog<LoadCommitRow, 100_000>,
    running: Mutex<std::collections::BTreeMap<u64, RunningLoad>>,
}

/// Removes a COPY from the running list however the COPY ends.
pub(crate) struct RunningGuard<'a>(&'a LoadLog, u64);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .lock()
            .expect("load log lock")
            .remove(&self.1);
    }
}

impl LoadLog {
    /// The COPYs running now.
    pub fn running(&self) -> Vec<RunningLoad> {
        self.running
            .lock()
            .expect("load log lock")
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn start(&self, load: RunningLoad) -> RunningGuard<'_> {
        let query = load.query;
        self.running
            .lock()
            .expect("load log lock")
            .insert(query, load);
        RunningGuard(self, query)
    }
}

/// One file an UNLOAD wrote, as `stl_unload_log` shows it.
#[derive(Debug, Clone)]
pub struct UnloadLogRow {
    pub query: u64,
    /// The leader's process id.
    pub pid: u32,
    pub file: UnloadedFile,
    pub format: UnloadFormat,
}

/// The files of recent UNLOADs (`stl_unload_log`).
pub type UnloadLog = RecentLog<UnloadLogRow, 100_000>;
