//! The worker's Arrow Flight service: `DoGet` runs a plan fragment over one slice and
//! streams its batches, `DoPut` turns streamed rows into sorted, encoded segment files,
//! `DoAction` answers liveness probes, loads COPY input, rewrites a slice's segments for
//! VACUUM, runs a slice's fragment into UNLOAD files and hands out the worker's scan log.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{Action, FlightData, PutResult, Ticket};
use basalt_storage::layout::{SliceId, StorageRoot, new_segment_path};
use basalt_storage::segment::{Codec, ipc_to_schema, write_segment, write_segment_gathered};
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionConfig;
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::error::{Result, WorkerError};
use crate::exec::codec::BasaltCodec;
use crate::exec::exchange::{ExchangeBinding, ExchangeLog, Spools};
use crate::exec::scan::{ScanBinding, ScanLog, SliceScanExec};
use crate::load::sort_indices;
use crate::load::stats::StatsBuilder;
use crate::load::{InputPart, LoadError, LoadProgress, LoadRequest, LoadResult, Piece, SliceRows};
use crate::protocol::{
    self, FragmentTicket, RewriteRequest, ScanSegment, SegmentRef, WriteRequest,
};

/// Rows per segment written by one `DoPut`; larger loads produce several segments.
pub const SEGMENT_ROWS: usize = 1_000_000;

/// Memory a worker's sorts and aggregates may hold before they spill to disk.
const WORKER_MEMORY_LIMIT: usize = 2 << 30;

pub struct WorkerService {
    root: StorageRoot,
    ctx: SessionContext,
    scans: Arc<ScanLog>,
    exchanges: Arc<ExchangeLog>,
    /// The producing side of exchanges other workers' fragments read.
    spools: Spools,
    /// Progress of running COPYs, by query.
    loads: Arc<std::sync::Mutex<BTreeMap<u64, LoadProgress>>>,
}

impl WorkerService {
    pub fn new(root: StorageRoot) -> Self {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(WORKER_MEMORY_LIMIT, 1.0)
            .build_arc()
            .expect("a memory-limited runtime always builds");
        let mut ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        // Fragments name Basalt's SQL functions; they are decoded from this registry.
        crate::functions::register(&mut ctx).expect("registering functions cannot fail");
        Self {
            root,
            ctx,
            scans: Arc::default(),
            exchanges: Arc::default(),
            spools: Spools::default(),
            loads: Arc::default(),
        }
    }

    fn binding(&self, query: u64, slice: SliceId, segments: Vec<ScanSegment>) -> ScanBinding {
        ScanBinding {
            query,
            slice,
            segments,
            store: self.root.store.clone(),
            log: self.scans.clone(),
        }
    }

    fn run_fragment(
        &self,
        ticket: FragmentTicket,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        let task_ctx: Arc<TaskContext> = self.ctx.task_ctx();
        debug!(query = ticket.query, slice = %ticket.slice, "running fragment");
        let exchanges = ExchangeBinding {
            query: ticket.query,
            slice: ticket.slice,
            log: self.exchanges.clone(),
        };
        let mut codec =
            BasaltCodec::binding(self.binding(ticket.query, ticket.slice, ticket.segments))
                .with_exchanges(exchanges);
        for (table, slice, segments) in ticket.also {
            codec = codec.with_table(table, self.binding(ticket.query, slice, segments));
        }
        let mut plan: Arc<dyn ExecutionPlan> =
            physical_plan_from_bytes_with_extension_codec(&ticket.plan, &task_ctx, &codec)?;
        if plan.output_partitioning().partition_count() != 1 {
            plan = Arc::new(CoalescePartitionsExec::new(plan));
        }
        Ok(plan.execute(0, task_ctx)?)
    }

    /// Encode `batch` (already in sort-key order) as a new segment of `table_id` on
    /// `slice` and make it durable.
    async fn write_sorted(
        &self,
        table_id: u64,
        slice: SliceId,
        codecs: &[Codec],
        batch: RecordBatch,
    ) -> Result<SegmentRef> {
        let codecs = codecs.to_vec();
        let rows = batch.num_rows();
        let bytes = tokio::task::spawn_blocking(move || write_segment(&batch, &codecs))
            .await
            .map_err(|e| WorkerError::Rpc(e.to_string()))??;
        self.put_segment(table_id, slice, rows, bytes).await
    }

