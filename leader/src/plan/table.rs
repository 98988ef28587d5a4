//! Basalt tables as DataFusion sees them. [`BasaltCatalog`] exposes one catalog snapshot
//! (schemas, user tables, system tables); [`BasaltTable`] scans a table through a
//! [`ClusterScanExec`] and inserts through [`BasaltSink`], which validates rows, routes
//! each to its slice by the table's DISTSTYLE and streams them to the owning workers, who
//! write the segments. The sink records the new segments in the statement's [`WriteLog`];
//! they become visible only when the transaction commits.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow_flight::FlightDescriptor;
use arrow_flight::encode::FlightDataEncoderBuilder;
use async_trait::async_trait;
use basalt_storage::hash::slices_for_keys;
use basalt_storage::layout::SliceId;
use basalt_worker::exec::codec::BasaltCodec;
use basalt_worker::exec::scan::{ROW_ID_COLUMN, SliceScanExec};
use basalt_worker::protocol::{self, ScanSegment, SegmentRef, WriteRequest};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int32Array, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, SendableRecordBatchStream,
};
use datafusion::prelude::SessionContext;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::catalog::{Catalog, CatalogOp, CatalogState, DistStyle, TableDef};

use crate::catalog::gc::FileGc;
use crate::cluster::Cluster;
use crate::error::{LeaderError, code};
use crate::plan::exec::{ClusterScanExec, Placement, ScanUnit};
use crate::sql::SortKind;
use crate::sql_err;
use crate::system::SystemTables;

/// Catalog changes made by the current statement, not yet committed.
#[derive(Debug, Default)]
pub struct WriteLog {
    ops: Mutex<Vec<CatalogOp>>,
}

impl WriteLog {
    pub fn push(&self, op: CatalogOp) {
        self.ops.lock().expect("lock").push(op);
    }

    pub fn take(&self) -> Vec<CatalogOp> {
        std::mem::take(&mut *self.ops.lock().expect("lock"))
    }
}

/// Next IDENTITY value per (table, column), shared by all sessions of the leader. The
/// high-water mark is committed with the rows that used it, so committed values are
/// never handed out twice, even across restarts.
#[derive(Debug, Default)]
pub struct IdentityCounters {
    /// Keyed by the column's stored name, which DROP COLUMN does not shift.
    next: Mutex<HashMap<(u64, String), i64>>,
    /// Round-robin cursor per table for DISTSTYLE EVEN.
    even_cursor: Mutex<HashMap<u64, u64>>,
}

impl IdentityCounters {
    pub(crate) fn allocate(&self, def: &TableDef, column: usize, count: usize) -> (i64, i64) {
        let step = def.columns[column].identity.as_ref().map_or(1, |i| i.step);
        let mut next = self.next.lock().expect("lock");
        let cur = next
            .entry((def.id, def.columns[column].stored.clone()))
            .or_insert(def.identity_next[column]);
        let committed = def.identity_next[column];
        if (step > 0 && *cur < committed) || (step < 0 && *cur > committed) {
            *cur = committed;
        }
        let start = *cur;
        *cur = start + step * count as i64;
        (start, *cur)
    }

    fn even_start(&self, table_id: u64, rows: usize) -> u64 {
        let mut c = self.even_cursor.lock().expect("lock");
        let cur = c.entry(table_id).or_insert(0);
        let start = *cur;
        *cur = cur.wrapping_add(rows as u64);
        start
    }
}

/// The views a statement reads, planned over the statement's own catalog snapshot
/// ([`crate::plan::engine::views::ViewPlanner`]).
#[async_trait]
pub trait ViewSource: std::fmt::Debug + Send + Sync {
    /// What DataFusion reads for view `def`: its query, planned again.
    async fn provider(
        &self,
        def: &crate::catalog::ViewDef,
    ) -> crate::error::Result<Arc<dyn TableProvider>>;
    /// The columns of every late-binding view (`pg_get_late_binding_view_cols()`).
    async fn late_binding_columns(&self) -> crate::error::Result<RecordBatch>;
}

