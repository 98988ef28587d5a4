//! How Basalt's own plan nodes travel inside datafusion-proto plans. Today that is only
//! the fragment leaf, [`SliceScanExec`]; the worker-side codec also binds the leaf to the
//! segments named in the ticket and to the worker's object store.

use std::sync::Arc;

use basalt_storage::segment::{ipc_to_schema, schema_to_ipc};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::scan::SliceScanExec;

#[derive(Serialize, Deserialize)]
struct SliceScanMsg {
    table_id: u64,
    table_name: String,
    schema_ipc: Vec<u8>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

/// Extension codec for Basalt plan nodes.
#[derive(Debug, Default)]
pub struct BasaltCodec {
    binding: Option<Binding>,
}

#[derive(Debug)]
struct Binding {
    segments: Vec<String>,
    store: Arc<dyn ObjectStore>,
}

impl BasaltCodec {
    /// A codec that binds every decoded scan to `segments` read through `store`.
    pub fn binding(segments: Vec<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            binding: Some(Binding { segments, store }),
        }
    }
}

impl PhysicalExtensionCodec for BasaltCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let msg: SliceScanMsg = crate::protocol::decode(buf)
            .map_err(|e| DataFusionError::Plan(format!("decoding SliceScanExec: {e}")))?;
        let schema = ipc_to_schema(&msg.schema_ipc).map_err(DataFusionError::Plan)?;
        let scan = SliceScanExec::new(
            msg.table_id,
            msg.table_name,
            schema,
            msg.projection,
            msg.limit,
        )?;
        Ok(Arc::new(match &self.binding {
            Some(b) => scan.bind(b.segments.clone(), b.store.clone()),
            None => scan,
        }))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(scan) = node.downcast_ref::<SliceScanExec>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "cannot ship plan node {} to a worker",
                node.name()
            )));
        };
        let msg = SliceScanMsg {
            table_id: scan.table_id,
            table_name: scan.table_name.clone(),
            schema_ipc: schema_to_ipc(&scan.table_schema)
                .map_err(|e| DataFusionError::External(e.into()))?,
            projection: scan.projection.clone(),
            limit: scan.limit,
        };
        buf.extend_from_slice(&crate::protocol::encode(&msg));
        Ok(())
    }
}
