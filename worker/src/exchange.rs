//! Exchanges between workers: how a slice's fragment reads rows that live on other
//! slices. [`ExchangeReadExec`] is a fragment leaf that, on the consuming worker, asks
//! every producing slice (on whichever worker owns it) to run the producer's fragment and
//! stream back either the rows that hash to the consumer's slice (a redistribution,
//! Redshift's DS_DIST_INNER / DS_DIST_OUTER / DS_DIST_BOTH) or all of them (a broadcast,
//! DS_BCAST_INNER). Rows go worker to worker over Arrow Flight, batch by batch, with
//! HTTP/2 flow control as back-pressure; the leader sees none of them.
//!
//! Routing uses the one distribution hash (`basalt_storage::hash`), so a redistributed
//! side lands on the slices where a DISTKEY-distributed side already keeps the same keys.
//! Producers keep no state: each consumer's request re-runs the producer fragment and
//! filters it, which costs producer CPU (one scan per consumer slice) but never buffers a
//! partition waiting for a slow consumer.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use basalt_storage::layout::SliceId;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};

use crate::protocol::{self, FragmentTicket};
use crate::recent::RecentLog;
use crate::recent::now_us;

/// Which rows of a producer's output a consumer asks for: those whose `column` hashes to
/// slice `keep` of `slices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub column: usize,
    pub slices: u32,
    pub keep: u32,
}

/// How the consumer's rows are chosen from the producers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeKind {
    /// Rows hashed on a column to the consuming slice.
    Distribute { column: usize, slices: u32 },
    /// Every row, to every consuming slice.
    Broadcast,
}

impl ExchangeKind {
    /// Redshift's step label (`svl_query_report.label`).
    pub fn label(&self) -> &'static str {
        match self {
            ExchangeKind::Distribute { .. } => "dist",
            ExchangeKind::Broadcast => "bcast",
        }
    }
}

/// One producing slice: the worker that owns it and the fragment it runs there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeSource {
    pub node: u32,
    pub addr: String,
    pub ticket: FragmentTicket,
}

/// What one consuming slice received through one exchange, as the worker logs it for
/// `svl_query_report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeRecord {
    pub query: u64,
    pub slice: SliceId,
    pub label: String,
    pub start_us: i64,
    pub end_us: i64,
    pub rows: u64,
    /// Arrow IPC bytes that crossed the network (message headers and bodies).
    pub bytes: u64,
}

pub type ExchangeLog = RecentLog<ExchangeRecord, 20_000>;

/// Where a decoded exchange runs: the consuming slice and the worker's log.
#[derive(Debug, Clone)]
pub struct ExchangeBinding {
    pub query: u64,
    pub slice: SliceId,
    pub log: Arc<ExchangeLog>,
}

#[derive(Debug, Clone)]
pub struct ExchangeReadExec {
    pub kind: ExchangeKind,
    pub schema: SchemaRef,
    pub sources: Vec<ExchangeSource>,
    pub binding: Option<ExchangeBinding>,
    cache: Arc<PlanProperties>,
}

impl ExchangeReadExec {
    pub fn new(kind: ExchangeKind, schema: SchemaRef, sources: Vec<ExchangeSource>) -> Self {
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            kind,
            schema,
            sources,
            binding: None,
            cache,
        }
    }

    pub fn bind(&self, binding: ExchangeBinding) -> Self {
        Self {
            binding: Some(binding),
            ..self.clone()
        }
    }

    /// The ticket sent to a producer, asking for this consumer's rows only.
    fn ticket_for(&self, source: &ExchangeSource, consumer: SliceId) -> Result<Ticket> {
        let mut ticket = source.ticket.clone();
        ticket.route = match (self.kind, consumer) {
            (ExchangeKind::Broadcast, _) => None,
            (ExchangeKind::Distribute { column, slices }, SliceId::Slice(keep)) => Some(Route {
                column,
                slices,
                keep,
            }),
            (ExchangeKind::Distribute { .. }, SliceId::All) => {
                return Err(DataFusionError::Internal(
                    "a redistribution needs a consuming slice".into(),
                ));
            }
        };
        Ok(Ticket::new(protocol::encode(&ticket)))
    }
}

impl DisplayAs for ExchangeReadExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.kind {
            ExchangeKind::Distribute { column, slices } => write!(
                f,
                "ExchangeReadExec: dist on column {column} over {slices} slices, sources={}",
                self.sources.len()
            ),
            ExchangeKind::Broadcast => {
                write!(f, "ExchangeReadExec: bcast, sources={}", self.sources.len())
            }
        }
    }
}

impl ExecutionPlan for ExchangeReadExec {
    fn name(&self) -> &str {
        "ExchangeReadExec"
    }