/// What tables need from the leader to scan and write.
#[derive(Debug, Clone)]
pub struct TableContext {
    pub cluster: Arc<Cluster>,
    pub writes: Arc<WriteLog>,
    pub counters: Arc<IdentityCounters>,
    pub system: Arc<SystemTables>,
    /// The statement's query number, sent to workers with every fragment.
    pub query: u64,
    /// The table whose scans also yield [`ROW_ID_COLUMN`] (a DELETE's or UPDATE's target).
    pub row_ids_for: Option<u64>,
    /// Where a failed write leaves the files it already wrote.
    pub gc: Arc<FileGc>,
    pub catalog: Arc<Catalog>,
    /// Plans the views the statement reads.
    pub views: Arc<dyn ViewSource>,
    /// Every table and view this planning resolves is recorded here, for the privilege
    /// check.
    pub reads: Arc<ReadLog>,
    /// Whose privileges those reads need: the statement's user, or inside a view the
    /// view's owner.
    pub acting_user: String,
}

/// The tables and views a statement's planning resolved, each with the user whose
/// privileges reading it needs (the statement's user, or the owner of the view that
/// names it), and the plan of each view it read with that view's owner (where a user
/// holds only some columns of a relation, which columns a plan reads is worked out
/// from these plans). The commands check these before anything runs.
#[derive(Debug, Default)]
pub struct ReadLog {
    relations: Mutex<Vec<RelationRead>>,
    views: Mutex<Vec<(String, datafusion::logical_expr::LogicalPlan)>>,
}

/// One relation a statement's planning resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationRead {
    pub user: String,
    pub relation: u64,
}

impl ReadLog {
    pub fn record(&self, read: RelationRead) {
        let mut reads = self.relations.lock().expect("read log lock");
        if !reads.contains(&read) {
            reads.push(read);
        }
    }

    /// What has been resolved so far.
    pub fn reads(&self) -> Vec<RelationRead> {
        self.relations.lock().expect("read log lock").clone()
    }

    /// A view's query as planned for the statement, read with `owner`'s privileges.
    pub fn record_view_plan(&self, owner: &str, plan: &datafusion::logical_expr::LogicalPlan) {
        self.views
            .lock()
            .expect("read log lock")
            .push((owner.to_string(), plan.clone()));
    }

    /// The plans of the views read so far, with their owners.
    pub fn view_plans(&self) -> Vec<(String, datafusion::logical_expr::LogicalPlan)> {
        self.views.lock().expect("read log lock").clone()
    }
}

#[derive(Debug)]
pub struct BasaltCatalog {
    pub view: Arc<CatalogState>,
    pub ctx: TableContext,
}

impl CatalogProvider for BasaltCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.view.schemas.iter().cloned().collect();
        names.extend(["pg_catalog".into(), "information_schema".into()]);
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if ["pg_catalog", "information_schema"].contains(&name) || self.view.schemas.contains(name)
        {
            Some(Arc::new(BasaltSchema {
                name: name.to_string(),
                view: self.view.clone(),
                ctx: self.ctx.clone(),
            }))
        } else {
            None
        }
    }
}

#[derive(Debug)]
pub struct BasaltSchema {
    name: String,
    view: Arc<CatalogState>,
    ctx: TableContext,
}

#[async_trait]
impl SchemaProvider for BasaltSchema {
    fn table_names(&self) -> Vec<String> {
        self.view
            .tables_in(&self.name)
            .map(|t| t.name.clone())
            .chain(self.view.views_in(&self.name).map(|v| v.name.clone()))
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(rel) = self.view.relation(&self.name, name) {
            self.ctx.reads.record(RelationRead {
                user: self.ctx.acting_user.clone(),
                relation: rel.id(),
            });
        }
        if let Some(def) = self.view.table(&self.name, name) {
            return Ok(Some(Arc::new(BasaltTable::new(
                def.clone(),
                self.ctx.clone(),
            )?)));
        }
        if let Some(def) = self.view.view(&self.name, name) {
            return Ok(Some(self.ctx.views.provider(def).await?));
        }
        if name == crate::system::pg_catalog::LATE_BINDING_COLUMNS_RELATION {
            let batch = self.ctx.views.late_binding_columns().await?;
            return Ok(Some(Arc::new(datafusion::datasource::MemTable::try_new(
                batch.schema(),
                vec![vec![batch]],
            )?)));
        }
        Ok(self
            .ctx
            .system
            .table(&self.name, name, &self.view, &self.ctx.acting_user)
            .await)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.view.relation(&self.name, name).is_some()
            || name == crate::system::pg_catalog::LATE_BINDING_COLUMNS_RELATION
            || self.ctx.system.exists(&self.name, name)
    }
}

