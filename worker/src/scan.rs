//! `SliceScanExec`: the leaf of every plan fragment. It reads the segments of one slice
//! of one table from the storage root and yields their rows, projected. On the leader it
//! exists only as a placeholder inside a fragment; the worker binds it to the segment
//! list of a ticket and to its object store when the fragment arrives.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use basalt_storage::segment::SegmentReader;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;

#[derive(Clone)]
pub struct SliceScanExec {
    pub table_id: u64,
    pub table_name: String,
    /// Full table schema (what segments are written with).
    pub table_schema: SchemaRef,
    pub projection: Option<Vec<usize>>,
    pub limit: Option<usize>,
    /// Filter over the table schema used to skip blocks by their zone maps. Only an
    /// optimization: the plan above still applies the filter to every row.
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    /// Bound on the worker; empty on the leader.
    pub segments: Vec<String>,
    pub store: Option<Arc<dyn ObjectStore>>,
    projected: SchemaRef,
    cache: Arc<PlanProperties>,
}

impl fmt::Debug for SliceScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SliceScanExec")
            .field("table", &self.table_name)
            .field("projection", &self.projection)
            .field("segments", &self.segments.len())
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
            segments: vec![],
            store: None,
            projected,
            cache,
        })
    }

    /// This scan bound to the files of one slice, readable through `store`.
    pub fn bind(&self, segments: Vec<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            segments,
            store: Some(store),
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
        let store = self.store.clone().ok_or_else(|| {
            DataFusionError::Internal("SliceScanExec executed before being bound".into())
        })?;
        let table_schema = self.table_schema.clone();
        let projection = self.projection.clone();
        let projected = self.projected.clone();
        let segments = self.segments.clone();
        // A predicate the zone maps cannot judge simply prunes nothing.
        let pruning = self.predicate.clone().and_then(|p| {
            PruningPredicateBuilder::new()
                .with_file_schema(table_schema.clone())
                .try_build(p)
                .ok()
                .map(Arc::new)
        });
        let stream = futures::stream::iter(segments)
            .then(move |path| {
                let store = store.clone();
                let table_schema = table_schema.clone();
                let projection = projection.clone();
                let pruning = pruning.clone();
                async move {
                    read_segment(
                        store.as_ref(),
                        &path,
                        &table_schema,
                        projection.as_deref(),
                        pruning.as_deref(),
                    )
                    .await
                }
            })
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        let stream: SendableRecordBatchStream =
            Box::pin(RecordBatchStreamAdapter::new(projected.clone(), stream));
        Ok(match self.limit {
            Some(limit) => limit_stream(stream, limit),
            None => stream,
        })
    }
}

fn storage_err(e: basalt_storage::StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Read `projection` (indices into the *table* schema) from the segment at `path`,
/// matching columns by name so that segments written before a schema change stay
/// readable. Only the footer and the blocks that survive zone-map pruning are fetched.
async fn read_segment(
    store: &dyn ObjectStore,
    path: &str,
    table_schema: &SchemaRef,
    projection: Option<&[usize]>,
    pruning: Option<&PruningPredicate>,
) -> Result<Vec<arrow::array::RecordBatch>> {
    let mut reader = SegmentReader::open_footer(store, &Path::from(path))
        .await
        .map_err(storage_err)?;
    let seg_schema = reader.schema();
    let wanted: Vec<usize> = match projection {
        Some(p) => p.to_vec(),
        None => (0..table_schema.fields().len()).collect(),
    };
    let mut seg_indices = Vec::with_capacity(wanted.len());
    for i in &wanted {
        let name = table_schema.field(*i).name();
        let idx = seg_schema.index_of(name).map_err(|_| {
            DataFusionError::Execution(format!("segment {path} lacks column {name}"))
        })?;
        seg_indices.push(idx);
    }
    let out_schema = Arc::new(table_schema.project(&wanted)?);
    let keep = crate::prune::blocks_to_read(&reader, pruning, table_schema);
    if keep.as_ref().is_some_and(|k| !k.contains(&true)) {
        return Ok(vec![]);
    }
    reader
        .fetch_blocks(store, &seg_indices, keep.as_deref())
        .await
        .map_err(storage_err)?;
    // Decompressing and decoding is CPU work: keep it off the async reactor threads.
    tokio::task::spawn_blocking(move || {
        reader
            .read_blocks(Some(&seg_indices), keep.as_deref())
            .map_err(storage_err)?
            .into_iter()
            .map(|b| {
                arrow::array::RecordBatch::try_new_with_options(
                    out_schema.clone(),
                    b.columns().to_vec(),
                    &arrow::array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                )
                .map_err(Into::into)
            })
            .collect()
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?
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
