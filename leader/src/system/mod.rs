//! Redshift's system tables, computed from a catalog snapshot and the cluster state when a
//! query names them: `stv_slices` (which node owns which slice), `stv_tbl_perm` (rows per
//! table per slice), `svv_table_info` (per-table size, distribution, sortedness, skew and
//! statistics staleness), `stl_scan` (what each scan read, gathered from the workers'
//! scan logs), `pg_stats` (what ANALYZE recorded), and the COPY and UNLOAD logs
//! (`stl_load_errors`, `stl_load_commits`, `stl_unload_log`), and the query log
//! (`stl_query`, `svl_qlog`, `stv_inflight`, `stv_recents`); `svl_query_report` and
//! `svl_query_summary` show each query's steps per slice (scans, and the rows and bytes
//! its exchanges moved between workers).
//!
//! [`SystemTables::table`] is the one registry every statement reads system relations
//! through: the PostgreSQL catalog ([`pg_catalog`]) first, then the tables computed from
//! the cluster and the logs ([`loads`], [`querylog`]). The system tables read the catalog
//! and the cluster; they never import the planner, the commands or the session.

pub mod loads;
pub mod pg_catalog;
pub mod querylog;

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_storage::layout::{SliceId, StorageRoot};
use basalt_storage::segment::{SegmentReader, ZoneValue};
use basalt_worker::exec::exchange::ExchangeRecord;
use basalt_worker::load::LoadProgress;
use basalt_worker::protocol::{self, ScanRecord};
use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::catalog::{CatalogState, DistStyle, TableDef};
use crate::cluster::Cluster;
use crate::error::code;
use crate::sql_err;

#[derive(Debug)]
pub struct SystemTables {
    cluster: Arc<Cluster>,
    /// Segment footers are read from here for `stv_blocklist`.
    storage: StorageRoot,
    /// Rejected COPY rows (`stl_load_errors`).
    pub loads: Arc<crate::system::loads::LoadLog>,
    /// Files UNLOAD wrote (`stl_unload_log`).
    pub unloads: Arc<crate::system::loads::UnloadLog>,
    /// Running and finished queries (`stl_query`, `svl_qlog`, `stv_inflight`,
    /// `stv_recents`).
    pub queries: Arc<crate::system::querylog::QueryLog>,
}

/// One worker's part of a running COPY: the load, the node, its bytes and files, and
/// how far it is.
type LoadShare = (
    crate::system::loads::RunningLoad,
    u32,
    u64,
    u64,
    LoadProgress,
);

const NAMES: &[&str] = &[
    "stv_slices",
    "stv_tbl_perm",
    "svv_table_info",
    "stl_scan",
    "pg_stats",
    "stv_blocklist",
    "svv_diskusage",
    "pg_table_def",
    "stl_load_errors",
    "stl_load_commits",
    "stl_loaderror_detail",
    "stv_load_state",
    "stl_unload_log",
    "stl_query",
    "svl_qlog",
    "stv_inflight",
    "stv_recents",
    "svl_query_report",
    "svl_query_summary",
];

impl SystemTables {
    pub fn new(cluster: Arc<Cluster>, storage: StorageRoot) -> Self {
        Self {
            cluster,
            storage,
            loads: Arc::default(),
            unloads: Arc::default(),
            queries: Arc::default(),
        }
    }

    /// Whether `schema.name` is a system relation. System relations resolve from any
    /// schema, as Redshift's are on every search path.
    pub fn exists(&self, schema: &str, name: &str) -> bool {
        pg_catalog::exists(schema, name) || self.is_cluster_table(name)
    }

    /// Whether `name` is one of the tables computed from the cluster's state and logs
    /// (`stv_*`, `stl_*`, `svl_*`, `svv_*`) rather than from the catalog alone.
    pub fn is_cluster_table(&self, name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// The system relation `schema.name`, computed now from catalog snapshot `view` and
    /// the cluster: the one place a statement reads system tables from.
    pub async fn table(
        &self,
        schema: &str,
        name: &str,
        view: &CatalogState,
        viewer: &str,
    ) -> Option<Arc<dyn TableProvider>> {
        if let Some(t) = pg_catalog::table(schema, name, view, viewer) {
            return Some(t);
        }
        let batch = match name {
            "stv_slices" => self.stv_slices(),
            "stv_tbl_perm" => self.stv_tbl_perm(view),
            "svv_table_info" => self.svv_table_info(view).await,
            "stl_scan" => self.stl_scan().await,
            "pg_stats" => pg_stats(view),
            "stv_blocklist" => self.blocklist(view, false).await,
            "svv_diskusage" => self.blocklist(view, true).await,
            "pg_table_def" => pg_table_def(view),
            "stl_load_errors" => self.stl_load_errors(),
            "stl_load_commits" => self.stl_load_commits(),
            "stl_loaderror_detail" => self.stl_loaderror_detail(),
            "stv_load_state" => self.stv_load_state().await,
            "stl_unload_log" => self.stl_unload_log(),
            "stl_query" => self.stl_query(),
            "svl_qlog" => self.svl_qlog(),
            "stv_inflight" => self.stv_inflight(),
            "stv_recents" => self.stv_recents(),
            "svl_query_report" => self.svl_query_report().await,
            "svl_query_summary" => self.svl_query_summary().await,
            _ => return None,
        };
        let batch = self.visible_to(batch, view, viewer);
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).ok()?;
        Some(Arc::new(table))
    }