/// Parses DEFAULT expressions (DataFusion's functions and Redshift's, such as
/// `GETDATE()`); one for the process, since a `SessionContext` registers every function
/// when created.
static DEFAULT_EXPR_PARSER: std::sync::LazyLock<SessionContext> = std::sync::LazyLock::new(|| {
    let mut state = datafusion::execution::session_state::SessionStateBuilder::new()
        .with_default_features()
        .build();
    if let Err(e) = crate::sql::functions::register(&mut state, None) {
        tracing::warn!("DEFAULT expressions cannot use Redshift's functions: {e}");
    }
    SessionContext::new_with_state(state)
});

#[derive(Debug)]
pub struct BasaltTable {
    def: Arc<TableDef>,
    schema: SchemaRef,
    ctx: TableContext,
    defaults: HashMap<String, Expr>,
}

impl BasaltTable {
    pub fn new(def: Arc<TableDef>, ctx: TableContext) -> Result<Self> {
        let mut schema = def.arrow_schema();
        if ctx.row_ids_for == Some(def.id) {
            let mut fields = schema.fields().to_vec();
            fields.push(Arc::new(Field::new(ROW_ID_COLUMN, DataType::UInt64, false)));
            schema = Arc::new(Schema::new(fields));
        }
        let mut defaults = HashMap::new();
        let df_schema = DFSchema::try_from(def.arrow_schema().as_ref().clone())?;
        for c in &def.columns {
            if let Some(sql) = &c.default {
                let expr = DEFAULT_EXPR_PARSER.parse_sql_expr(sql, &df_schema)?;
                defaults.insert(c.name.clone(), expr);
            }
        }
        Ok(Self {
            def,
            schema,
            ctx,
            defaults,
        })
    }
}

impl BasaltTable {
    /// The scan's filters as one physical expression over the table schema, if workers can
    /// receive it (it must survive datafusion-proto; a leader-only function would not).
    fn pruning_predicate(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> Option<Arc<dyn PhysicalExpr>> {
        let expr = unnormalize_col(conjunction(filters.iter().cloned())?);
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone()).ok()?;
        let physical = state.create_physical_expr(expr, &df_schema).ok()?;
        serialize_physical_expr(&physical, &BasaltCodec::default()).ok()?;
        Some(physical)
    }
}

/// The scan units of a table: one per slice (so the plan's partitioning does not depend on
/// which slices happen to hold rows), or the single copy of a DISTSTYLE ALL table.
pub(crate) fn scan_units(def: &TableDef, slice_count: u32) -> Vec<ScanUnit> {
    let mut by_slice: BTreeMap<SliceId, Vec<ScanSegment>> = match def.dist {
        DistStyle::All => BTreeMap::from([(SliceId::All, vec![])]),
        _ => (0..slice_count)
            .map(|s| (SliceId::Slice(s), vec![]))
            .collect(),
    };
    for (ordinal, s) in def.segments.iter().enumerate() {
        by_slice.entry(s.slice).or_default().push(ScanSegment {
            path: s.path.clone(),
            deletes: s.deletes.as_ref().map(|d| d.path.clone()),
            ordinal: ordinal as u32,
        });
    }
    by_slice
        .into_iter()
        .map(|(slice, segments)| ScanUnit {
            slice,
            segments,
            also: vec![],
            exchanges: false,
        })
        .collect()
}

#[async_trait]
impl TableProvider for BasaltTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    /// Live rows from the catalog, for join planning.
    fn statistics(&self) -> Option<Statistics> {
        let mut stats = Statistics::new_unknown(&self.schema);
        stats.num_rows = Precision::Inexact(self.def.rows() as usize);
        Some(stats)
    }

    /// Filters reach the scan for zone-map pruning, and DataFusion still applies them to
    /// every row (Inexact): a zone map only proves that a block has *no* match.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let leaf = SliceScanExec::new(
            self.def.id,
            self.def.name.clone(),
            self.schema.clone(),
            projection.cloned(),
            limit,
            self.pruning_predicate(state, filters),
        )?
        .with_columns(self.def.stored_columns());
        // Where the rows live: the DISTKEY column (if the scan yields it) or everywhere.
        let placement = match self.def.dist {
            DistStyle::All => Placement::All,
            DistStyle::Key(k) => {
                let column = match projection {
                    Some(p) => p.iter().position(|&c| c == k),
                    None => Some(k),
                };
                match column {
                    Some(c) => Placement::Key {
                        columns: vec![c],
                        slices: self.ctx.cluster.slice_count() as usize,
                    },
                    None => Placement::Unknown,
                }
            }
            _ => Placement::Unknown,
        };
        Ok(Arc::new(
            ClusterScanExec::new(
                self.def.name.clone(),
                self.ctx.query,
                scan_units(&self.def, self.ctx.cluster.slice_count()),
                Arc::new(leaf),
                self.ctx.cluster.clone(),
            )
            .with_placement(placement)
            .with_rows(self.def.rows()),
        ))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported"
            )));
        }
        let sink = BasaltSink {
            def: self.def.clone(),
            schema: self.schema.clone(),
            storage: self.def.storage_schema(),
            ctx: self.ctx.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

pub struct BasaltSink {
    def: Arc<TableDef>,
    schema: SchemaRef,
    /// What the rows travel to the workers as: columns under their stored names.
    storage: SchemaRef,
    ctx: TableContext,
}

impl fmt::Debug for BasaltSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BasaltSink({})", self.def.name)
    }
}

