//! Distributed execution on the leader. [`ClusterScanExec`] is the gather step: each of
//! its partitions runs a plan fragment on the worker that owns one slice and streams the
//! result back over Arrow Flight. [`PushFragmentsToWorkers`] is the physical optimizer
//! rule that grows those fragments: filters, projections, partial aggregates and local
//! limits directly above a cluster scan move into the fragment, so workers send back
//! filtered, projected, pre-aggregated rows and the leader only finishes the plan. A hash
//! join whose rows need not move — both sides distributed on the join key
//! (DS_DIST_NONE), or one side DISTSTYLE ALL and the join not keeping that side's
//! unmatched rows (DS_DIST_ALL_NONE) — becomes part of the fragment too: each slice
//! joins its own rows, reading the other table's segments for the same slice.

use std::fmt;
use std::sync::Arc;

use arrow_flight::Ticket;
use basalt_storage::layout::SliceId;
use basalt_worker::exec::codec::BasaltCodec;
use basalt_worker::exec::exchange::{
    ExchangeKind, ExchangeReadExec, ExchangeSource, consumer_number,
};
use basalt_worker::protocol::{self, FragmentTicket, ScanSegment};
use basalt_worker::unload::{UnloadRequest, UnloadSpec, UnloadedFile, discard_files};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, replace_children_if_necessary,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::limit::LocalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream, displayable,
};
use datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec;
use futures::TryStreamExt;

use crate::cluster::Cluster;
use crate::error::code;
use crate::sql_err;

/// One partition of a cluster scan: a slice and its committed segment files, plus those
/// of the other tables its fragment joins (table id, the slice read, segments).
#[derive(Debug, Clone)]
pub struct ScanUnit {
    pub slice: SliceId,
    pub segments: Vec<ScanSegment>,
    pub also: Vec<(u64, SliceId, Vec<ScanSegment>)>,
    /// The fragment also reads rows other slices send it (an exchange), so it runs even
    /// when the slice holds nothing itself.
    pub exchanges: bool,
}

impl ScanUnit {
    /// Nothing to read on this slice, for any table of the fragment.
    fn is_empty(&self) -> bool {
        !self.exchanges
            && self.segments.is_empty()
            && self.also.iter().all(|(_, _, s)| s.is_empty())
    }

    /// The ticket that runs `plan` on this unit's slice.
    fn ticket(&self, query: u64, plan: &bytes::Bytes) -> FragmentTicket {
        FragmentTicket {
            query,
            slice: self.slice,
            plan: plan.to_vec(),
            segments: self.segments.clone(),
            also: self.also.clone(),
            route: None,
        }
    }
}

/// Where the rows a cluster scan yields live, which decides whether a join can run
/// inside the slices' fragments with no rows moving (Redshift's DS_DIST_NONE and
/// DS_DIST_ALL_NONE).
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Rows with equal values in any one of these output columns are on the same slice
    /// (each column holds the DISTKEY of a table distributed over `slices` slices).
    Key { columns: Vec<usize>, slices: usize },
    /// The whole table is readable from every slice (DISTSTYLE ALL).
    All,
    /// Nothing to rely on (EVEN, AUTO, or after a step that changes the key).
    Unknown,
}

impl Placement {
    /// The placement after a step whose output column `i` is input column `source(i)`
    /// (None: computed), for `outputs` output columns.
    fn through(&self, outputs: usize, source: impl Fn(usize) -> Option<usize>) -> Placement {
        match self {
            Placement::Key { columns, slices } => {
                let kept: Vec<usize> = (0..outputs)
                    .filter(|&i| source(i).is_some_and(|c| columns.contains(&c)))
                    .collect();
                if kept.is_empty() {
                    Placement::Unknown
                } else {
                    Placement::Key {
                        columns: kept,
                        slices: *slices,
                    }
                }
            }
            other => other.clone(),
        }
    }
}