    /// Store an encoded segment of `rows` rows as a new, durable file of `slice`.
    async fn put_segment(
        &self,
        table_id: u64,
        slice: SliceId,
        rows: usize,
        bytes: bytes::Bytes,
    ) -> Result<SegmentRef> {
        let path = new_segment_path(table_id, slice);
        let size = bytes.len() as u64;
        self.root.put_durable(&path, bytes).await?;
        Ok(SegmentRef {
            slice,
            path: path.to_string(),
            rows: rows as u64,
            bytes: size,
            deletes: None,
            sorted_region: false,
        })
    }

    async fn write_rows(
        &self,
        req: &WriteRequest,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<SegmentRef> {
        let batch = concat_batches(&schema, &batches)?;
        let batch = sort_batch(&batch, &req.sort_key, req.interleaved)?;
        self.write_sorted(req.table_id, req.slice, &req.codecs, batch)
            .await
    }

    /// COPY's work: read `req.files` (a few at a time, so memory stays bounded), parse
    /// and convert each on a blocking thread, route the rows to their slices, and write a
    /// sorted segment whenever a slice has gathered a segment's worth of rows.
    async fn load(&self, req: LoadRequest) -> Result<LoadResult> {
        let schema = ipc_to_schema(&req.schema_ipc).map_err(WorkerError::BadRequest)?;
        let req = Arc::new(req);
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut parsed = futures::stream::iter(req.files.clone())
            .map(|part| {
                let (req, schema) = (req.clone(), schema.clone());
                async move {
                    let bytes = crate::load::read_part(&part, &req.access).await;
                    tokio::task::spawn_blocking(move || {
                        let quotes = range_quotes(&req, &part, &bytes);
                        let (pieces, errors, size, lines) = load_file(&req, &schema, &part, bytes);
                        let stats = part_stats(&req, &schema, &pieces);
                        (part, pieces, errors, size, lines, stats, quotes)
                    })
                    .await
                    .map_err(|e| WorkerError::Rpc(e.to_string()))
                }
            })
            .buffered(parallel + 1);
        let mut result = LoadResult::default();
        let mut pending: BTreeMap<SliceId, (Vec<SliceRows>, usize)> = BTreeMap::new();
        let progress = ProgressEntry::new(self.loads.clone(), req.query);
        let mut stats = wants_stats(&req)
            .then(|| StatsBuilder::new(&schema))
            .flatten();
        while let Some(next) = parsed.next().await {
            let (part, pieces, errors, bytes, lines, part_stats, quotes) = next?;
            let file = part.path;
            if let Some(quotes) = quotes {
                result.range_quotes.push((file.clone(), part.start, quotes));
            }
            stats = match (stats, part_stats) {
                (Some(mut all), Some(part)) => all.merge(part).is_ok().then_some(all),
                _ => None,
            };
            progress.update(|p| {
                p.bytes_loaded += bytes;
                p.lines += lines;
                p.files_complete += 1;
                p.current_file = file.clone();
            });
            result.errors.extend(errors);
            result.bytes_read += bytes;
            result.files.push((file, lines));
            for piece in pieces {
                let offset = result.rows_loaded;
                let batch = crate::load::fill_identity(&piece.batch, &req.identity, offset)?;
                result.rows_loaded += batch.num_rows() as u64;
                if req.noload || batch.num_rows() == 0 {
                    continue;
                }
                let targets = piece
                    .targets
                    .unwrap_or_else(|| crate::load::route(&batch, &req.routing, offset));
                for (slice, rows) in crate::load::split_by_slice(&batch, &targets) {
                    let entry = pending.entry(slice).or_default();
                    entry.1 += rows.len();
                    entry.0.push(rows);
                    if entry.1 >= SEGMENT_ROWS {
                        let (batches, _) = pending.remove(&slice).expect("entry above");
                        self.write_load(&req, slice, batches, &mut result).await?;
                    }
                }
            }
        }
        for (slice, (batches, _)) in std::mem::take(&mut pending) {
            self.write_load(&req, slice, batches, &mut result).await?;
        }
        result.stats = stats.and_then(|s| s.finish().ok());
        Ok(result)
    }

    /// Sort a slice's gathered COPY rows and write them as segments.
    async fn write_load(
        &self,
        req: &LoadRequest,
        slice: SliceId,
        parts: Vec<SliceRows>,
        result: &mut LoadResult,
    ) -> Result<()> {
        let (key, interleaved) = (req.sort_key.clone(), req.interleaved);
        let rows: Vec<_> = parts.iter().map(|p| p.rows.clone()).collect();
        let batches = parts.into_iter().map(|p| p.batch).collect();
        let parts: Vec<SliceRows> = crate::load::as_stored(batches, &req.stored_names)?
            .into_iter()
            .zip(rows)
            .map(|(batch, rows)| SliceRows { batch, rows })
            .collect();
        let order = tokio::task::spawn_blocking(move || {
            let order = sort_order(&parts, &key, interleaved)?;
            let batches: Vec<RecordBatch> = parts.into_iter().map(|p| p.batch).collect();
            Ok::<_, WorkerError>((Arc::new(batches), Arc::new(order)))
        });
        let (batches, order) = order.await.map_err(|e| WorkerError::Rpc(e.to_string()))??;
        let mut at = 0;
        while at < order.len() {
            let len = SEGMENT_ROWS.min(order.len() - at);
            let (batches, order, codecs) = (batches.clone(), order.clone(), req.codecs.clone());
            let bytes = tokio::task::spawn_blocking(move || {
                write_segment_gathered(&batches, &order[at..at + len], &codecs)
            })
            .await
            .map_err(|e| WorkerError::Rpc(e.to_string()))??;
            result
                .segments
                .push(self.put_segment(req.table_id, slice, len, bytes).await?);
            at += len;
        }
        Ok(())
    }

    /// VACUUM's work on one slice: stream the live rows of `req.segments` through a
    /// (spilling) DataFusion sort and cut the result into new segments.
    async fn rewrite(&self, req: RewriteRequest) -> Result<Vec<SegmentRef>> {
        let schema = ipc_to_schema(&req.schema_ipc).map_err(WorkerError::BadRequest)?;
        let scan = SliceScanExec::new(
            req.table_id,
            req.table_name.clone(),
            schema.clone(),
            None,
            None,
            None,
        )?
        .with_columns(req.columns.clone())
        .bind(self.binding(req.query, req.slice, req.segments.clone()));
        let mut plan: Arc<dyn ExecutionPlan> = Arc::new(scan);
        if req.interleaved && !req.sort_key.is_empty() {
            // A z-order needs every row's rank in each key column: sort in memory.
            let batches: Vec<RecordBatch> =
                plan.execute(0, self.ctx.task_ctx())?.try_collect().await?;
            let all = concat_batches(&schema, &batches)?;
            let sorted = sort_batch(&all, &req.sort_key, true)?;
            let mut written = Vec::new();
            let mut at = 0;
            while at < sorted.num_rows() {
                let len = SEGMENT_ROWS.min(sorted.num_rows() - at);
                written.push(
                    self.write_sorted(req.table_id, req.slice, &req.codecs, sorted.slice(at, len))
                        .await?,
                );
                at += len;
            }
            return Ok(written);
        }
        let ordering = LexOrdering::new(req.sort_key.iter().map(|&i| {
            PhysicalSortExpr::new_default(Arc::new(Column::new(schema.field(i).name(), i)))
        }));
        if let Some(ordering) = ordering {
            plan = Arc::new(SortExec::new(ordering, plan));
        }
        let mut stream = plan.execute(0, self.ctx.task_ctx())?;
        let mut written = Vec::new();
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_rows = 0;
        while let Some(batch) = stream.try_next().await? {
            pending_rows += batch.num_rows();
            pending.push(batch);
            if pending_rows >= SEGMENT_ROWS {
                let all = concat_batches(&schema, &std::mem::take(&mut pending))?;
                let mut at = 0;
                while all.num_rows() - at >= SEGMENT_ROWS {
                    let part = all.slice(at, SEGMENT_ROWS);
                    written.push(
                        self.write_sorted(req.table_id, req.slice, &req.codecs, part)
                            .await?,
                    );
                    at += SEGMENT_ROWS;
                }
                pending_rows = all.num_rows() - at;
                if pending_rows > 0 {
                    pending.push(all.slice(at, pending_rows));
                }
            }
        }
        if pending_rows > 0 {
            let all = concat_batches(&schema, &pending)?;
            written.push(
                self.write_sorted(req.table_id, req.slice, &req.codecs, all)
                    .await?,
            );
        }
        Ok(written)
    }
}

/// The quote bytes in a CSV byte range's records (None for whole files and other
/// formats): the leader adds them up to check that the range began outside quotes.
fn range_quotes(
    req: &LoadRequest,
    part: &InputPart,
    bytes: &std::result::Result<bytes::Bytes, crate::objects::ObjectError>,
) -> Option<u64> {
    let quote = req.format.csv_quote?;
    let bytes = bytes.as_ref().ok().filter(|_| !part.is_whole())?;
    Some(memchr::memchr_iter(quote, bytes).count() as u64)
}

/// Convert one input file (or byte range) that was read as `bytes`: its good rows,
/// rejected rows, size and line count.
fn load_file(
    req: &LoadRequest,
    schema: &SchemaRef,
    part: &InputPart,
    bytes: std::result::Result<bytes::Bytes, crate::objects::ObjectError>,
) -> (Vec<Piece>, Vec<LoadError>, u64, u64) {
    let path = part.path.as_str();
    let file_error =
        |line: i64, code: i32, reason: String| LoadError::file(path, line, code, reason);
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            let reason = format!("Load file not found or unreadable: {e}");
            return (vec![], vec![file_error(0, 1212, reason)], 0, 0);
        }
    };
    let size = bytes.len() as u64;
    let bytes = match crate::load::decompress(bytes, req.format.compression) {
        Ok(b) => b,
        Err(e) => {
            let reason = format!("Invalid {:?} input: {e}", req.format.compression);
            return (vec![], vec![file_error(0, 1200, reason)], size, 0);
        }
    };
    if req.format.parquet {
        let (batch, errors, rows) = crate::load::convert_parquet(req, schema, path, bytes);
        let piece = batch.map(|batch| Piece {
            batch,
            targets: None,
        });
        return (piece.into_iter().collect(), errors, size, rows);
    }
    if part.start == 0 {
        let (batches, errors, lines) = crate::load::convert_input(req, schema, path, &bytes);
        return (batches, errors, size, lines);
    }
    // A later byte range: no header to skip, and line numbers are unknown.
    let mut local = req.clone();
    local.format.ignore_header = 0;
    let (batches, mut errors, lines) = crate::load::convert_input(&local, schema, path, &bytes);
    for e in &mut errors {
        e.line_number = -1;
    }
    (batches, errors, size, lines)
}