    /// Redshift's visibility rule for the log tables: a user sees only the rows of its
    /// own queries (by `query` number, or `user_name`), unless it is a superuser or has
    /// `SYSLOG ACCESS UNRESTRICTED`. Tables without either column are the same for all.
    fn visible_to(&self, batch: RecordBatch, view: &CatalogState, viewer: &str) -> RecordBatch {
        let unrestricted = crate::catalog::privileges::has_system_privilege(
            view,
            viewer,
            crate::catalog::Privilege::AccessSystemTable,
        ) || view
            .users
            .get(viewer)
            .is_some_and(|u| u.syslog_unrestricted);
        if unrestricted {
            return batch;
        }
        let keep: datafusion::arrow::array::BooleanArray = match (
            batch.column_by_name("query"),
            batch.column_by_name("user_name"),
        ) {
            (Some(q), _) if q.data_type() == &datafusion::arrow::datatypes::DataType::Int32 => {
                let mine: std::collections::HashSet<i32> = self
                    .queries
                    .running()
                    .into_iter()
                    .chain(self.queries.finished())
                    .filter(|r| r.user == viewer)
                    .map(|r| r.query as i32)
                    .collect();
                q.as_any()
                    .downcast_ref::<Int32Array>()
                    .map(|q| {
                        q.iter()
                            .map(|v| Some(v.is_some_and(|v| mine.contains(&v))))
                            .collect()
                    })
                    .unwrap_or_else(|| vec![false; batch.num_rows()].into())
            }
            (_, Some(u)) => u
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|u| u.iter().map(|v| Some(v == Some(viewer))).collect())
                .unwrap_or_else(|| vec![false; batch.num_rows()].into()),
            _ => return batch,
        };
        datafusion::arrow::compute::filter_record_batch(&batch, &keep).unwrap_or_else(|e| {
            warn!("system table visibility: {e}");
            RecordBatch::new_empty(batch.schema())
        })
    }

    fn stv_slices(&self) -> RecordBatch {
        let n = self.cluster.slice_count();
        let node: Vec<i32> = (0..n).map(|s| self.cluster.owner_of(s) as i32).collect();
        let slice: Vec<i32> = (0..n).map(|s| s as i32).collect();
        let local: Vec<i32> = (0..n)
            .map(|s| (s % self.cluster.slices_per_node) as i32)
            .collect();
        batch(vec![
            ("node", Arc::new(Int32Array::from(node))),
            ("slice", Arc::new(Int32Array::from(slice))),
            ("localslice", Arc::new(Int32Array::from(local))),
            ("type", Arc::new(StringArray::from(vec!["D"; n as usize]))),
        ])
    }

    /// One row per column block of every committed segment, read from segment footers:
    /// Redshift's `stv_blocklist` columns (integer-like zone maps as `minvalue`/`maxvalue`,
    /// `unsorted` for blocks outside the sorted region) plus Basalt's `encoding` (the
    /// codec the block was actually stored with) and `bytes`. `svv_diskusage` is the
    /// same list with the database id and table name first.
    async fn blocklist(&self, view: &CatalogState, with_names: bool) -> RecordBatch {
        let mut out = BlockRows::default();
        for t in view.tables.values() {
            for seg in &t.segments {
                let path = object_store::path::Path::from(seg.path.as_str());
                let reader =
                    match SegmentReader::open_footer(self.storage.store.as_ref(), &path).await {
                        Ok(r) => r,
                        Err(e) => {
                            warn!("stv_blocklist: {e}");
                            continue;
                        }
                    };
                let slice = match seg.slice {
                    SliceId::Slice(s) => s as i32,
                    SliceId::All => 0,
                };
                let base = out.next_block.entry((t.id, slice)).or_default();
                let first = *base;
                *base += reader.block_count() as i64;
                let schema = reader.schema();
                for (col, chunk) in reader.footer().columns.iter().enumerate() {
                    // Columns are found by the name they are stored under; a dropped
                    // column's blocks keep their position in the segment.
                    let col_no = t
                        .columns
                        .iter()
                        .position(|c| {
                            Some(c.stored.as_str())
                                == schema.fields().get(col).map(|f| f.name().as_str())
                        })
                        .unwrap_or(col) as i32;
                    for (b, meta) in chunk.blocks.iter().enumerate() {
                        let int = |z: &Option<ZoneValue>| match z {
                            Some(ZoneValue::Int(v)) => Some(*v),
                            _ => None,
                        };
                        out.name.push(t.name.clone());
                        out.slice.push(slice);
                        out.col.push(col_no);
                        out.tbl.push(t.id as i32);
                        out.blocknum.push(first + b as i64);
                        out.num_values.push(i64::from(meta.rows));
                        out.minvalue.push(int(&meta.min));
                        out.maxvalue.push(int(&meta.max));
                        out.unsorted.push(i32::from(!seg.sorted_region));
                        out.encoding.push(match meta.codec {
                            // LZ4 serves Redshift's LZO.
                            basalt_storage::segment::Codec::Lz4
                            | basalt_storage::segment::Codec::Lz4Strings => "lzo".into(),
                            basalt_storage::segment::Codec::ZstdStrings => "zstd".into(),
                            other => format!("{other:?}").to_lowercase(),
                        });
                        out.bytes.push(i64::from(meta.len));
                    }
                }
            }
        }
        let n = out.slice.len();
        let mut columns: Vec<(&str, ArrayRef)> = vec![];
        if with_names {
            columns.push(("db_id", Arc::new(Int32Array::from(vec![1; n]))));
            columns.push(("name", Arc::new(StringArray::from(out.name))));
        }
        columns.extend([
            ("slice", Arc::new(Int32Array::from(out.slice)) as ArrayRef),
            ("col", Arc::new(Int32Array::from(out.col))),
            ("tbl", Arc::new(Int32Array::from(out.tbl))),
            ("blocknum", Arc::new(Int64Array::from(out.blocknum))),
            ("num_values", Arc::new(Int64Array::from(out.num_values))),
            ("minvalue", Arc::new(Int64Array::from(out.minvalue))),
            ("maxvalue", Arc::new(Int64Array::from(out.maxvalue))),
            ("unsorted", Arc::new(Int32Array::from(out.unsorted))),
            ("tombstone", Arc::new(Int32Array::from(vec![0; n]))),
            ("encoding", Arc::new(StringArray::from(out.encoding))),
            ("bytes", Arc::new(Int64Array::from(out.bytes))),
        ]);
        batch(columns)
    }

    /// Rows COPY rejected, with Redshift's columns (`slice` is the first slice of the
    /// worker that read the row; Basalt keeps the whole raw line, not 1,024 characters).
    fn stl_load_errors(&self) -> RecordBatch {
        let rows = self.loads.errors.snapshot();
        batch(vec![
            ("userid", int4s(&rows, |_| 1)),
            ("slice", int4s(&rows, |r| r.slice as i32)),
            ("tbl", int4s(&rows, |r| r.table_id as i32)),
            ("starttime", times(&rows, |r| r.start_us)),
            ("session", int4s(&rows, |_| 0)),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("filename", texts(&rows, |r| r.error.filename.clone())),
            ("line_number", int8s(&rows, |r| r.error.line_number)),
            ("colname", texts(&rows, |r| r.error.colname.clone())),
            ("type", texts(&rows, |r| r.error.col_type.clone())),
            ("col_length", texts(&rows, |r| r.error.col_length.clone())),
            ("position", int4s(&rows, |r| r.error.position)),
            ("raw_line", texts(&rows, |r| r.error.raw_line.clone())),
            (
                "raw_field_value",
                texts(&rows, |r| r.error.raw_field_value.clone()),
            ),
            ("err_code", int4s(&rows, |r| r.error.err_code)),
            ("err_reason", texts(&rows, |r| r.error.err_reason.clone())),
        ])
    }

    /// Per-field detail of rejected rows: the field's position, column, value and type;
    /// at most 20 per slice per COPY, as Redshift.
    fn stl_loaderror_detail(&self) -> RecordBatch {
        let mut per_slice: std::collections::BTreeMap<(u64, u32), usize> = Default::default();
        let rows: Vec<crate::system::loads::LoadErrorRow> = self
            .loads
            .errors
            .snapshot()
            .into_iter()
            .filter(|r| r.field.is_some())
            .filter(|r| {
                let n = per_slice.entry((r.query, r.slice)).or_default();
                *n += 1;
                *n <= 20
            })
            .collect();
        batch(vec![
            ("userid", int4s(&rows, |_| 1)),
            ("slice", int4s(&rows, |r| r.slice as i32)),
            ("session", int4s(&rows, |_| 0)),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("filename", texts(&rows, |r| r.error.filename.clone())),
            ("line_number", int8s(&rows, |r| r.error.line_number)),
            ("field", int4s(&rows, |r| r.field.unwrap_or(0) as i32)),
            ("colname", texts(&rows, |r| r.error.colname.clone())),
            ("value", texts(&rows, |r| r.error.raw_field_value.clone())),
            (
                "is_null",
                int4s(&rows, |r| i32::from(r.error.raw_field_value.is_empty())),
            ),
            ("type", texts(&rows, |r| r.error.col_type.clone())),
            ("col_length", texts(&rows, |r| r.error.col_length.clone())),
        ])
    }

    /// Progress of running COPYs: one row per worker with a share, from the worker's own
    /// counters (bytes and lines done, files finished, the last file).
    async fn stv_load_state(&self) -> RecordBatch {
        let running = self.loads.running();
        let mut out: Vec<LoadShare> = vec![];
        if !running.is_empty() {
            for w in self.cluster.workers() {
                let progress = self
                    .cluster
                    .call(w.node_id, &w.addr, protocol::ACTION_LOAD_STATE, vec![])
                    .await
                    .and_then(|b| {
                        protocol::decode::<Vec<LoadProgress>>(&b)
                            .map_err(|e| sql_err!(code::INTERNAL, "load state: {e}"))
                    });
                let progress = match progress {
                    Ok(p) => p,
                    Err(e) => {
                        warn!("stv_load_state: {e}");
                        continue;
                    }
                };
                for load in &running {
                    let Some(&(_, bytes, files)) =
                        load.shares.iter().find(|(n, _, _)| *n == w.node_id)
                    else {
                        continue;
                    };
                    if files == 0 {
                        continue;
                    }
                    let p = progress
                        .iter()
                        .find(|p| p.query == load.query)
                        .cloned()
                        .unwrap_or_default();
                    out.push((load.clone(), w.node_id, bytes, files, p));
                }
            }
        }
        let now = crate::now_us();
        let spn = self.cluster.slices_per_node;
        batch(vec![
            ("userid", int4s(&out, |_| 1)),
            ("session", int4s(&out, |_| 0)),
            ("query", int4s(&out, |r| r.0.query as i32)),
            ("slice", int4s(&out, |r| (r.1 * spn) as i32)),
            ("pid", int4s(&out, |_| 0)),
            (
                "recordtime",
                Arc::new(TimestampMicrosecondArray::from(vec![now; out.len()])),
            ),
            ("bytes_to_load", int8s(&out, |r| r.2 as i64)),
            ("bytes_loaded", int8s(&out, |r| r.4.bytes_loaded as i64)),
            ("bytes_to_load_compressed", int8s(&out, |r| r.2 as i64)),
            (
                "bytes_loaded_compressed",
                int8s(&out, |r| r.4.bytes_loaded as i64),
            ),
            ("lines", int4s(&out, |r| r.4.lines as i32)),
            ("num_files", int4s(&out, |r| r.3 as i32)),
            (
                "num_files_complete",
                int4s(&out, |r| r.4.files_complete as i32),
            ),
            ("current_file", texts(&out, |r| r.4.current_file.clone())),
            (
                "pct_complete",
                int4s(&out, |r| {
                    (r.4.bytes_loaded * 100 / r.2.max(1)).min(100) as i32
                }),
            ),
        ])
    }

    /// The files each successful COPY loaded, with their line counts.
    fn stl_load_commits(&self) -> RecordBatch {
        let rows = self.loads.commits.snapshot();
        let n = rows.len();
        batch(vec![
            ("userid", Arc::new(Int32Array::from(vec![1; n]))),
            ("slice", Arc::new(Int32Array::from(vec![0; n]))),
            ("name", texts(&rows, |r| r.filename.clone())),
            ("filename", texts(&rows, |r| r.filename.clone())),
            ("lines_scanned", int8s(&rows, |r| r.lines_scanned as i64)),
            ("curtime", times(&rows, |r| r.curtime_us)),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("status", Arc::new(Int32Array::from(vec![1; n]))),
            ("file_format", texts(&rows, |r| r.file_format)),
            ("is_partial", Arc::new(Int32Array::from(vec![0; n]))),
            ("start_offset", Arc::new(Int64Array::from(vec![0i64; n]))),
        ])
    }

    /// One row per file of every recent UNLOAD, with Redshift's columns (`pid` is the
    /// leader's process id; `slice` the slice, or output partition, that wrote the file)
    /// and Basalt's `node`: the worker node that wrote it, -1 for the leader.
    fn stl_unload_log(&self) -> RecordBatch {
        let rows = self.unloads.snapshot();
        batch(vec![
            ("userid", int4s(&rows, |_| 1)),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("slice", int4s(&rows, |r| r.file.slice as i32)),
            (
                "node",
                int4s(&rows, |r| r.file.node.map_or(-1, |n| n as i32)),
            ),
            ("pid", int4s(&rows, |r| r.pid as i32)),
            ("path", texts(&rows, |r| r.file.url.clone())),
            ("start_time", times(&rows, |r| r.file.start_us)),
            ("end_time", times(&rows, |r| r.file.end_us)),
            ("line_count", int8s(&rows, |r| r.file.rows as i64)),
            ("transfer_size", int8s(&rows, |r| r.file.bytes as i64)),
            ("file_format", texts(&rows, |r| r.format.name())),
        ])
    }

    /// Finished queries, oldest first, with Redshift's columns (`querytxt` in full).
    fn stl_query(&self) -> RecordBatch {
        let rows = self.queries.finished();
        batch(vec![
            ("userid", int4s(&rows, |r| user_id(&r.user))),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("label", texts(&rows, |r| r.label.clone())),
            ("xid", int8s(&rows, |r| r.query as i64)),
            ("pid", int4s(&rows, |r| r.pid)),
            ("database", texts(&rows, |_| "dev")),
            ("querytxt", texts(&rows, |r| r.text.clone())),
            ("starttime", times(&rows, |r| r.start)),
            ("endtime", times(&rows, |r| r.end.unwrap_or(r.start))),
            ("aborted", int4s(&rows, |r| i32::from(r.aborted))),
            ("insert_pristine", int4s(&rows, |_| 0)),
            ("concurrency_scaling_status", int4s(&rows, |_| 0)),
        ])
    }

    /// `stl_query` in a readable shape: elapsed microseconds and the text's first 60
    /// characters.
    fn svl_qlog(&self) -> RecordBatch {
        let rows = self.queries.finished();
        let elapsed = |r: &crate::system::querylog::QueryRecord| r.end.unwrap_or(r.start) - r.start;
        batch(vec![
            ("userid", int4s(&rows, |r| user_id(&r.user))),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("xid", int8s(&rows, |r| r.query as i64)),
            ("pid", int4s(&rows, |r| r.pid)),
            ("starttime", times(&rows, |r| r.start)),
            ("endtime", times(&rows, |r| r.end.unwrap_or(r.start))),
            ("elapsed", int8s(&rows, elapsed)),
            ("aborted", int4s(&rows, |r| i32::from(r.aborted))),
            ("label", texts(&rows, |r| r.label.clone())),
            (
                "substring",
                texts(&rows, |r| r.text.chars().take(60).collect::<String>()),
            ),
        ])
    }

    /// Queries running now (the leader's view: one row per query, slice -1).
    fn stv_inflight(&self) -> RecordBatch {
        let rows = self.queries.running();
        batch(vec![
            ("userid", int4s(&rows, |r| user_id(&r.user))),
            ("slice", int4s(&rows, |_| -1)),
            ("query", int4s(&rows, |r| r.query as i32)),
            ("label", texts(&rows, |r| r.label.clone())),
            ("xid", int8s(&rows, |r| r.query as i64)),
            ("pid", int4s(&rows, |r| r.pid)),
            ("starttime", times(&rows, |r| r.start)),
            ("text", texts(&rows, |r| r.text.clone())),
            ("suspended", int4s(&rows, |_| 0)),
            ("insert_pristine", int4s(&rows, |_| 0)),
            ("concurrency_scaling_status", int4s(&rows, |_| 0)),
        ])
    }

    /// Running queries and the 100 most recently finished: status, and duration in
    /// microseconds (so far, for a running one).
    fn stv_recents(&self) -> RecordBatch {
        let now = crate::now_us();
        let finished = self.queries.finished();
        let recent = finished.len().saturating_sub(100);
        let rows: Vec<_> = self
            .queries
            .running()
            .into_iter()
            .chain(finished.into_iter().skip(recent))
            .collect();
        batch(vec![
            ("userid", int4s(&rows, |r| user_id(&r.user))),
            (
                "status",
                texts(&rows, |r| if r.end.is_some() { "Done" } else { "Running" }),
            ),
            ("starttime", times(&rows, |r| r.start)),
            ("duration", int8s(&rows, |r| r.end.unwrap_or(now) - r.start)),
            ("user_name", texts(&rows, |r| r.user.clone())),
            ("db_name", texts(&rows, |_| "dev")),
            ("query", texts(&rows, |r| r.text.clone())),
            ("pid", int4s(&rows, |r| r.pid)),
        ])
    }

    /// Every live worker's scan log. A worker that cannot be reached contributes nothing
    /// (its log is gone with it, as a node's STL log is on Redshift).
    async fn stl_scan(&self) -> RecordBatch {
        let mut records: Vec<(u32, ScanRecord)> = self.worker_logs(protocol::ACTION_SCAN_LOG).await;
        records.sort_by_key(|(_, r)| (r.query, r.slice, r.start_us));
        let slice_of = |node: u32, r: &ScanRecord| self.slice_number(node, r.slice);
        let col_i32 = |f: &dyn Fn(u32, &ScanRecord) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from(
                records.iter().map(|(n, r)| f(*n, r)).collect::<Vec<_>>(),
            ))
        };
        let col_i64 = |f: &dyn Fn(&ScanRecord) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(
                records.iter().map(|(_, r)| f(r)).collect::<Vec<_>>(),
            ))
        };
        let col_ts = |f: &dyn Fn(&ScanRecord) -> i64| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(
                records.iter().map(|(_, r)| f(r)).collect::<Vec<_>>(),
            ))
        };
        batch(vec![
            ("userid", col_i32(&|_, _| 1)),
            ("query", col_i32(&|_, r| r.query as i32)),
            ("slice", col_i32(&slice_of)),
            ("segment", col_i32(&|_, _| 0)),
            ("step", col_i32(&|_, _| 0)),
            ("starttime", col_ts(&|r| r.start_us)),
            ("endtime", col_ts(&|r| r.end_us)),
            ("tbl", col_i32(&|_, r| r.table_id as i32)),
            ("rows", col_i64(&|r| r.rows as i64)),
            ("bytes", col_i64(&|r| r.bytes as i64)),
            ("rows_pre_filter", col_i64(&|r| r.rows_pre_filter as i64)),
            (
                "is_rrscan",
                Arc::new(StringArray::from(
                    records
                        .iter()
                        .map(|(_, r)| if r.is_rrscan { "t" } else { "f" })
                        .collect::<Vec<_>>(),
                )),
            ),
            (
                "perm_table_name",
                Arc::new(StringArray::from(
                    records
                        .iter()
                        .map(|(_, r)| r.table_name.as_str())
                        .collect::<Vec<_>>(),
                )),
            ),
            ("blocks_total", col_i64(&|r| r.blocks_total as i64)),
            ("blocks_scanned", col_i64(&|r| r.blocks_scanned as i64)),
        ])
    }

    /// One log from every live worker, with the node it came from. A worker that cannot be
    /// reached contributes nothing (its log is gone with it, as a node's STL log is on
    /// Redshift).
    async fn worker_logs<T: DeserializeOwned>(&self, action: &str) -> Vec<(u32, T)> {
        let mut records = vec![];
        for w in self.cluster.workers() {
            match self
                .cluster
                .call(w.node_id, &w.addr, action, vec![])
                .await
                .and_then(|b| {
                    protocol::decode::<Vec<T>>(&b)
                        .map_err(|e| sql_err!(code::INTERNAL, "{action} reply: {e}"))
                }) {
                Ok(log) => records.extend(log.into_iter().map(|r| (w.node_id, r))),
                Err(e) => warn!("{action}: {e}"),
            }
        }
        records
    }

    /// The slice a worker's record names (the single copy of a DISTSTYLE ALL table is
    /// read on the node's first slice).
    fn slice_number(&self, node: u32, slice: SliceId) -> i32 {
        match slice {
            SliceId::Slice(s) => s as i32,
            SliceId::All => (node * self.cluster.slices_per_node) as i32,
        }
    }

    /// Every step of every recent query on every slice: scans (segment 0, label
    /// `scan   tbl=<id> name=<table>`, bytes read) and exchanges into the slice (segment 1,
    /// label `dist` or `bcast`, bytes received over the network).
    async fn report_steps(&self) -> Vec<ReportStep> {
        let scans: Vec<(u32, ScanRecord)> = self.worker_logs(protocol::ACTION_SCAN_LOG).await;
        let exchanges: Vec<(u32, ExchangeRecord)> =
            self.worker_logs(protocol::ACTION_EXCHANGE_LOG).await;
        let mut steps: Vec<ReportStep> = scans
            .into_iter()
            .map(|(node, r)| ReportStep {
                query: r.query,
                slice: self.slice_number(node, r.slice),
                segment: 0,
                start_us: r.start_us,
                end_us: r.end_us,
                rows: r.rows,
                bytes: r.bytes,
                label: format!("scan   tbl={} name={}", r.table_id, r.table_name),
                is_rrscan: r.is_rrscan,
                rows_pre_filter: r.rows_pre_filter,
            })
            .collect();
        steps.extend(exchanges.into_iter().map(|(node, r)| ReportStep {
            query: r.query,
            slice: self.slice_number(node, r.slice),
            segment: 1,
            start_us: r.start_us,
            end_us: r.end_us,
            rows: r.rows,
            bytes: r.bytes,
            label: r.label,
            is_rrscan: false,
            rows_pre_filter: 0,
        }));
        steps.sort_by(|a, b| {
            (a.query, a.segment, &a.label, a.slice, a.start_us)
                .cmp(&(b.query, b.segment, &b.label, b.slice, b.start_us))
        });
        steps
    }

    async fn svl_query_report(&self) -> RecordBatch {
        let steps = self.report_steps().await;
        let i32s = |f: &dyn Fn(&ReportStep) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from(steps.iter().map(f).collect::<Vec<_>>()))
        };
        let i64s = |f: &dyn Fn(&ReportStep) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(steps.iter().map(f).collect::<Vec<_>>()))
        };
        let ts = |f: &dyn Fn(&ReportStep) -> i64| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(
                steps.iter().map(f).collect::<Vec<_>>(),
            ))
        };
        let texts = |f: &dyn Fn(&ReportStep) -> String| -> ArrayRef {
            Arc::new(StringArray::from(steps.iter().map(f).collect::<Vec<_>>()))
        };
        batch(vec![
            ("userid", i32s(&|_| 1)),
            ("query", i32s(&|s| s.query as i32)),
            ("slice", i32s(&|s| s.slice)),
            ("segment", i32s(&|s| s.segment)),
            ("step", i32s(&|_| 0)),
            ("start_time", ts(&|s| s.start_us)),
            ("end_time", ts(&|s| s.end_us)),
            ("elapsed", i64s(&|s| s.end_us - s.start_us)),
            ("rows", i64s(&|s| s.rows as i64)),
            ("bytes", i64s(&|s| s.bytes as i64)),
            ("label", texts(&|s| s.label.clone())),
            ("is_diskbased", texts(&|_| "f".into())),
            ("workmem", i64s(&|_| 0)),
            (
                "is_rrscan",
                texts(&|s| if s.is_rrscan { "t" } else { "f" }.into()),
            ),
            ("is_delayed_scan", texts(&|_| "f".into())),
            ("rows_pre_filter", i64s(&|s| s.rows_pre_filter as i64)),
        ])
    }

    /// `svl_query_report` summed over slices: one row per query step.
    async fn svl_query_summary(&self) -> RecordBatch {
        let mut steps: BTreeMap<StepKey, Vec<ReportStep>> = BTreeMap::new();
        for s in self.report_steps().await {
            steps
                .entry((s.query, s.segment, s.label.clone()))
                .or_default()
                .push(s);
        }
        let rows: Vec<_> = steps.into_iter().collect();
        let i32s = |f: &dyn Fn(&StepKey, &[ReportStep]) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from(
                rows.iter().map(|(k, v)| f(k, v)).collect::<Vec<_>>(),
            ))
        };
        let i64s = |f: &dyn Fn(&[ReportStep]) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(
                rows.iter().map(|(_, v)| f(v)).collect::<Vec<_>>(),
            ))
        };
        let texts = |f: &dyn Fn(&StepKey, &[ReportStep]) -> String| -> ArrayRef {
            Arc::new(StringArray::from(
                rows.iter().map(|(k, v)| f(k, v)).collect::<Vec<_>>(),
            ))
        };
        fn elapsed(v: &[ReportStep]) -> impl Iterator<Item = i64> + '_ {
            v.iter().map(|s| s.end_us - s.start_us)
        }
        batch(vec![
            ("userid", i32s(&|_, _| 1)),
            ("query", i32s(&|k, _| k.0 as i32)),
            ("stm", i32s(&|_, _| 0)),
            ("seg", i32s(&|k, _| k.1)),
            ("step", i32s(&|_, _| 0)),
            ("maxtime", i64s(&|v| elapsed(v).max().unwrap_or(0))),
            (
                "avgtime",
                i64s(&|v| elapsed(v).sum::<i64>() / v.len().max(1) as i64),
            ),
            ("rows", i64s(&|v| v.iter().map(|s| s.rows as i64).sum())),
            ("bytes", i64s(&|v| v.iter().map(|s| s.bytes as i64).sum())),
            ("label", texts(&|k, _| k.2.clone())),
            ("is_diskbased", texts(&|_, _| "f".into())),
            ("workmem", i64s(&|_| 0)),
            (
                "is_rrscan",
                texts(&|_, v| {
                    if v.iter().any(|s| s.is_rrscan) {
                        "t"
                    } else {
                        "f"
                    }
                    .into()
                }),
            ),
            ("is_delayed_scan", texts(&|_, _| "f".into())),
            (
                "rows_pre_filter",
                i64s(&|v| v.iter().map(|s| s.rows_pre_filter as i64).sum()),
            ),
        ])
    }

    /// Rows per slice of one table; DISTSTYLE ALL tables report their copy on every node's
    /// first slice, as Redshift does.
    fn slice_rows(&self, t: &TableDef) -> BTreeMap<u32, u64> {
        let mut rows: BTreeMap<u32, u64> =
            (0..self.cluster.slice_count()).map(|s| (s, 0)).collect();
        for seg in &t.segments {
            match seg.slice {
                SliceId::Slice(s) => *rows.entry(s).or_default() += seg.rows,
                SliceId::All => {
                    for node in 0..self.cluster.nodes {
                        *rows.entry(node * self.cluster.slices_per_node).or_default() += seg.rows;
                    }
                }
            }
        }
        rows
    }

    fn stv_tbl_perm(&self, view: &CatalogState) -> RecordBatch {
        let (mut slice, mut id, mut name, mut rows, mut backup) =
            (vec![], vec![], vec![], vec![], vec![]);
        for t in view.tables.values() {
            for (s, r) in self.slice_rows(t) {
                slice.push(s as i32);
                id.push(t.id as i64);
                name.push(t.name.clone());
                rows.push(r as i64);
                backup.push(i32::from(t.backup));
            }
        }
        let sorted = rows.clone();
        batch(vec![
            ("slice", Arc::new(Int32Array::from(slice))),
            ("id", Arc::new(Int64Array::from(id))),
            ("name", Arc::new(StringArray::from(name))),
            ("rows", Arc::new(Int64Array::from(rows))),
            ("sorted_rows", Arc::new(Int64Array::from(sorted))),
            ("backup", Arc::new(Int32Array::from(backup))),
        ])
    }

    /// Encoded bytes of each column of `t` (by column position), summed over the blocks
    /// of its segments' footers.
    async fn column_bytes(&self, t: &TableDef) -> Vec<u64> {
        let mut bytes = vec![0u64; t.columns.len()];
        for seg in &t.segments {
            let path = object_store::path::Path::from(seg.path.as_str());
            let Ok(reader) = SegmentReader::open_footer(self.storage.store.as_ref(), &path).await
            else {
                continue;
            };
            let schema = reader.schema();
            for (field, chunk) in schema.fields().iter().zip(&reader.footer().columns) {
                if let Some(i) = t.columns.iter().position(|c| &c.stored == field.name()) {
                    bytes[i] += chunk.blocks.iter().map(|b| u64::from(b.len)).sum::<u64>();
                }
            }
        }
        bytes
    }

    /// Per-table design and health, as Redshift's view: tables without rows stored are
    /// not listed.
    async fn svv_table_info(&self, view: &CatalogState) -> RecordBatch {
        let tables: Vec<&Arc<TableDef>> = view
            .tables
            .values()
            .filter(|t| !t.segments.is_empty())
            .collect();
        let capacity = self.storage.local_capacity();
        let mut skew_sortkey1 = Vec::with_capacity(tables.len());
        for t in &tables {
            // Largest non-sort-key column relative to the first sort key column.
            skew_sortkey1.push(match t.sort_key.first() {
                Some(&k) => {
                    let bytes = self.column_bytes(t).await;
                    let largest = bytes
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !t.sort_key.contains(i))
                        .map(|(_, b)| *b)
                        .max();
                    match (largest, bytes[k]) {
                        (Some(l), k) if k > 0 => Some(l as f64 / k as f64),
                        _ => None,
                    }
                }
                None => None,
            });
        }
        let strings = |f: &dyn Fn(&TableDef) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(
                tables.iter().map(|t| f(t)).collect::<Vec<_>>(),
            ))
        };
        let ints = |f: &dyn Fn(&TableDef) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(
                tables.iter().map(|t| f(t)).collect::<Vec<_>>(),
            ))
        };
        let int4s = |f: &dyn Fn(&TableDef) -> Option<i32>| -> ArrayRef {
            Arc::new(Int32Array::from(
                tables.iter().map(|t| f(t)).collect::<Vec<_>>(),
            ))
        };
        // Ratio of the fullest slice to the emptiest (NULL while a slice is empty).
        let skew: Vec<Option<f64>> = tables
            .iter()
            .map(|t| {
                let per_slice = self.slice_rows(t);
                let used: Vec<u64> = match t.dist {
                    DistStyle::All => per_slice.values().copied().filter(|r| *r > 0).collect(),
                    _ => per_slice.values().copied().collect(),
                };
                let max = used.iter().copied().max().unwrap_or(0);
                let min = used.iter().copied().min().unwrap_or(0);
                (min > 0).then(|| max as f64 / min as f64)
            })
            .collect();
        let table_bytes = |t: &TableDef| t.segments.iter().map(|s| s.bytes).sum::<u64>();
        batch(vec![
            ("database", strings(&|_| Some("dev".into()))),
            ("schema", strings(&|t| Some(t.schema.clone()))),
            ("table_id", int4s(&|t| Some(t.id as i32))),
            ("table", strings(&|t| Some(t.name.clone()))),
            (
                "encoded",
                strings(&|t| {
                    let encoded = t.columns.iter().any(|c| c.encoding != "raw");
                    Some(if encoded { "Y" } else { "N" }.into())
                }),
            ),
            ("diststyle", strings(&|t| Some(t.diststyle_name()))),
            (
                "sortkey1",
                strings(&|t| {
                    let first = t.sort_key.first().map(|i| t.columns[*i].name.clone())?;
                    Some(match t.sort_kind {
                        crate::sql::SortKind::Interleaved => {
                            format!("INTERLEAVED({first})")
                        }
                        crate::sql::SortKind::Compound => first,
                    })
                }),
            ),
            (
                "max_varchar",
                int4s(&|t| {
                    t.columns
                        .iter()
                        .filter_map(|c| match c.sql_type {
                            crate::sql::types::SqlType::Varchar(n) => Some(n as i32),
                            _ => None,
                        })
                        .max()
                }),
            ),
            (
                "sortkey1_enc",
                strings(&|t| t.sort_key.first().map(|i| t.columns[*i].encoding.clone())),
            ),
            ("sortkey_num", int4s(&|t| Some(t.sort_key.len() as i32))),
            (
                "size",
                ints(&|t| table_bytes(t).div_ceil(1024 * 1024) as i64),
            ),
            (
                "pct_used",
                numeric(
                    tables
                        .iter()
                        .map(|t| capacity.map(|c| table_bytes(t) as f64 * 100.0 / c as f64)),
                    10,
                    4,
                ),
            ),
            ("empty", ints(&|_| 0)),
            (
                "unsorted",
                numeric(tables.iter().map(|t| unsorted_pct(t)), 5, 2),
            ),
            (
                "stats_off",
                numeric(tables.iter().map(|t| Some(t.stats_off())), 5, 2),
            ),
            // Redshift counts rows marked for deletion until VACUUM removes them.
            (
                "tbl_rows",
                numeric(tables.iter().map(|t| Some(t.stored_rows() as f64)), 38, 0),
            ),
            ("skew_sortkey1", numeric(skew_sortkey1, 19, 2)),
            ("skew_rows", numeric(skew, 19, 2)),
            (
                "estimated_visible_rows",
                numeric(tables.iter().map(|t| Some(t.rows() as f64)), 38, 0),
            ),
        ])
    }
}