pub struct ClusterScanExec {
    table_name: String,
    /// The statement's query number (what workers log the scan under).
    query: u64,
    units: Vec<ScanUnit>,
    /// The plan each worker runs; its leaf is a `SliceScanExec`.
    fragment: Arc<dyn ExecutionPlan>,
    cluster: Arc<Cluster>,
    cache: Arc<PlanProperties>,
    /// The fragment as datafusion-proto bytes, encoded once and shared by every partition.
    encoded: std::sync::Mutex<Option<bytes::Bytes>>,
    placement: Placement,
    /// Joins that run inside the fragment, with Redshift's distribution label each.
    joins: Vec<&'static str>,
    /// At most this many rows come out (the table's live rows), when known: what decides
    /// whether a join side is small enough to broadcast.
    rows: Option<u64>,
}

impl fmt::Debug for ClusterScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterScanExec({})", self.table_name)
    }
}

impl ClusterScanExec {
    pub fn new(
        table_name: String,
        query: u64,
        units: Vec<ScanUnit>,
        fragment: Arc<dyn ExecutionPlan>,
        cluster: Arc<Cluster>,
    ) -> Self {
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(fragment.schema()),
            Partitioning::UnknownPartitioning(units.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            table_name,
            query,
            units,
            fragment,
            cluster,
            cache,
            encoded: std::sync::Mutex::new(None),
            placement: Placement::Unknown,
            joins: vec![],
            rows: None,
        }
    }

    /// The plan each slice runs.
    pub(crate) fn fragment(&self) -> &Arc<dyn ExecutionPlan> {
        &self.fragment
    }

    /// The same scan, with an upper bound on the rows it yields.
    pub fn with_rows(mut self, rows: u64) -> Self {
        self.rows = Some(rows);
        self
    }

    /// The same scan, declaring where its rows live.
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The fragment's datafusion-proto bytes (encoded on first use).
    fn encoded_fragment(&self) -> Result<bytes::Bytes> {
        let mut slot = self.encoded.lock().expect("fragment encoding lock");
        if let Some(bytes) = slot.as_ref() {
            return Ok(bytes.clone());
        }
        let bytes = physical_plan_to_bytes_with_extension_codec(
            self.fragment.clone(),
            &BasaltCodec::default(),
        )?;
        *slot = Some(bytes.clone());
        Ok(bytes)
    }

    /// UNLOAD on the workers: every slice that has data runs its fragment on the worker
    /// that owns it, which writes the slice's files itself (`DoAction(unload)`); all
    /// slices at once. If any slice fails, the files of the others are deleted again.
    pub(crate) async fn unload(
        &self,
        spec: &UnloadSpec,
    ) -> crate::error::Result<Vec<UnloadedFile>> {
        let plan = self.encoded_fragment()?;
        let calls = self.units.iter().filter(|u| !u.is_empty()).map(|unit| {
            let cluster = self.cluster.clone();
            let request = UnloadRequest {
                fragment: unit.ticket(self.query, &plan),
                spec: spec.clone(),
                slice: match unit.slice {
                    SliceId::Slice(s) => s,
                    SliceId::All => 0,
                },
            };
            async move {
                let (node, addr) = cluster.worker_for(request.fragment.slice)?;
                let reply = cluster
                    .run(
                        node,
                        &addr,
                        protocol::ACTION_UNLOAD,
                        protocol::encode(&request),
                    )
                    .await?;
                let mut files = protocol::decode::<Vec<UnloadedFile>>(&reply)
                    .map_err(|e| sql_err!(code::INTERNAL, "unload reply: {e}"))?;
                for f in &mut files {
                    f.node = Some(node);
                }
                Ok(files)
            }
        });
        let mut files = vec![];
        let mut failure = None;
        for r in futures::future::join_all(calls).await {
            match r {
                Ok(f) => files.extend(f),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            discard_files(&files, &spec.access).await;
            return Err(e);
        }
        Ok(files)
    }

    fn with_fragment(&self, fragment: Arc<dyn ExecutionPlan>) -> Self {
        let mut scan = Self::new(
            self.table_name.clone(),
            self.query,
            self.units.clone(),
            fragment,
            self.cluster.clone(),
        );
        scan.placement = self.placement.clone();
        scan.joins = self.joins.clone();
        scan.rows = self.rows;
        scan
    }
}

impl DisplayAs for ClusterScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let joins = if self.joins.is_empty() {
            String::new()
        } else {
            format!(", joins=[{}]", self.joins.join(", "))
        };
        write!(
            f,
            "ClusterScanExec: table={}, slices={}{joins}, fragment=[{}]",
            self.table_name,
            self.units.len(),
            displayable(self.fragment.as_ref())
                .indent(false)
                .to_string()
                .trim_end()
                .replace('\n', " <- ")
        )
    }
}