/// Whether the leader asked for the loaded rows' statistics and can use them: not for
/// NOLOAD, nor when the worker numbers IDENTITY values after converting.
fn wants_stats(req: &LoadRequest) -> bool {
    req.gather_stats && !req.noload && req.identity.is_empty()
}

/// Statistics of one input part's converted rows (gathered on the converting thread).
fn part_stats(req: &LoadRequest, schema: &SchemaRef, pieces: &[Piece]) -> Option<StatsBuilder> {
    if !wants_stats(req) {
        return None;
    }
    let mut stats = StatsBuilder::new(schema)?;
    for p in pieces {
        stats.update(&p.batch).ok()?;
    }
    Some(stats)
}

/// A running COPY's entry in the worker's progress table, removed when the load ends
/// however it ends.
struct ProgressEntry {
    loads: Arc<std::sync::Mutex<BTreeMap<u64, LoadProgress>>>,
    query: u64,
}

impl ProgressEntry {
    fn new(loads: Arc<std::sync::Mutex<BTreeMap<u64, LoadProgress>>>, query: u64) -> Self {
        loads.lock().expect("load progress lock").insert(
            query,
            LoadProgress {
                query,
                ..Default::default()
            },
        );
        Self { loads, query }
    }

    fn update(&self, f: impl FnOnce(&mut LoadProgress)) {
        if let Some(p) = self
            .loads
            .lock()
            .expect("load progress lock")
            .get_mut(&self.query)
        {
            f(p);
        }
    }
}