/// Percentage of a sorted table's rows outside its sorted region: the first segment
/// written to each empty slice and VACUUM's output are sorted; every later INSERT/COPY
/// appends segments sorted only within themselves, until VACUUM merges them. NULL for a
/// table without a sort key (as in Redshift).
pub fn unsorted_pct(t: &TableDef) -> Option<f64> {
    if t.sort_key.is_empty() {
        return None;
    }
    let total = t.stored_rows();
    if total == 0 {
        return Some(0.0);
    }
    let unsorted: u64 = t
        .segments
        .iter()
        .filter(|s| !s.sorted_region)
        .map(|s| s.rows)
        .sum();
    Some((unsorted as f64 * 10_000.0 / total as f64).round() / 100.0)
}

/// Rows of `stv_blocklist` being built.
#[derive(Default)]
struct BlockRows {
    /// Next block number per (table, slice).
    next_block: std::collections::HashMap<(u64, i32), i64>,
    name: Vec<String>,
    slice: Vec<i32>,
    col: Vec<i32>,
    tbl: Vec<i32>,
    blocknum: Vec<i64>,
    num_values: Vec<i64>,
    minvalue: Vec<Option<i64>>,
    maxvalue: Vec<Option<i64>>,
    unsorted: Vec<i32>,
    encoding: Vec<String>,
    bytes: Vec<i64>,
}