impl ExecutionPlan for ClusterScanExec {
    fn name(&self) -> &str {
        "ClusterScanExec"
    }

    basalt_worker::leaf_plan_methods!();

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema: SchemaRef = self.fragment.schema();
        let unit = match self.units.get(partition) {
            Some(u) if !u.is_empty() => u.clone(),
            // An empty slice (or a table with no slices at all) contributes nothing; a
            // final aggregate above still produces its one row for empty input.
            _ => {
                return Ok(Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::empty(),
                )));
            }
        };
        let plan = self.encoded_fragment()?;
        let cluster = self.cluster.clone();
        let out_schema = schema.clone();
        let query = self.query;
        let stream = futures::stream::once(async move {
            let (node, addr) = cluster.worker_for(unit.slice).map_err(ext)?;
            let ticket = unit.ticket(query, &plan);
            let fail = {
                let cluster = cluster.clone();
                let addr = addr.clone();
                move |e: arrow_flight::error::FlightError| {
                    cluster.forget_channel(&addr);
                    worker_failure(node, &addr, unit.slice, e)
                }
            };
            let ticket = Ticket::new(protocol::encode(&ticket));
            // A cached HTTP/2 channel can be stale (the worker restarted, or the server
            // closed the connection after a cancelled query): reconnect once. Reads are
            // idempotent, so retrying a call that never started is safe.
            let mut retried = false;
            let flight = loop {
                let mut client = cluster.client(&addr).await.map_err(|e| {
                    ext(sql_err!(
                        code::CONNECTION_FAILURE,
                        "worker {node} ({addr}) failed while serving {}: {}",
                        unit.slice,
                        e.sqlstate().1
                    ))
                })?;
                match client.do_get(ticket.clone()).await {
                    Ok(f) => break f,
                    Err(e) if !retried && is_transport_error(&e) => {
                        cluster.forget_channel(&addr);
                        retried = true;
                    }
                    Err(e) => return Err(fail(e)),
                }
            };
            let schema = out_schema.clone();
            Ok::<_, DataFusionError>(flight.map_err(fail).and_then(move |batch| {
                // Re-attach the planned schema (names and nullability) to the wire batch.
                let rebuilt = RecordBatch::try_new_with_options(
                    schema.clone(),
                    batch.columns().to_vec(),
                    &datafusion::arrow::array::RecordBatchOptions::new()
                        .with_row_count(Some(batch.num_rows())),
                )
                .map_err(DataFusionError::from);
                futures::future::ready(rebuilt)
            }))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

fn ext(e: crate::error::LeaderError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Whether a Flight call failed in the transport rather than in the worker's own code.
fn is_transport_error(e: &arrow_flight::error::FlightError) -> bool {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => {
            matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            ) || ["transport", "http2", "h2 protocol", "connection"]
                .iter()
                .any(|m| s.message().contains(m))
        }
        _ => false,
    }
}

/// A worker call that failed: a clean SQL error naming the worker, or the worker's own
/// error (division by zero, a bad cast, …) when it reported one.
fn worker_failure(
    node: u32,
    addr: &str,
    slice: SliceId,
    e: arrow_flight::error::FlightError,
) -> DataFusionError {
    use arrow_flight::error::FlightError;
    let status = match &e {
        FlightError::Tonic(s) => Some(s.as_ref()),
        _ => None,
    };
    match status {
        Some(s)
            if matches!(
                s.code(),
                tonic::Code::Internal | tonic::Code::InvalidArgument | tonic::Code::Aborted
            ) && !s.message().contains("transport") =>
        {
            DataFusionError::Execution(s.message().to_string())
        }
        _ => ext(sql_err!(
            code::CONNECTION_FAILURE,
            "worker {node} ({addr}) failed while serving {slice}: {}",
            status.map_or_else(|| e.to_string(), |s| s.message().to_string())
        )),
    }
}

/// Moves the operators that can run per slice into the fragments of cluster scans.
#[derive(Debug, Default)]
pub struct PushFragmentsToWorkers;

impl PushFragmentsToWorkers {
    fn pushable(node: &Arc<dyn ExecutionPlan>) -> bool {
        if node.is::<FilterExec>() || node.is::<ProjectionExec>() || node.is::<LocalLimitExec>() {
            return true;
        }
        node.downcast_ref::<AggregateExec>()
            .is_some_and(|a| *a.mode() == AggregateMode::Partial)
    }

    fn try_push(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let children = node.children();
        if children.len() != 1 || !Self::pushable(node) {
            return Ok(None);
        }
        // A round-robin repartition directly on a scan only spreads batches over more
        // partitions (a DISTSTYLE ALL table has one), and a cooperative wrapper only makes
        // its stream yield to the runtime; look through them and keep them on top.
        let (scan, wrappers) = look_through_wrappers(children[0]);
        let Some(scan) = scan.downcast_ref::<ClusterScanExec>() else {
            return Ok(None);
        };
        let fragment = replace_children_if_necessary(node.clone(), vec![scan.fragment.clone()])?;
        // Only push what a worker can decode (e.g. no leader-only functions); keep the
        // bytes so execution does not encode the fragment again.
        let Some(bytes) = shippable(&fragment) else {
            return Ok(None);
        };
        let mut pushed = scan.with_fragment(fragment);
        pushed.placement = placement_after(node, &scan.placement);
        *pushed.encoded.lock().expect("fragment encoding lock") = Some(bytes);
        let mut pushed: Arc<dyn ExecutionPlan> = Arc::new(pushed);
        for w in wrappers.into_iter().rev() {
            pushed = replace_children_if_necessary(w.clone(), vec![pushed])?;
        }
        Ok(Some(pushed))
    }
}

/// What a worker knows when it decodes a fragment: DataFusion's built-ins and Basalt's
/// functions.
static WORKER_FUNCTIONS: std::sync::LazyLock<datafusion::prelude::SessionContext> =
    std::sync::LazyLock::new(|| {
        let mut ctx = datafusion::prelude::SessionContext::new();
        basalt_worker::functions::register(&mut ctx)
            .expect("registering Basalt's functions cannot fail");
        ctx
    });

/// A fragment's datafusion-proto bytes decoded as a worker decodes them (unbound).
pub(crate) fn decode_fragment(bytes: &[u8]) -> Option<Arc<dyn ExecutionPlan>> {
    datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
        bytes,
        &WORKER_FUNCTIONS.task_ctx(),
        &BasaltCodec::default(),
    )
    .ok()
}

