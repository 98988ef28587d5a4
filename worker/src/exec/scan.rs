//! `SliceScanExec`: the leaf of every plan fragment. It reads the segments of one slice
//! of one table from the storage root and yields their live rows, projected: zone maps
//! skip blocks, deletion vectors drop deleted rows, the pushed-down predicate drops rows
//! that fail it, and a DML scan adds each row's address. On the leader it exists only as
//! a placeholder inside a fragment; the worker binds it to the segment list of a ticket
//! and to its object store when the fragment arrives, and logs what it read (`stl_scan`).

use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt64Array};
use arrow::compute::{and, filter_record_batch};
use arrow::datatypes::SchemaRef;
use basalt_storage::deletes::DeleteVector;
use basalt_storage::layout::SliceId;
use basalt_storage::segment::SegmentReader;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::split_conjunction;
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::protocol::{ScanRecord, ScanSegment, StoredColumn};
use crate::recent::now_us;

/// Name of the virtual column a DML scan asks for: the row's address, `(ordinal of its
/// segment in the table's segment list) << 32 | (row number within the segment)`. It is
/// never stored; a table schema that contains it gets it computed by the scan.
pub const ROW_ID_COLUMN: &str = "__basalt_rowid";

/// Split a row id into (segment ordinal, row within the segment).
pub fn split_row_id(id: u64) -> (u32, u64) {
    ((id >> 32) as u32, id & 0xffff_ffff)
}

/// What a worker binds a decoded scan to: the slice's segment files, the store they live
/// in, and where to log what the scan read.
#[derive(Clone)]
pub struct ScanBinding {
    pub query: u64,
    pub slice: SliceId,
    pub segments: Vec<ScanSegment>,
    pub store: Arc<dyn ObjectStore>,
    pub log: Arc<ScanLog>,
}

/// The most recent scans of this worker, newest last (Redshift's STL tables are likewise
/// bounded logs on each node).
pub type ScanLog = crate::recent::RecentLog<ScanRecord, 20_000>;

#[derive(Clone)]
pub struct SliceScanExec {
    pub table_id: u64,
    pub table_name: String,
    /// Full table schema (what segments are written with), plus [`ROW_ID_COLUMN`] last
    /// when the scan feeds a DELETE or UPDATE.
    pub table_schema: SchemaRef,
    pub projection: Option<Vec<usize>>,
    pub limit: Option<usize>,
    /// Filter over the table schema. Zone maps use it to skip blocks, and the scan drops
    /// the rows it rejects; the plan above still applies it (an optimization only).
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    /// Per table column (in schema order): the name segments store it under and the
    /// value of segments written before it existed. Empty: segments store every column
    /// under its schema name.
    pub columns: Vec<StoredColumn>,
    /// Set on the worker; `None` on the leader.
    pub binding: Option<ScanBinding>,
    projected: SchemaRef,
    cache: Arc<PlanProperties>,
}

impl fmt::Debug for SliceScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SliceScanExec")
            .field("table", &self.table_name)
            .field("projection", &self.projection)
            .field(
                "segments",
                &self.binding.as_ref().map_or(0, |b| b.segments.len()),
            )
            .finish()
    }
}

impl SliceScanExec {
    pub fn new(
        table_id: u64,
        table_name: String,
        table_schema: SchemaRef,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
    ) -> Result<Self> {
        let projected = match &projection {
            Some(p) => Arc::new(table_schema.project(p)?),
            None => table_schema.clone(),
        };
        let cache = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(projected.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            table_id,
            table_name,
            table_schema,
            projection,
            limit,
            predicate,
            columns: vec![],
            binding: None,
            projected,
            cache,
        })
    }

    /// This scan, finding table columns in segments as `columns` says.
    pub fn with_columns(self, columns: Vec<StoredColumn>) -> Self {
        Self { columns, ..self }
    }

    /// This scan bound to one slice's files on a worker.
    pub fn bind(&self, binding: ScanBinding) -> Self {
        Self {
            binding: Some(binding),
            ..self.clone()
        }
    }
}

impl DisplayAs for SliceScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SliceScanExec: table={}", self.table_name)?;
        if let Some(p) = &self.projection {
            let names: Vec<&str> = p
                .iter()
                .map(|i| self.table_schema.field(*i).name().as_str())
                .collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        if let Some(p) = &self.predicate {
            write!(f, ", pruning_predicate={p}")?;
        }
        if let Some(l) = self.limit {
            write!(f, ", limit={l}")?;
        }
        Ok(())
    }
}

