//! Distributed execution on the leader. [`ClusterScanExec`] is the gather step: each of
//! its partitions runs a plan fragment on the worker that owns one slice and streams the
//! result back over Arrow Flight. [`PushFragmentsToWorkers`] is the physical optimizer
//! rule that grows those fragments: filters, projections, partial aggregates and local
//! limits directly above a cluster scan move into the fragment, so workers send back
//! filtered, projected, pre-aggregated rows and the leader only finishes the plan.

use std::fmt;
use std::sync::Arc;

use arrow_flight::Ticket;
use basalt_storage::layout::SliceId;
use basalt_worker::codec::BasaltCodec;
use basalt_worker::protocol::{self, FragmentTicket, ScanSegment};
use basalt_worker::unload::{UnloadRequest, UnloadSpec, UnloadedFile, discard_files};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, replace_children_if_necessary,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::LocalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream, displayable,
};
use datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec;
use futures::TryStreamExt;

use crate::cluster::Cluster;
use crate::error::code;
use crate::sql_err;

/// One partition of a cluster scan: a slice and its committed segment files.
#[derive(Debug, Clone)]
pub struct ScanUnit {
    pub slice: SliceId,
    pub segments: Vec<ScanSegment>,
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
        }
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
        let calls = self
            .units
            .iter()
            .filter(|u| !u.segments.is_empty())
            .map(|unit| {
                let cluster = self.cluster.clone();
                let request = UnloadRequest {
                    fragment: FragmentTicket {
                        query: self.query,
                        slice: unit.slice,
                        plan: plan.to_vec(),
                        segments: unit.segments.clone(),
                    },
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
        Self::new(
            self.table_name.clone(),
            self.query,
            self.units.clone(),
            fragment,
            self.cluster.clone(),
        )
    }
}

impl DisplayAs for ClusterScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ClusterScanExec: table={}, slices={}, fragment=[{}]",
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
            Some(u) if !u.segments.is_empty() => u.clone(),
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
            let ticket = FragmentTicket {
                query,
                slice: unit.slice,
                plan: plan.to_vec(),
                segments: unit.segments,
            };
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
        let Ok(bytes) =
            physical_plan_to_bytes_with_extension_codec(fragment.clone(), &BasaltCodec::default())
        else {
            return Ok(None);
        };
        let pushed = scan.with_fragment(fragment);
        *pushed.encoded.lock().expect("fragment encoding lock") = Some(bytes);
        let mut pushed: Arc<dyn ExecutionPlan> = Arc::new(pushed);
        for w in wrappers.into_iter().rev() {
            pushed = replace_children_if_necessary(w.clone(), vec![pushed])?;
        }
        Ok(Some(pushed))
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