/// `fragment` as datafusion-proto bytes, when a worker can decode them again. Some plans
/// encode but do not decode on their own (a scalar subquery's expression needs the
/// subquery node above it), so the round trip is the test.
fn shippable(fragment: &Arc<dyn ExecutionPlan>) -> Option<bytes::Bytes> {
    let bytes =
        physical_plan_to_bytes_with_extension_codec(fragment.clone(), &BasaltCodec::default())
            .ok()?;
    decode_fragment(&bytes)?;
    Some(bytes)
}

/// Where the rows of `node`'s output live, given where its input's rows live.
fn placement_after(node: &Arc<dyn ExecutionPlan>, input: &Placement) -> Placement {
    let outputs = node.schema().fields().len();
    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        let exprs = p.expr();
        return input.through(outputs, |i| {
            exprs[i].expr.downcast_ref::<Column>().map(|c| c.index())
        });
    }
    if let Some(f) = node.downcast_ref::<FilterExec>() {
        return match f.projection() {
            Some(columns) => input.through(outputs, |i| columns.get(i).copied()),
            None => input.clone(),
        };
    }
    if node.is::<LocalLimitExec>() {
        return input.clone();
    }
    // A partial aggregate's groups stay on their slices, but nothing relies on it yet.
    Placement::Unknown
}