impl DisplayAs for BasaltSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "BasaltSink: table={}", self.def.name)
    }
}

fn user_err(e: LeaderError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// A stream of batches to one slice's worker, and the task that reports its segments.
struct SliceWriter {
    tx: mpsc::Sender<RecordBatch>,
    done: tokio::task::JoinHandle<Result<Vec<SegmentRef>>>,
}

impl BasaltSink {
    /// Fill IDENTITY columns, then enforce NOT NULL and character lengths; the result is
    /// in the storage schema.
    fn prepare(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let mut columns = batch.columns().to_vec();
        for (i, col) in self.def.columns.iter().enumerate() {
            if col.identity.is_some() && columns[i].null_count() > 0 {
                columns[i] = self.fill_identity(i, &columns[i])?;
            }
            let arr = &columns[i];
            if !col.nullable && arr.null_count() > 0 {
                return Err(user_err(sql_err!(
                    code::NOT_NULL_VIOLATION,
                    "Cannot insert a NULL value into column {}",
                    col.name
                )));
            }
            if let (Some(max), DataType::Binary) =
                (col.sql_type.max_binary_bytes(), arr.data_type())
                && arr
                    .as_binary::<i32>()
                    .iter()
                    .flatten()
                    .any(|b| b.len() > max as usize)
            {
                return Err(user_err(sql_err!(
                    code::STRING_TOO_LONG,
                    "value too long for type {}",
                    col.sql_type.display_name()
                )));
            }
            if let (Some(max), DataType::Utf8) = (col.sql_type.max_bytes(), arr.data_type()) {
                let strings = arr.as_string::<i32>();
                if strings.iter().flatten().any(|s| s.len() > max as usize) {
                    return Err(user_err(sql_err!(
                        code::STRING_TOO_LONG,
                        "value too long for type {}",
                        col.sql_type.display_name()
                    )));
                }
            }
        }
        columns.truncate(self.def.columns.len());
        Ok(RecordBatch::try_new(self.storage.clone(), columns)?)
    }

    fn fill_identity(&self, column: usize, arr: &ArrayRef) -> Result<ArrayRef> {
        let missing = arr.null_count();
        let (start, next) = self.ctx.counters.allocate(&self.def, column, missing);
        self.ctx.writes.push(CatalogOp::SetIdentityNext {
            table_id: self.def.id,
            column,
            next,
        });
        let step = self.def.columns[column]
            .identity
            .as_ref()
            .map_or(1, |i| i.step);
        let mut k = 0i64;
        let mut value = |present: Option<i64>| {
            present.unwrap_or_else(|| {
                let v = start + k * step;
                k += 1;
                v
            })
        };
        let out: ArrayRef = match arr.data_type() {
            DataType::Int64 => {
                let a = arr.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                Arc::new(a.iter().map(|v| Some(value(v))).collect::<Int64Array>())
            }
            DataType::Int32 => {
                let a = arr.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
                Arc::new(
                    a.iter()
                        .map(|v| Some(value(v.map(i64::from)) as i32))
                        .collect::<Int32Array>(),
                )
            }
            DataType::Int16 => {
                let a = arr.as_primitive::<datafusion::arrow::datatypes::Int16Type>();
                Arc::new(
                    a.iter()
                        .map(|v| Some(value(v.map(i64::from)) as i16))
                        .collect::<Int16Array>(),
                )
            }
            other => {
                return Err(user_err(sql_err!(
                    code::DATATYPE_MISMATCH,
                    "IDENTITY column must be SMALLINT, INTEGER or BIGINT, not {other}"
                )));
            }
        };
        Ok(out)
    }

    /// Target slice of every row of `batch`.
    fn route(&self, batch: &RecordBatch, slice_count: u32) -> Result<Vec<SliceId>> {
        Ok(match &self.def.dist {
            DistStyle::Key(k) => slices_for_keys(batch.column(*k), slice_count)
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .into_iter()
                .map(SliceId::Slice)
                .collect(),
            DistStyle::Even | DistStyle::Auto => {
                let start = self.ctx.counters.even_start(self.def.id, batch.num_rows());
                (0..batch.num_rows() as u64)
                    .map(|i| SliceId::Slice(((start + i) % u64::from(slice_count)) as u32))
                    .collect()
            }
            DistStyle::All => vec![SliceId::All; batch.num_rows()],
        })
    }

    fn open_writer(&self, slice: SliceId) -> Result<SliceWriter> {
        let (tx, rx) = mpsc::channel::<RecordBatch>(4);
        let cluster = self.ctx.cluster.clone();
        let request = WriteRequest {
            table_id: self.def.id,
            slice,
            sort_key: self.def.sort_key.clone(),
            interleaved: self.def.sort_kind == SortKind::Interleaved,
            codecs: self.def.codecs(),
        };
        let schema = self.storage.clone();
        let done = tokio::spawn(async move {
            let (node, addr) = cluster.worker_for(slice).map_err(user_err)?;
            let mut client = cluster.client(&addr).await.map_err(|e| {
                user_err(sql_err!(
                    code::CONNECTION_FAILURE,
                    "worker {node} ({addr}) failed while writing {slice}: {}",
                    e.sqlstate().1
                ))
            })?;
            let batches = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok);
            let flight = FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .with_flight_descriptor(Some(FlightDescriptor::new_cmd(protocol::encode(&request))))
                .build(batches);
            let fail = |e: arrow_flight::error::FlightError| {
                user_err(sql_err!(
                    code::CONNECTION_FAILURE,
                    "worker {node} ({addr}) failed while writing {slice}: {e}"
                ))
            };
            let results: Vec<_> = client
                .do_put(flight)
                .await
                .map_err(fail)?
                .try_collect()
                .await
                .map_err(fail)?;
            results
                .into_iter()
                .map(|r| {
                    protocol::decode::<SegmentRef>(&r.app_metadata)
                        .map_err(|e| DataFusionError::External(Box::new(e)))
                })
                .collect()
        });
        Ok(SliceWriter { tx, done })
    }
}