impl Drop for ProgressEntry {
    fn drop(&mut self) {
        self.loads
            .lock()
            .expect("load progress lock")
            .remove(&self.query);
    }
}

/// The rows of `parts` in sort-key order, as (part, row of the part's batch) pairs;
/// input order when there is no sort key. Only the key columns are gathered to find the
/// order.
fn sort_order(
    parts: &[SliceRows],
    key: &[usize],
    interleaved: bool,
) -> Result<Vec<(usize, usize)>> {
    if key.is_empty() {
        return Ok(parts
            .iter()
            .enumerate()
            .flat_map(|(b, p)| (0..p.len()).map(move |i| (b, p.row(i))))
            .collect());
    }
    let keys = key
        .iter()
        .map(|&c| {
            let columns = parts
                .iter()
                .map(|p| p.column(c))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let refs: Vec<&dyn arrow::array::Array> = columns.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let order = sort_indices(&keys, interleaved)?;
    // Global row numbers → (part, row within its batch).
    let starts: Vec<usize> = parts
        .iter()
        .scan(0, |at, p| {
            let start = *at;
            *at += p.len();
            Some(start)
        })
        .collect();
    Ok(order
        .values()
        .iter()
        .map(|&g| {
            let g = g as usize;
            let b = starts.partition_point(|&s| s <= g) - 1;
            (b, parts[b].row(g - starts[b]))
        })
        .collect())
}

fn sort_batch(batch: &RecordBatch, key: &[usize], interleaved: bool) -> Result<RecordBatch> {
    if key.is_empty() || batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let columns: Vec<_> = key.iter().map(|&i| batch.column(i).clone()).collect();
    let indices = sort_indices(&columns, interleaved)?;
    Ok(take_record_batch(batch, &indices)?)
}

pub type BoxedStream<T> = BoxStream<'static, std::result::Result<T, Status>>;

crate::flight_service!(WorkerService, {
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<BoxedStream<FlightData>>, Status> {
        crate::node::unwind::guarded(self.serve_get(request)).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<BoxedStream<PutResult>>, Status> {
        crate::node::unwind::guarded(self.serve_put(request)).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> std::result::Result<Response<BoxedStream<arrow_flight::Result>>, Status> {
        crate::node::unwind::guarded(self.serve_action(request)).await
    }
});

impl WorkerService {
    async fn serve_get(
        &self,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<BoxedStream<FlightData>>, Status> {
        let mut ticket: FragmentTicket = protocol::decode(&request.into_inner().ticket)?;
        let stream = match ticket.route.take() {
            // Another worker's exchange: its share of this slice's rows.
            Some(route) => {
                let (query, slice) = (ticket.query, ticket.slice);
                self.spools
                    .share(query, slice, &route, || self.run_fragment(ticket))?
            }
            None => self.run_fragment(ticket)?,
        };
        let schema = stream.schema();
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(stream.map_err(|e| FlightError::ExternalError(Box::new(e))))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(crate::node::unwind::guarded_stream(
            flight.boxed(),
        )))
    }

    async fn serve_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<BoxedStream<PutResult>>, Status> {
        let mut input = request.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty DoPut"))?;
        let descriptor = first
            .flight_descriptor
            .clone()
            .ok_or_else(|| Status::invalid_argument("DoPut without descriptor"))?;
        let req: WriteRequest = protocol::decode(&descriptor.cmd)?;
        let data = futures::stream::once(async move { Ok(first) })
            .chain(input)
            .map_err(|s: Status| FlightError::Tonic(Box::new(s)));
        let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
        let mut pending = Vec::new();
        let mut pending_rows = 0;
        let mut written = Vec::new();
        while let Some(batch) = batches.try_next().await.map_err(|e| {
            warn!("DoPut stream failed: {e}");
            Status::aborted(e.to_string())
        })? {
            pending_rows += batch.num_rows();
            pending.push(batch);
            if pending_rows >= SEGMENT_ROWS {
                let schema = pending[0].schema();
                written.push(
                    self.write_rows(&req, schema, std::mem::take(&mut pending))
                        .await?,
                );
                pending_rows = 0;
            }
        }
        if pending_rows > 0 {
            let schema = pending[0].schema();
            written.push(self.write_rows(&req, schema, pending).await?);
        }
        let results = written.into_iter().map(|seg| {
            Ok(PutResult {
                app_metadata: protocol::encode(&seg).into(),
            })
        });
        Ok(Response::new(futures::stream::iter(results).boxed()))
    }

    async fn serve_action(
        &self,
        request: Request<Action>,
    ) -> std::result::Result<Response<BoxedStream<arrow_flight::Result>>, Status> {
        let action = request.into_inner();
        match action.r#type.as_str() {
            protocol::ACTION_PING => {
                let reply = arrow_flight::Result {
                    body: bytes::Bytes::from_static(b"pong"),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            protocol::ACTION_REWRITE => {
                let req: RewriteRequest = protocol::decode(&action.body)?;
                let written = self.rewrite(req).await?;
                let reply = arrow_flight::Result {
                    body: protocol::encode(&written).into(),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            protocol::ACTION_LOAD => {
                let req: LoadRequest = protocol::decode(&action.body)?;
                let result = self.load(req).await?;
                let reply = arrow_flight::Result {
                    body: protocol::encode(&result).into(),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            protocol::ACTION_LOAD_STATE => {
                let running: Vec<LoadProgress> = self
                    .loads
                    .lock()
                    .expect("load progress lock")
                    .values()
                    .cloned()
                    .collect();
                let reply = arrow_flight::Result {
                    body: protocol::encode(&running).into(),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            protocol::ACTION_UNLOAD => {
                let req: crate::unload::UnloadRequest = protocol::decode(&action.body)?;
                debug!(query = req.fragment.query, slice = req.slice, "unloading");
                let stream = self.run_fragment(req.fragment)?;
                let files = crate::unload::write_stream(
                    &req.spec,
                    crate::unload::FileNaming::Slice(req.slice),
                    stream,
                )
                .await?;
                let reply = arrow_flight::Result {
                    body: protocol::encode(&files).into(),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            protocol::ACTION_SCAN_LOG => {
                let reply = arrow_flight::Result {
                    body: protocol::encode(&self.scans.snapshot()).into(),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            protocol::ACTION_EXCHANGE_LOG => {
                let reply = arrow_flight::Result {
                    body: protocol::encode(&self.exchanges.snapshot()).into(),
                };
                Ok(Response::new(futures::stream::iter([Ok(reply)]).boxed()))
            }
            other => Err(Status::unimplemented(format!("unknown action {other}"))),
        }
    }
}

/// Implements `FlightService` for `$ty` with the given `do_get`, `do_put` and `do_action`
/// methods; every other Flight method answers `unimplemented`, since Basalt nodes do not
/// serve them.
#[macro_export]
macro_rules! flight_service {
    ($ty:ty, { $($methods:tt)* }) => {
        #[tonic::async_trait]
        impl arrow_flight::flight_service_server::FlightService for $ty {
            type HandshakeStream = $crate::node::service::BoxedStream<arrow_flight::HandshakeResponse>;
            type ListFlightsStream = $crate::node::service::BoxedStream<arrow_flight::FlightInfo>;
            type DoGetStream = $crate::node::service::BoxedStream<arrow_flight::FlightData>;
            type DoPutStream = $crate::node::service::BoxedStream<arrow_flight::PutResult>;
            type DoExchangeStream = $crate::node::service::BoxedStream<arrow_flight::FlightData>;
            type DoActionStream = $crate::node::service::BoxedStream<arrow_flight::Result>;
            type ListActionsStream = $crate::node::service::BoxedStream<arrow_flight::ActionType>;

            $($methods)*

            async fn handshake(
                &self,
                _request: tonic::Request<tonic::Streaming<arrow_flight::HandshakeRequest>>,
            ) -> std::result::Result<tonic::Response<Self::HandshakeStream>, tonic::Status> {
                Err(tonic::Status::unimplemented("handshake"))
            }

            async fn list_flights(
                &self,
                _request: tonic::Request<arrow_flight::Criteria>,
            ) -> std::result::Result<tonic::Response<Self::ListFlightsStream>, tonic::Status> {
                Err(tonic::Status::unimplemented("list_flights"))
            }

            async fn get_flight_info(
                &self,
                _request: tonic::Request<arrow_flight::FlightDescriptor>,
            ) -> std::result::Result<tonic::Response<arrow_flight::FlightInfo>, tonic::Status> {
                Err(tonic::Status::unimplemented("get_flight_info"))
            }

            async fn poll_flight_info(
                &self,
                _request: tonic::Request<arrow_flight::FlightDescriptor>,
            ) -> std::result::Result<tonic::Response<arrow_flight::PollInfo>, tonic::Status> {
                Err(tonic::Status::unimplemented("poll_flight_info"))
            }

            async fn get_schema(
                &self,
                _request: tonic::Request<arrow_flight::FlightDescriptor>,
            ) -> std::result::Result<tonic::Response<arrow_flight::SchemaResult>, tonic::Status> {
                Err(tonic::Status::unimplemented("get_schema"))
            }

            async fn do_exchange(
                &self,
                _request: tonic::Request<tonic::Streaming<arrow_flight::FlightData>>,
            ) -> std::result::Result<tonic::Response<Self::DoExchangeStream>, tonic::Status> {
                Err(tonic::Status::unimplemented("do_exchange"))
            }

            async fn list_actions(
                &self,
                _request: tonic::Request<arrow_flight::Empty>,
            ) -> std::result::Result<tonic::Response<Self::ListActionsStream>, tonic::Status> {
                Err(tonic::Status::unimplemented("list_actions"))
            }
        }
    };
}