/// A hash join of two cluster scans that needs no rows to move, run inside the slices'
/// fragments: both sides distributed on the join key (DS_DIST_NONE), or one side
/// DISTSTYLE ALL and the other side the one whose rows the join preserves
/// (DS_DIST_ALL_NONE). The fused scan keeps the partitioning the join promised the plan
/// above it (that plan was built for it), by repartitioning on the leader if need be.
fn try_colocated_join(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(join) = node.downcast_ref::<HashJoinExec>() else {
        return Ok(None);
    };
    if join.null_aware {
        return Ok(None);
    }
    // Each side is a cluster scan under the repartitions planned for the leader's join.
    fn side(plan: &Arc<dyn ExecutionPlan>) -> Option<&ClusterScanExec> {
        let mut node = plan;
        loop {
            if let Some(r) = node.downcast_ref::<RepartitionExec>() {
                node = r.input();
            } else if let Some(c) = node.downcast_ref::<CooperativeExec>() {
                node = c.input();
            } else {
                return node.downcast_ref::<ClusterScanExec>();
            }
        }
    }
    let (Some(left), Some(right)) = (side(join.left()), side(join.right())) else {
        return Ok(None);
    };
    let left_width = left.schema().fields().len();
    let on_keys = |l: &[usize], r: &[usize]| {
        join.on().iter().any(|(a, b)| {
            let (Some(a), Some(b)) = (a.downcast_ref::<Column>(), b.downcast_ref::<Column>())
            else {
                return false;
            };
            // The one distribution hash gives equal values of one type the same slice.
            l.contains(&a.index())
                && r.contains(&b.index())
                && left.schema().field(a.index()).data_type()
                    == right.schema().field(b.index()).data_type()
        })
    };
    use datafusion::common::JoinType::*;
    let jt = *join.join_type();
    // Which side's units the fused scan runs on, and the other side's segments per unit.
    let (label, distributed_left, placement) = match (&left.placement, &right.placement) {
        (
            Placement::Key {
                columns: l,
                slices: ls,
            },
            Placement::Key {
                columns: r,
                slices: rs,
            },
        ) if ls == rs && on_keys(l, r) => {
            let mut columns = l.clone();
            columns.extend(r.iter().map(|c| c + left_width));
            let placement = Placement::Key {
                columns,
                slices: *ls,
            };
            ("DS_DIST_NONE", true, placement)
        }
        // The ALL side must not be one whose unmatched rows the join emits (each slice
        // would emit them again).
        (Placement::Key { .. }, Placement::All)
            if matches!(jt, Inner | Left | LeftSemi | LeftAnti | LeftMark) =>
        {
            ("DS_DIST_ALL_NONE", true, left.placement.clone())
        }
        (Placement::All, Placement::Key { columns, slices })
            if matches!(jt, Inner | Right | RightSemi | RightAnti | RightMark) =>
        {
            let placement = Placement::Key {
                columns: columns.iter().map(|c| c + left_width).collect(),
                slices: *slices,
            };
            ("DS_DIST_ALL_NONE", false, placement)
        }
        _ => return try_exchanged_join(node, join, left, right),
    };
    let placement = match &join.projection {
        Some(columns) => placement.through(columns.len(), |i| columns.get(i).copied()),
        None => placement,
    };
    let placement = if matches!(jt, Inner | Left | Right | Full) {
        placement
    } else {
        // Semi, anti and mark joins keep one side's columns only.
        Placement::Unknown
    };
    let fragment = replace_children_if_necessary(
        node.clone(),
        vec![left.fragment.clone(), right.fragment.clone()],
    )?;
    let Some(bytes) = shippable(&fragment) else {
        return Ok(None);
    };
    let (dist, other) = if distributed_left {
        (left, right)
    } else {
        (right, left)
    };
    let Some(other_table) = leaf_table(&other.fragment) else {
        return Ok(None);
    };
    let units: Vec<ScanUnit> = dist
        .units
        .iter()
        .map(|u| {
            let mut unit = u.clone();
            // The other side's unit on the same slice, or the one copy of an ALL table.
            let theirs = other
                .units
                .iter()
                .find(|o| o.slice == u.slice || o.slice == SliceId::All);
            if let Some(o) = theirs {
                unit.also.push((other_table, o.slice, o.segments.clone()));
                unit.also.extend(o.also.iter().cloned());
                unit.exchanges |= o.exchanges;
            }
            unit
        })
        .collect();
    fuse(
        node,
        (left, right),
        units,
        (fragment, bytes),
        placement,
        label,
    )
    .map(Some)
}