#[async_trait]
impl DataSink for BasaltSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let slice_count = self.ctx.cluster.slice_count();
        let mut writers: BTreeMap<SliceId, SliceWriter> = BTreeMap::new();
        let mut rows = 0u64;
        let outcome: Result<()> = async {
            while let Some(batch) = data.next().await {
                let batch = self.prepare(batch?)?;
                if batch.num_rows() == 0 {
                    continue;
                }
                rows += batch.num_rows() as u64;
                let targets = self.route(&batch, slice_count)?;
                let mut by_slice: BTreeMap<SliceId, Vec<u32>> = BTreeMap::new();
                for (i, s) in targets.iter().enumerate() {
                    by_slice.entry(*s).or_default().push(i as u32);
                }
                for (slice, idx) in by_slice {
                    let part = if idx.len() == batch.num_rows() {
                        batch.clone()
                    } else {
                        take_record_batch(&batch, &UInt32Array::from(idx))?
                    };
                    let w = match writers.entry(slice) {
                        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(self.open_writer(slice)?)
                        }
                    };
                    if w.tx.send(part).await.is_err() {
                        // The writer ended early; its task holds the reason.
                        return Ok(());
                    }
                }
            }
            Ok(())
        }
        .await;
        let mut segments = Vec::new();
        let mut first_err = outcome.err();
        for (_, w) in writers {
            drop(w.tx);
            match w.done.await {
                Ok(Ok(segs)) => segments.extend(segs),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(join) => {
                    first_err.get_or_insert(DataFusionError::External(Box::new(join)));
                }
            }
        }
        if let Some(e) = first_err {
            // Nothing is committed: the segments already written belong to no table.
            let files = segments.into_iter().map(|s| s.path).collect();
            self.ctx.gc.discard(&self.ctx.catalog, files);
            return Err(e);
        }
        self.ctx.writes.push(CatalogOp::AddSegments {
            table_id: self.def.id,
            segments,
            placement: self.def.placement(),
        });
        Ok(rows)
    }
}