/// Redshift's `pg_table_def`: one row per column of every user table.
fn pg_table_def(view: &CatalogState) -> RecordBatch {
    let mut rows: Vec<(&TableDef, usize)> = vec![];
    for t in view.tables.values() {
        rows.extend((0..t.columns.len()).map(|i| (t.as_ref(), i)));
    }
    let text = |f: &dyn Fn(&TableDef, usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|(t, i)| f(t, *i)).collect::<Vec<_>>(),
        ))
    };
    let sortkey: Vec<i32> = rows
        .iter()
        .map(|(t, i)| {
            let pos = t
                .sort_key
                .iter()
                .position(|k| k == i)
                .map_or(0, |p| p as i32 + 1);
            // Interleaved keys are reported negative, as Redshift does.
            match t.sort_kind {
                crate::sql::SortKind::Interleaved => -pos,
                crate::sql::SortKind::Compound => pos,
            }
        })
        .collect();
    batch(vec![
        ("schemaname", text(&|t, _| t.schema.clone())),
        ("tablename", text(&|t, _| t.name.clone())),
        ("column", text(&|t, i| t.columns[i].name.clone())),
        ("type", text(&|t, i| t.columns[i].sql_type.display_name())),
        (
            "encoding",
            text(&|t, i| {
                // Redshift reports RAW as "none".
                let e = &t.columns[i].encoding;
                if e.is_empty() || e == "raw" {
                    "none".into()
                } else {
                    e.clone()
                }
            }),
        ),
        (
            "distkey",
            Arc::new(datafusion::arrow::array::BooleanArray::from(
                rows.iter()
                    .map(|(t, i)| t.dist == DistStyle::Key(*i))
                    .collect::<Vec<_>>(),
            )),
        ),
        ("sortkey", Arc::new(Int32Array::from(sortkey))),
        (
            "notnull",
            Arc::new(datafusion::arrow::array::BooleanArray::from(
                rows.iter()
                    .map(|(t, i)| !t.columns[*i].nullable)
                    .collect::<Vec<_>>(),
            )),
        ),
    ])
}