/// The cluster scan that runs the join `node` of `left` and `right` inside the slices'
/// fragments: on `units`, running `fragment` (encoded as `bytes`), its rows placed as
/// `placement`, the join labelled `label`.
fn fuse(
    node: &Arc<dyn ExecutionPlan>,
    (left, right): (&ClusterScanExec, &ClusterScanExec),
    units: Vec<ScanUnit>,
    (fragment, bytes): (Arc<dyn ExecutionPlan>, bytes::Bytes),
    placement: Placement,
    label: &'static str,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut fused = ClusterScanExec::new(
        format!("{}, {}", left.table_name, right.table_name),
        left.query,
        units,
        fragment,
        left.cluster.clone(),
    );
    fused.placement = placement;
    fused.joins = left.joins.iter().chain(&right.joins).copied().collect();
    fused.joins.push(label);
    *fused.encoded.lock().expect("fragment encoding lock") = Some(bytes);
    keep_promised_partitioning(node, Arc::new(fused))
}

/// `fused` in place of the join `node`, still partitioned as `node` promised the plan above
/// it (that plan was built for it), by repartitioning on the leader if need be.
fn keep_promised_partitioning(
    node: &Arc<dyn ExecutionPlan>,
    fused: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let promised = node.output_partitioning().clone();
    // A hash partitioning on output columns is a promise the plan above may rely on; one
    // on columns the join's projection dropped promises nothing.
    let schema = fused.schema();
    let on_outputs = |exprs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>]| {
        exprs.iter().all(|e| {
            e.downcast_ref::<Column>().is_some_and(|c| {
                schema
                    .fields()
                    .get(c.index())
                    .is_some_and(|f| f.name() == c.name())
            })
        })
    };
    Ok(match promised {
        Partitioning::Hash(ref exprs, _) if on_outputs(exprs) => {
            Arc::new(RepartitionExec::try_new(fused, promised)?)
        }
        p if p.partition_count() != fused.output_partitioning().partition_count() => Arc::new(
            RepartitionExec::try_new(fused, Partitioning::RoundRobinBatch(p.partition_count()))?,
        ),
        _ => fused,
    })
}

/// How rows move for a join whose sides are not already placed on the join key, as
/// Redshift labels it (DataFusion's build side, `left`, is Redshift's inner table).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Movement {
    /// The inner side is sent to the slices holding the outer side's keys.
    DistInner,
    /// The outer side is sent to the slices holding the inner side's keys.
    DistOuter,
    /// Both sides are redistributed on the join key.
    DistBoth,
    /// The whole inner side is sent to every slice of the outer side.
    BcastInner,
}

impl Movement {
    fn label(self) -> &'static str {
        match self {
            Movement::DistInner => "DS_DIST_INNER",
            Movement::DistOuter => "DS_DIST_OUTER",
            Movement::DistBoth => "DS_DIST_BOTH",
            Movement::BcastInner => "DS_BCAST_INNER",
        }
    }
}

