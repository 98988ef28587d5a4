//! Exchanges between workers: how a slice's fragment reads rows that live on other
//! slices. [`ExchangeReadExec`] is a fragment leaf that, on the consuming worker, asks
//! every producing slice (on whichever worker owns it) for either the rows that hash to
//! the consumer's slice (a redistribution, Redshift's DS_DIST_INNER / DS_DIST_OUTER /
//! DS_DIST_BOTH) or all of them (a broadcast, DS_BCAST_INNER). Rows go worker to worker
//! over Arrow Flight, batch by batch; the leader sees none of them.
//!
//! On the producing side a [`Spools`] entry runs the producer's fragment once per
//! exchange and slice, the first time any consumer asks, and deals its batches into one
//! bounded queue per consumer: a consumer that falls behind holds the producer back
//! (back-pressure, no materialization), and a queue nobody claims within
//! [`UNCLAIMED_AFTER`] is dropped. Routing uses the one distribution hash
//! (`basalt_storage::hash`), so a redistributed side lands on the slices where a
//! DISTKEY-distributed side already keeps the same keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
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
use tonic::transport::Channel;

use crate::protocol::{self, FragmentTicket, Route};
use crate::recent::RecentLog;
use crate::recent::now_us;

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

/// One producing slice: the worker that owns it and what it reads there (its ticket's
/// plan is the exchange's `plan`, carried once rather than once per slice).
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
    /// Unique per exchange in the leader's lifetime: what producers key their spools by.
    pub id: u64,
    pub kind: ExchangeKind,
    pub schema: SchemaRef,
    /// The producer fragment (datafusion-proto bytes) every source runs.
    pub plan: Vec<u8>,
    pub sources: Vec<ExchangeSource>,
    /// The slice numbers of every consuming slice.
    pub consumers: Vec<u32>,
    pub binding: Option<ExchangeBinding>,
    cache: Arc<PlanProperties>,
}

impl ExchangeReadExec {
    pub fn new(
        id: u64,
        kind: ExchangeKind,
        schema: SchemaRef,
        plan: Vec<u8>,
        sources: Vec<ExchangeSource>,
        consumers: Vec<u32>,
    ) -> Self {
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            id,
            kind,
            schema,
            plan,
            sources,
            consumers,
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

    /// The ticket sent to a producer, asking for this consumer's share.
    fn ticket_for(&self, source: &ExchangeSource, consumer: SliceId) -> Result<Ticket> {
        let mut ticket = source.ticket.clone();
        ticket.plan = self.plan.clone();
        let (column, slices) = match self.kind {
            ExchangeKind::Distribute { column, slices } => (Some(column), slices),
            ExchangeKind::Broadcast => (None, 0),
        };
        ticket.route = Some(Route {
            exchange: self.id,
            column,
            slices,
            consumers: self.consumers.clone(),
            keep: consumer_number(consumer),
        });
        Ok(Ticket::new(protocol::encode(&ticket)))
    }
}

/// A consuming slice's number in a [`Route`] (the one copy of an ALL table consumes as
/// `u32::MAX`).
pub fn consumer_number(slice: SliceId) -> u32 {
    match slice {
        SliceId::Slice(s) => s,
        SliceId::All => u32::MAX,
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
            record: ExchangeRecord {
                query: binding.query,
                slice: binding.slice,
                label: self.kind.label().into(),
                start_us: now_us(),
                end_us: 0,
                rows: 0,
                bytes: 0,
            },
            rows: AtomicU64::new(0),
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
                let mut client = crate::protocol::flight::flight_service_client(channel(&addr)?);
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
                    tally
                        .rows
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
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
    /// What is logged, but for the counts and the end time.
    record: ExchangeRecord,
    rows: AtomicU64,
    bytes: AtomicU64,
    log: Arc<ExchangeLog>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut record = self.record.clone();
        record.end_us = now_us();
        record.rows = self.rows.load(Ordering::Relaxed);
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
    let channel = crate::protocol::flight::peer_endpoint(addr)
        .map_err(DataFusionError::Execution)?
        .connect_lazy();
    channels.insert(addr.to_string(), channel.clone());
    Ok(channel)
}

/// How long a producer keeps a consumer's queue that nobody has claimed (the consumer
/// failed or its query was cancelled before asking).
pub const UNCLAIMED_AFTER: Duration = Duration::from_secs(60);

/// Batches a consumer's queue holds before the producer waits for it.
const QUEUE_BATCHES: usize = 8;

type Share = tokio::sync::mpsc::Receiver<Result<RecordBatch>>;

/// The producing side of every exchange running on this worker, by (query, exchange,
/// producing slice).
#[derive(Default)]
pub struct Spools {
    running: Mutex<HashMap<(u64, u64, SliceId), Spool>>,
}

/// One producing slice's run of one exchange: the queues not yet claimed.
struct Spool {
    started: Instant,
    schema: SchemaRef,
    unclaimed: HashMap<u32, Share>,
}

impl Spools {
    /// The consumer's share of the producer fragment `start` runs: the first consumer of an
    /// exchange starts it on this slice, and every consumer takes its own queue.
    pub fn share(
        &self,
        query: u64,
        slice: SliceId,
        route: &Route,
        start: impl FnOnce() -> crate::Result<SendableRecordBatchStream>,
    ) -> crate::Result<SendableRecordBatchStream> {
        let mut running = self.running.lock().expect("exchange spools");
        running.retain(|_, s| s.started.elapsed() < UNCLAIMED_AFTER);
        let key = (query, route.exchange, slice);
        let spool = match running.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Spool::start(start()?, route)),
        };
        let schema = spool.schema.clone();
        let share = spool.unclaimed.remove(&route.keep).ok_or_else(|| {
            crate::bad_request!(
                "exchange {} on {slice}: consumer {} asked twice or is not a consumer",
                route.exchange,
                route.keep
            )
        })?;
        if spool.unclaimed.is_empty() {
            running.remove(&key);
        }
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            tokio_stream::wrappers::ReceiverStream::new(share),
        )))
    }
}