/// What one scan read so far; logged when its stream ends or is dropped.
struct ScanTally {
    record: ScanRecord,
    log: Arc<ScanLog>,
}

impl Drop for ScanTally {
    fn drop(&mut self) {
        self.record.end_us = now_us();
        self.log.push(self.record.clone());
    }
}

impl ExecutionPlan for SliceScanExec {
    fn name(&self) -> &str {
        "SliceScanExec"
    }

    crate::leaf_plan_methods!();

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "SliceScanExec has one partition, asked for {partition}"
            )));
        }
        let binding = self.binding.clone().ok_or_else(|| {
            DataFusionError::Internal("SliceScanExec executed before being bound".into())
        })?;
        let wanted: Vec<usize> = match &self.projection {
            Some(p) => p.clone(),
            None => (0..self.table_schema.fields().len()).collect(),
        };
        // A predicate the zone maps cannot judge simply prunes nothing.
        let pruning = self.predicate.clone().and_then(|p| {
            PruningPredicateBuilder::new()
                .with_file_schema(self.table_schema.clone())
                .try_build(p)
                .ok()
                .filter(|p| !p.always_true())
                .map(Arc::new)
        });
        // Row-level filtering needs every column the predicate names in the projection
        // (DataFusion projects them for the filter above, so this normally holds).
        let row_filter = self
            .predicate
            .clone()
            .and_then(|p| reassign_expr_columns(p, &self.projected).ok());
        let tally = Arc::new(Mutex::new(ScanTally {
            record: ScanRecord {
                query: binding.query,
                slice: binding.slice,
                table_id: self.table_id,
                table_name: self.table_name.clone(),
                start_us: now_us(),
                end_us: 0,
                rows: 0,
                rows_pre_filter: 0,
                bytes: 0,
                is_rrscan: pruning.is_some(),
                blocks_total: 0,
                blocks_scanned: 0,
            },
            log: binding.log.clone(),
        }));
        let read = Arc::new(SegmentRead {
            store: binding.store.clone(),
            table_schema: self.table_schema.clone(),
            columns: self.columns.clone(),
            wanted,
            out_schema: self.projected.clone(),
            pruning,
            row_filter,
            tally,
        });
        let stream = futures::stream::iter(binding.segments)
            .then(move |segment| {
                let read = read.clone();
                async move { read.segment(&segment).await }
            })
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
            self.projected.clone(),
            stream,
        ));
        Ok(match self.limit {
            Some(limit) => limit_stream(stream, limit),
            None => stream,
        })
    }
}