/// A hash join of two cluster scans whose rows are not where the join needs them, run on
/// the workers anyway: the side(s) not distributed on the join key are redistributed
/// worker to worker with the distribution hash (DS_DIST_INNER, DS_DIST_OUTER,
/// DS_DIST_BOTH), or a small inner side is broadcast to every slice of the outer side
/// (DS_BCAST_INNER). Each consuming slice then joins as in a co-located join.
fn try_exchanged_join(
    node: &Arc<dyn ExecutionPlan>,
    join: &HashJoinExec,
    left: &ClusterScanExec,
    right: &ClusterScanExec,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if join.null_aware {
        return Ok(None);
    }
    let slices = left.cluster.slice_count() as usize;
    let left_width = left.schema().fields().len();
    // Equi-join keys the distribution hash can route: plain columns of one type on both
    // sides (equal values of one type hash to the same slice).
    let pairs: Vec<(usize, usize)> = join
        .on()
        .iter()
        .filter_map(|(a, b)| {
            let (a, b) = (a.downcast_ref::<Column>()?, b.downcast_ref::<Column>()?);
            let ty = left.schema().field(a.index()).data_type().clone();
            let hashable = basalt_storage::hash::slices_for_keys(
                &datafusion::arrow::array::new_empty_array(&ty),
                1,
            )
            .is_ok();
            (hashable && right.schema().field(b.index()).data_type() == &ty)
                .then_some((a.index(), b.index()))
        })
        .collect();
    let on_key = |p: &Placement, column: usize| matches!(p, Placement::Key { columns, slices: n } if *n == slices && columns.contains(&column));
    let left_pair = pairs.iter().find(|(a, _)| on_key(&left.placement, *a));
    let right_pair = pairs.iter().find(|(_, b)| on_key(&right.placement, *b));
    use datafusion::common::JoinType::*;
    // Broadcasting the inner side to every slice is right only when the join emits no
    // unmatched inner rows (every slice would emit them), and cheaper than moving both
    // sides only when the inner side is small next to the outer.
    let broadcast_ok = matches!(
        join.join_type(),
        Inner | Right | RightSemi | RightAnti | RightMark
    ) && matches!((left.rows, right.rows), (Some(l), Some(r)) if l.saturating_mul(slices.saturating_sub(1) as u64) < r);
    let (movement, (a, b)) = match (left_pair, right_pair) {
        (Some(&p), _) => (Movement::DistOuter, p),
        (None, Some(&p)) => (Movement::DistInner, p),
        (None, None) if broadcast_ok => (Movement::BcastInner, (0, 0)),
        (None, None) => match pairs.first() {
            Some(&p) => (Movement::DistBoth, p),
            None => return Ok(None),
        },
    };
    // Each moving side becomes an exchange that reads it from the slices that hold it,
    // for the slices in `consumers`.
    let exchange = |side: &ClusterScanExec,
                    kind: ExchangeKind,
                    consumers: &[ScanUnit]|
     -> Result<Option<Arc<dyn ExecutionPlan>>> {
        // Every cluster scan's fragment was checked to decode on a worker when it was
        // built; its cached bytes serve as the producer's plan.
        let plan = side.encoded_fragment()?;
        let mut sources = vec![];
        for unit in side.units.iter().filter(|u| !u.is_empty()) {
            let Ok((node, addr)) = side.cluster.worker_for(unit.slice) else {
                // A worker is down: leave the join to the leader, whose scan reports it.
                return Ok(None);
            };
            sources.push(ExchangeSource {
                node,
                addr,
                ticket: unit.ticket(side.query, &bytes::Bytes::new()),
            });
        }
        static NEXT_EXCHANGE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Some(Arc::new(ExchangeReadExec::new(
            NEXT_EXCHANGE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            kind,
            side.schema(),
            plan.to_vec(),
            sources,
            consumers.iter().map(|u| consumer_number(u.slice)).collect(),
        ))))
    };
    let dist = |column| ExchangeKind::Distribute {
        column,
        slices: slices as u32,
    };
    let slice_units = || -> Vec<ScanUnit> {
        (0..slices as u32)
            .map(|s| ScanUnit {
                slice: SliceId::Slice(s),
                segments: vec![],
                also: vec![],
                exchanges: true,
            })
            .collect()
    };
    let consuming = |units: &[ScanUnit]| -> Vec<ScanUnit> {
        units
            .iter()
            .cloned()
            .map(|mut u| {
                u.exchanges = true;
                u
            })
            .collect()
    };
    let key = |columns: Vec<usize>| Placement::Key { columns, slices };
    let shifted = |p: &Placement| match p {
        Placement::Key { columns, slices } => Placement::Key {
            columns: columns.iter().map(|c| c + left_width).collect(),
            slices: *slices,
        },
        other => other.clone(),
    };
    let (children, units, placement): (Vec<Arc<dyn ExecutionPlan>>, _, _) = match movement {
        Movement::DistOuter => {
            let Placement::Key { columns, .. } = &left.placement else {
                return Ok(None);
            };
            let units = consuming(&left.units);
            let Some(moved) = exchange(right, dist(b), &units)? else {
                return Ok(None);
            };
            let mut columns = columns.clone();
            columns.push(b + left_width);
            (vec![left.fragment.clone(), moved], units, key(columns))
        }
        Movement::DistInner => {
            let Placement::Key { mut columns, .. } = shifted(&right.placement) else {
                return Ok(None);
            };
            let units = consuming(&right.units);
            let Some(moved) = exchange(left, dist(a), &units)? else {
                return Ok(None);
            };
            columns.push(a);
            (vec![moved, right.fragment.clone()], units, key(columns))
        }
        Movement::DistBoth => {
            let units = slice_units();
            let (Some(l), Some(r)) = (
                exchange(left, dist(a), &units)?,
                exchange(right, dist(b), &units)?,
            ) else {
                return Ok(None);
            };
            (vec![l, r], units, key(vec![a, b + left_width]))
        }
        Movement::BcastInner => {
            let units = consuming(&right.units);
            let Some(moved) = exchange(left, ExchangeKind::Broadcast, &units)? else {
                return Ok(None);
            };
            (
                vec![moved, right.fragment.clone()],
                units,
                shifted(&right.placement),
            )
        }
    };
    let placement = match &join.projection {
        Some(columns) => placement.through(columns.len(), |i| columns.get(i).copied()),
        None => placement,
    };
    let placement = if matches!(join.join_type(), Inner | Left | Right | Full) {
        placement
    } else {
        Placement::Unknown
    };
    let fragment = replace_children_if_necessary(node.clone(), children)?;
    let Some(bytes) = shippable(&fragment) else {
        return Ok(None);
    };
    fuse(
        node,
        (left, right),
        units,
        (fragment, bytes),
        placement,
        movement.label(),
    )
    .map(Some)
}

