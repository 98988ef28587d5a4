//! The leader's record of queries: what `stl_query` and `svl_qlog` (finished queries),
//! `stv_inflight` (running ones) and `stv_recents` (both) show. A query is a statement
//! that ran under a query number (SELECT, INSERT/UPDATE/DELETE, COPY, UNLOAD, …); DDL,
//! transaction control and SET are not queries, as on Redshift.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use basalt_worker::recent::RecentLog;

/// Finished queries kept for `stl_query` (Redshift keeps days; a bounded count here).
const KEPT: usize = 10_000;

/// One query, running or finished.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    pub query: u64,
    /// The session's process id (`pg_backend_pid()`).
    pub pid: i32,
    pub user: String,
    /// `query_group` when the session set one, else `default`.
    pub label: String,
    pub text: String,
    /// Microseconds since the Unix epoch.
    pub start: i64,
    pub end: Option<i64>,
    pub aborted: bool,
}

#[derive(Debug, Default)]
pub struct QueryLog {
    running: Mutex<BTreeMap<u64, QueryRecord>>,
    done: RecentLog<QueryRecord, KEPT>,
}

impl QueryLog {
    pub fn start(&self, record: QueryRecord) {
        self.running
            .lock()
            .expect("query log lock")
            .insert(record.query, record);
    }

    /// Move `queries` from running to finished.
    fn finish(&self, queries: &[u64], aborted: bool) {
        let end = crate::now_us();
        let mut running = self.running.lock().expect("query log lock");
        let finished: Vec<QueryRecord> = queries
            .iter()
            .filter_map(|q| running.remove(q))
            .map(|mut r| {
                r.end = Some(end);
                r.aborted = aborted;
                r
            })
            .collect();
        drop(running);
        self.done.extend(finished);
    }

    pub fn running(&self) -> Vec<QueryRecord> {
        self.running
            .lock()
            .expect("query log lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn finished(&self) -> Vec<QueryRecord> {
        self.done.snapshot()
    }
}

/// The queries of one statement until its result has been sent: finished as aborted
/// when dropped before [`QueryGuard::succeeded`] (an error, a cancel, a client gone).
#[derive(Debug)]
pub struct QueryGuard {
    log: Arc<QueryLog>,
    queries: Vec<u64>,
    /// None until the statement's outcome is known.
    ok: Option<bool>,
}

impl QueryGuard {
    pub fn new(log: Arc<QueryLog>, queries: Vec<u64>) -> Self {
        Self {
            log,
            queries,
            ok: None,
        }
    }

    /// The result was sent in full (unless an error came first).
    pub fn succeeded(&mut self) {
        self.ok.get_or_insert(true);
    }

    /// The statement failed: it is logged as aborted whatever follows.
    pub fn failed(&mut self) {
        self.ok = Some(false);
    }
}

impl Drop for QueryGuard {
    fn drop(&mut self) {
        self.log.finish(&self.queries, self.ok != Some(true));
    }
}