impl Spool {
    /// Run `stream` on its own task, dealing each batch to the consumers' queues.
    fn start(mut stream: SendableRecordBatchStream, route: &Route) -> Spool {
        let mut senders = Vec::with_capacity(route.consumers.len());
        let mut unclaimed = HashMap::with_capacity(route.consumers.len());
        for &c in &route.consumers {
            let (tx, rx) = tokio::sync::mpsc::channel(QUEUE_BATCHES);
            senders.push((c, Some(tx)));
            unclaimed.insert(c, rx);
        }
        let schema = stream.schema();
        let route = route.clone();
        tokio::spawn(async move {
            while let Some(next) = stream.next().await {
                let shares = next.and_then(|batch| deal(&batch, &route));
                let shares = match shares {
                    Ok(shares) => shares,
                    Err(e) => {
                        // Every consumer learns why its input ended.
                        let message = e.to_string();
                        for tx in senders.iter().filter_map(|(_, s)| s.as_ref()) {
                            let _ = tx
                                .send(Err(DataFusionError::Execution(message.clone())))
                                .await;
                        }
                        return;
                    }
                };
                for ((_, slot), share) in senders.iter_mut().zip(shares) {
                    let (Some(tx), Some(batch)) = (slot.as_ref(), share) else {
                        continue;
                    };
                    // A consumer that went away (its query ended) gets nothing more.
                    if tx.send(Ok(batch)).await.is_err() {
                        *slot = None;
                    }
                }
                if senders.iter().all(|(_, s)| s.is_none()) {
                    return;
                }
            }
        });
        Spool {
            started: Instant::now(),
            schema,
            unclaimed,
        }
    }
}

/// Each consumer's rows of `batch`, in `route.consumers` order (None: no rows for it).
fn deal(batch: &RecordBatch, route: &Route) -> Result<Vec<Option<RecordBatch>>> {
    let Some(column) = route.column else {
        return Ok(route
            .consumers
            .iter()
            .map(|_| Some(batch.clone()))
            .collect());
    };
    let slices = basalt_storage::hash::slices_for_keys(batch.column(column), route.slices)
        .map_err(|e| DataFusionError::Execution(e.to_string()))?;
    let mut rows: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, s) in slices.into_iter().enumerate() {
        rows.entry(s).or_default().push(i as u32);
    }
    route
        .consumers
        .iter()
        .map(|c| match rows.remove(c) {
            Some(indices) if indices.len() == batch.num_rows() => Ok(Some(batch.clone())),
            Some(indices) => Ok(Some(arrow::compute::take_record_batch(
                batch,
                &UInt32Array::from(indices),
            )?)),
            None => Ok(None),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn dealing_partitions_rows_like_the_distribution_hash() {
        let keys: ArrayRef = Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>()));
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![keys.clone()]).unwrap();
        let placed = basalt_storage::hash::slices_for_keys(&keys, 4).unwrap();
        let route = Route {
            exchange: 1,
            column: Some(0),
            slices: 4,
            consumers: vec![0, 1, 2, 3],
            keep: 0,
        };
        let shares = deal(&batch, &route).unwrap();
        let mut total = 0;
        for (slice, share) in shares.iter().enumerate() {
            let share = share.as_ref().unwrap();
            let expected = placed.iter().filter(|&&s| s == slice as u32).count();
            assert_eq!(share.num_rows(), expected);
            assert!(
                expected > 150,
                "slice {slice} got only {expected} of 1000 keys"
            );
            let got = share
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            assert!(
                got.values()
                    .iter()
                    .all(|k| placed[*k as usize] == slice as u32)
            );
            total += share.num_rows();
        }
        assert_eq!(total, 1000);
        let broadcast = Route {
            column: None,
            ..route
        };
        assert!(
            deal(&batch, &broadcast)
                .unwrap()
                .iter()
                .all(|s| s.as_ref().unwrap().num_rows() == 1000)
        );
    }
}