/// The table the leaf of a single-table fragment reads.
fn leaf_table(fragment: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let mut tables = vec![];
    let _ = fragment.apply(|node| {
        if let Some(scan) = node.downcast_ref::<basalt_worker::exec::scan::SliceScanExec>() {
            tables.push(scan.table_id);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    match tables.as_slice() {
        [t] => Some(*t),
        _ => None,
    }
}

/// `plan` without the round-robin repartitions and cooperative wrappers on top of it,
/// and those wrappers, outermost first.
fn look_through_wrappers(
    plan: &Arc<dyn ExecutionPlan>,
) -> (&Arc<dyn ExecutionPlan>, Vec<&Arc<dyn ExecutionPlan>>) {
    let mut node = plan;
    let mut wrappers = vec![];
    loop {
        let inner = if let Some(r) = node.downcast_ref::<RepartitionExec>()
            && matches!(r.partitioning(), Partitioning::RoundRobinBatch(_))
        {
            r.input()
        } else if let Some(c) = node.downcast_ref::<CooperativeExec>() {
            c.input()
        } else {
            return (node, wrappers);
        };
        wrappers.push(node);
        node = inner;
    }
}

/// The cluster scan a whole plan is, when it is nothing more: every row the plan yields
/// comes from one slice's fragment as it is (UNLOAD then has each worker write its slices'
/// files itself).
pub fn whole_plan_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&ClusterScanExec> {
    let (node, _) = look_through_wrappers(plan);
    node.downcast_ref::<ClusterScanExec>()
}

impl PhysicalOptimizerRule for PushFragmentsToWorkers {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(fused) = try_colocated_join(&node)? {
                return Ok(Transformed::yes(fused));
            }
            Ok(match Self::try_push(&node)? {
                Some(pushed) => Transformed::yes(pushed),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "push_fragments_to_workers"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