fn storage_err(e: basalt_storage::StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Everything a scan needs to read one of its segments.
struct SegmentRead {
    store: Arc<dyn ObjectStore>,
    table_schema: SchemaRef,
    columns: Vec<StoredColumn>,
    /// Indices into `table_schema` to produce, in output order.
    wanted: Vec<usize>,
    out_schema: SchemaRef,
    pruning: Option<Arc<PruningPredicate>>,
    row_filter: Option<Arc<dyn PhysicalExpr>>,
    tally: Arc<Mutex<ScanTally>>,
}

impl SegmentRead {
    /// Read one segment: only its footer and the projected blocks that survive zone-map
    /// pruning are fetched; deleted rows and rows failing the predicate are dropped.
    /// Columns are matched by name, so segments written before a schema change stay
    /// readable.
    async fn segment(&self, segment: &ScanSegment) -> Result<Vec<RecordBatch>> {
        let path = segment.path.as_str();
        let mut reader = SegmentReader::open_footer(self.store.as_ref(), &Path::from(path))
            .await
            .map_err(storage_err)?;
        let seg_schema = reader.schema();
        // Table column → segment column, where the segment has it.
        let in_segment: Vec<Option<usize>> = self
            .table_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let stored = self.columns.get(i).map_or(f.name(), |c| &c.stored);
                seg_schema.index_of(stored).ok()
            })
            .collect();
        // Output column → where its values come from.
        let mut sources: Vec<Source> = Vec::with_capacity(self.wanted.len());
        for &i in &self.wanted {
            let field = self.table_schema.field(i);
            if field.name() == ROW_ID_COLUMN {
                sources.push(Source::RowId);
            } else if let Some(idx) = in_segment[i] {
                sources.push(Source::Stored(idx));
            } else if let Some(c) = self.columns.get(i) {
                // Written before the column was added.
                let value = match &c.missing {
                    Some(text) => ScalarValue::try_from_string(text.clone(), field.data_type())?,
                    None => ScalarValue::try_from(field.data_type())?,
                };
                sources.push(Source::Missing(value));
            } else {
                return Err(DataFusionError::Execution(format!(
                    "segment {path} lacks column {}",
                    field.name()
                )));
            }
        }
        let stored_at: Vec<Option<usize>> = sources
            .iter()
            .map(|s| match s {
                Source::Stored(idx) => Some(*idx),
                _ => None,
            })
            .collect();
        let seg_indices: Vec<usize> = stored_at.iter().flatten().copied().collect();
        let blocks_total = reader.block_count() as u64;
        let keep = crate::exec::prune::blocks_to_read(
            &reader,
            self.pruning.as_deref(),
            &self.table_schema,
            &in_segment,
        );
        let kept: Vec<usize> = (0..reader.block_count())
            .filter(|b| {
                keep.as_ref()
                    .is_none_or(|k| k.get(*b).copied().unwrap_or(true))
            })
            .collect();
        let footer = reader.footer();
        let rows_pre: u64 = kept
            .iter()
            .map(|&b| u64::from(footer.columns.first().map_or(0, |c| c.blocks[b].rows)))
            .sum();
        let bytes: u64 = kept
            .iter()
            .flat_map(|&b| seg_indices.iter().map(move |&c| (c, b)))
            .map(|(c, b)| u64::from(footer.columns[c].blocks[b].len))
            .sum();
        {
            let mut t = self.tally.lock().expect("scan tally lock");
            t.record.blocks_total += blocks_total;
            t.record.blocks_scanned += kept.len() as u64;
            t.record.rows_pre_filter += rows_pre;
            t.record.bytes += bytes;
        }
        if kept.is_empty() {
            return Ok(vec![]);
        }
        let deletes = match &segment.deletes {
            Some(dv) => {
                let bytes = self
                    .store
                    .get(&Path::from(dv.as_str()))
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?
                    .bytes()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                let dv = DeleteVector::decode(dv, &bytes).map_err(storage_err)?;
                if dv.segment_rows() != reader.row_count() {
                    return Err(DataFusionError::Execution(format!(
                        "deletion vector {} does not match segment {path}",
                        segment.deletes.as_deref().unwrap_or_default()
                    )));
                }
                Some(dv)
            }
            None => None,
        };
        reader
            .fetch_blocks(self.store.as_ref(), &seg_indices, keep.as_deref())
            .await
            .map_err(storage_err)?;
        let out_schema = self.out_schema.clone();
        let row_filter = self.row_filter.clone();
        let ordinal = u64::from(segment.ordinal);
        // Decompressing and decoding is CPU work: keep it off the async reactor threads.
        // Single-column filter terms on stored columns can be judged on BYTEDICT and
        // RUNLENGTH blocks before anything is decoded.
        let encoded_terms: Vec<EncodedTerm> = row_filter
            .as_ref()
            .map(|f| encoded_terms(f, &self.out_schema, &stored_at))
            .unwrap_or_default();
        let batches = tokio::task::spawn_blocking(move || -> Result<Vec<RecordBatch>> {
            let mut out = Vec::new();
            for b in kept {
                let first_row = reader.block_start(b);
                let mut encoded: Option<BooleanArray> = None;
                for term in &encoded_terms {
                    let judge = |values: &ArrayRef| term.judge(values);
                    if let Some(m) = reader
                        .encoded_mask(term.segment_column, b, &judge)
                        .map_err(storage_err)?
                    {
                        encoded = Some(match encoded {
                            Some(prev) => and(&prev, &m)?,
                            None => m,
                        });
                    }
                }
                if encoded.as_ref().is_some_and(|m| m.true_count() == 0) {
                    // No row of the block passes: its other columns are never decoded.
                    continue;
                }
                let block = reader
                    .read_block(Some(&seg_indices), b)
                    .map_err(storage_err)?;
                let n = block.num_rows();
                if n == 0 {
                    continue;
                }
                let mut stored = block.columns().iter();
                let columns: Vec<ArrayRef> = sources
                    .iter()
                    .map(|s| {
                        Ok(match s {
                            Source::Stored(_) => {
                                stored.next().expect("one stored column per source").clone()
                            }
                            Source::RowId => Arc::new(UInt64Array::from_iter_values(
                                (first_row..first_row + n as u64).map(|r| (ordinal << 32) | r),
                            )) as ArrayRef,
                            Source::Missing(value) => value.to_array_of_size(n)?,
                        })
                    })
                    .collect::<Result<_>>()?;
                let mut batch = RecordBatch::try_new_with_options(
                    out_schema.clone(),
                    columns,
                    &RecordBatchOptions::new().with_row_count(Some(n)),
                )?;
                let mut live = encoded;
                if let Some(dv) = &deletes
                    && dv.any_in(first_row, n)
                {
                    let m = dv.live_mask(first_row, n);
                    live = Some(match live {
                        Some(prev) => and(&prev, &m)?,
                        None => m,
                    });
                }
                if let Some(m) = live {
                    batch = filter_record_batch(&batch, &m)?;
                }
                if let Some(f) = &row_filter
                    && batch.num_rows() > 0
                {
                    let mask = f.evaluate(&batch)?.into_array(batch.num_rows())?;
                    batch = filter_record_batch(&batch, mask.as_boolean())?;
                }
                if batch.num_rows() > 0 {
                    out.push(batch);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
        let emitted: usize = batches.iter().map(RecordBatch::num_rows).sum();
        self.tally.lock().expect("scan tally lock").record.rows += emitted as u64;
        Ok(batches)
    }
}

/// Where a scan's output column comes from in one segment.
enum Source {
    /// This column of the segment.
    Stored(usize),
    /// The virtual row id.
    RowId,
    /// A column the segment predates: the same value in every row.
    Missing(ScalarValue),
}

/// A conjunct of the scan's filter that names one stored column: it can be evaluated on a
/// block's dictionary entries or run values alone.
struct EncodedTerm {
    segment_column: usize,
    /// The term, rewritten over a one-column schema.
    expr: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
}

impl EncodedTerm {
    fn judge(&self, values: &ArrayRef) -> std::result::Result<BooleanArray, String> {
        let batch = RecordBatch::try_new(self.schema.clone(), vec![values.clone()])
            .map_err(|e| e.to_string())?;
        let verdict = self
            .expr
            .evaluate(&batch)
            .and_then(|v| v.into_array(values.len()))
            .map_err(|e| e.to_string())?;
        verdict
            .as_boolean_opt()
            .cloned()
            .ok_or_else(|| "filter did not produce booleans".to_string())
    }
}

/// The single-column conjuncts of `filter` (over `out_schema`) on stored columns;
/// `sources[i]` is the segment column of output column `i`.
fn encoded_terms(
    filter: &Arc<dyn PhysicalExpr>,
    out_schema: &SchemaRef,
    sources: &[Option<usize>],
) -> Vec<EncodedTerm> {
    split_conjunction(filter)
        .into_iter()
        .filter_map(|term| {
            let columns = collect_columns(term);
            let [column] = columns.iter().collect::<Vec<_>>()[..] else {
                return None;
            };
            let segment_column = (*sources.get(column.index())?)?;
            let field = out_schema.field(column.index()).clone();
            let schema = Arc::new(arrow::datatypes::Schema::new(vec![field]));
            let expr = reassign_expr_columns(term.clone(), &schema).ok()?;
            Some(EncodedTerm {
                segment_column,
                expr,
                schema,
            })
        })
        .collect()
}

fn limit_stream(stream: SendableRecordBatchStream, limit: usize) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let mut remaining = limit;
    // Segment batches are never empty, so an empty slice means the limit was reached.
    let limited = stream
        .map_ok(move |batch| {
            let take = remaining.min(batch.num_rows());
            remaining -= take;
            batch.slice(0, take)
        })
        .try_take_while(|batch| futures::future::ready(Ok(batch.num_rows() > 0)));
    Box::pin(RecordBatchStreamAdapter::new(schema, limited))
}

/// The `ExecutionPlan` methods every Basalt leaf node shares: no children, no expressions
/// of its own, and properties cached in a `cache` field. Expands inside the impl block.
#[macro_export]
macro_rules! leaf_plan_methods {
    () => {
        fn properties(&self) -> &std::sync::Arc<datafusion::physical_plan::PlanProperties> {
            &self.cache
        }

        fn children(&self) -> Vec<&std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
            vec![]
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(
                &std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>,
            ) -> datafusion::error::Result<
                datafusion::common::tree_node::TreeNodeRecursion,
            >,
        ) -> datafusion::error::Result<datafusion::common::tree_node::TreeNodeRecursion> {
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        }

        fn with_new_children(
            self: std::sync::Arc<Self>,
            _children: Vec<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
        ) -> datafusion::error::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>
        {
            Ok(self)
        }
    };
}