/// What ANALYZE recorded, one row per analyzed column: PostgreSQL's `pg_stats` columns
/// (`null_frac`, `n_distinct`) plus the bounds Basalt keeps (`min_value`, `max_value`).
fn pg_stats(view: &CatalogState) -> RecordBatch {
    let mut rows: Vec<(&TableDef, &crate::catalog::ColumnStats, u64)> = vec![];
    for t in view.tables.values() {
        if let Some(s) = &t.stats {
            rows.extend(s.columns.iter().map(|c| (t.as_ref(), c, s.rows)));
        }
    }
    let text = |f: &dyn Fn(&TableDef, &crate::catalog::ColumnStats) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|(t, c, _)| f(t, c)).collect::<Vec<_>>(),
        ))
    };
    batch(vec![
        ("schemaname", text(&|t, _| Some(t.schema.clone()))),
        ("tablename", text(&|t, _| Some(t.name.clone()))),
        ("attname", text(&|_, c| Some(c.name.clone()))),
        (
            "null_frac",
            Arc::new(Float64Array::from(
                rows.iter()
                    .map(|(_, c, n)| c.null_count as f64 / (*n).max(1) as f64)
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "n_distinct",
            Arc::new(Float64Array::from(
                rows.iter()
                    .map(|(_, c, _)| c.distinct as f64)
                    .collect::<Vec<_>>(),
            )),
        ),
        ("min_value", text(&|_, c| c.min.clone())),
        ("max_value", text(&|_, c| c.max.clone())),
    ])
}

/// A NUMERIC(precision, scale) column, as Redshift types its sizes, percentages and ratios.
fn numeric(values: impl IntoIterator<Item = Option<f64>>, precision: u8, scale: i8) -> ArrayRef {
    let factor = 10f64.powi(i32::from(scale));
    let scaled: Decimal128Array = values
        .into_iter()
        .map(|v| v.map(|v| (v * factor).round() as i128))
        .collect();
    Arc::new(
        scaled
            .with_precision_and_scale(precision, scale)
            .expect("scale fits every precision used here"),
    )
}

/// A column of a system table: `f` of every row, as INT4, INT8, TEXT or TIMESTAMP
/// (microseconds).
/// `userid` as the system tables show it: the user's `pg_user.usesysid`.
fn user_id(name: &str) -> i32 {
    crate::system::pg_catalog::user_oid(name) as i32
}

fn int4s<R>(rows: &[R], f: impl Fn(&R) -> i32) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(rows.iter().map(f)))
}

fn int8s<R>(rows: &[R], f: impl Fn(&R) -> i64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
}

fn texts<R, S: AsRef<str>>(rows: &[R], f: impl Fn(&R) -> S) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

fn times<R>(rows: &[R], f: impl Fn(&R) -> i64) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(
        rows.iter().map(f),
    ))
}

/// A query step summed over slices (`svl_query_summary`): query, segment, label.
type StepKey = (u64, i32, String);

/// One step of a query on one slice (`svl_query_report`).
struct ReportStep {
    query: u64,
    slice: i32,
    segment: i32,
    start_us: i64,
    end_us: i64,
    rows: u64,
    bytes: u64,
    label: String,
    is_rrscan: bool,
    rows_pre_filter: u64,
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("system table columns have equal lengths")
}