    crate::leaf_plan_methods!();

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(binding) = self.binding.clone() else {
            return Err(DataFusionError::Internal(
                "an exchange runs only on a worker".into(),
            ));
        };
        let tally = Arc::new(Tally {
            record: Mutex::new(ExchangeRecord {
                query: binding.query,
                slice: binding.slice,
                label: self.kind.label().into(),
                start_us: now_us(),
                end_us: 0,
                rows: 0,
                bytes: 0,
            }),
            bytes: AtomicU64::new(0),
            log: binding.log.clone(),
        });
        let mut streams = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            let ticket = self.ticket_for(source, binding.slice)?;
            let (node, addr) = (source.node, source.addr.clone());
            let tally = tally.clone();
            let schema = self.schema.clone();
            let stream = futures::stream::once(async move {
                let mut client = FlightServiceClient::new(channel(&addr)?);
                let data = client
                    .do_get(ticket)
                    .await
                    .map_err(|s| producer_failed(node, &addr, &FlightError::Tonic(Box::new(s))))?
                    .into_inner();
                let counted = {
                    let tally = tally.clone();
                    data.map_ok(move |d| {
                        tally.bytes.fetch_add(
                            (d.data_header.len() + d.data_body.len()) as u64,
                            Ordering::Relaxed,
                        );
                        d
                    })
                    .map_err(|s| FlightError::Tonic(Box::new(s)))
                };
                let batches = FlightRecordBatchStream::new_from_flight_data(counted);
                Ok::<_, DataFusionError>(batches.map(move |b| {
                    let batch = b.map_err(|e| producer_failed(node, &addr, &e))?;
                    tally.add_rows(batch.num_rows());
                    // The producer's batch carries its own field names; the consumer's
                    // plan was built for this schema.
                    RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                        .map_err(DataFusionError::from)
                }))
            })
            .try_flatten();
            streams.push(stream.boxed());
        }
        let merged = futures::stream::select_all(streams);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            merged,
        )))
    }
}

/// Rows and bytes one consumer received; logged when the last source stream is dropped.
struct Tally {
    record: Mutex<ExchangeRecord>,
    bytes: AtomicU64,
    log: Arc<ExchangeLog>,
}

impl Tally {
    fn add_rows(&self, n: usize) {
        self.record.lock().expect("exchange tally").rows += n as u64;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut record = self.record.lock().expect("exchange tally").clone();
        record.end_us = now_us();
        record.bytes = self.bytes.load(Ordering::Relaxed);
        self.log.push(record);
    }
}

fn producer_failed(node: u32, addr: &str, e: &FlightError) -> DataFusionError {
    let message = match e {
        FlightError::Tonic(s) => s.message().to_string(),
        other => other.to_string(),
    };
    DataFusionError::Execution(format!(
        "exchange from worker {node} ({addr}) failed: {message}"
    ))
}

/// One HTTP/2 channel per peer worker, opened on first use and shared by every exchange.
fn channel(addr: &str) -> Result<Channel> {
    static CHANNELS: LazyLock<Mutex<HashMap<String, Channel>>> = LazyLock::new(Default::default);
    let mut channels = CHANNELS.lock().expect("exchange channels");
    if let Some(c) = channels.get(addr) {
        return Ok(c.clone());
    }
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| DataFusionError::Execution(format!("bad worker address {addr}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(3))
        .connect_lazy();
    channels.insert(addr.to_string(), channel.clone());
    Ok(channel)
}

/// The rows of `batch` whose `route.column` hashes to slice `route.keep`.
pub fn route_batch(batch: &RecordBatch, route: &Route) -> Result<RecordBatch> {
    let keys = batch.column(route.column);
    let slices = basalt_storage::hash::slices_for_keys(keys, route.slices)
        .map_err(|e| DataFusionError::Execution(e.to_string()))?;
    let mask: BooleanArray = slices.iter().map(|&s| Some(s == route.keep)).collect();
    Ok(arrow::compute::filter_record_batch(batch, &mask)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn routing_partitions_rows_like_the_distribution_hash() {
        let keys: ArrayRef = Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>()));
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![keys.clone()]).unwrap();
        let placed = basalt_storage::hash::slices_for_keys(&keys, 4).unwrap();
        let mut total = 0;
        for keep in 0..4 {
            let part = route_batch(
                &batch,
                &Route {
                    column: 0,
                    slices: 4,
                    keep,
                },
            )
            .unwrap();
            let expected = placed.iter().filter(|&&s| s == keep).count();
            assert_eq!(part.num_rows(), expected);
            assert!(
                expected > 150,
                "slice {keep} got only {expected} of 1000 keys"
            );
            total += part.num_rows();
        }
        assert_eq!(total, 1000);
    }
}
