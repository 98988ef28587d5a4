//! How Basalt's own plan nodes travel inside datafusion-proto plans: the fragment leaves
//! [`SliceScanExec`] and [`ExchangeReadExec`]. The worker-side codec also binds a scan to
//! the segments named in the ticket and the worker's object store, and an exchange to the
//! consuming slice.

use std::sync::Arc;

use basalt_storage::segment::{ipc_to_schema, schema_to_ipc};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::PhysicalExprNode;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::exec::exchange::{ExchangeBinding, ExchangeKind, ExchangeReadExec, ExchangeSource};
use crate::exec::scan::{ScanBinding, SliceScanExec};

/// A Basalt plan node on the wire.
#[derive(Serialize, Deserialize)]
enum NodeMsg {
    Scan(SliceScanMsg),
    Exchange(ExchangeMsg),
}

#[derive(Serialize, Deserialize)]
struct ExchangeMsg {
    id: u64,
    consumers: Vec<u32>,
    kind: ExchangeKind,
    schema_ipc: Vec<u8>,
    plan: Vec<u8>,
    sources: Vec<ExchangeSource>,
}

#[derive(Serialize, Deserialize)]
struct SliceScanMsg {
    table_id: u64,
    table_name: String,
    schema_ipc: Vec<u8>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    /// The pruning predicate as a datafusion-proto `PhysicalExprNode`.
    predicate: Option<Vec<u8>>,
    columns: Vec<crate::protocol::StoredColumn>,
}

/// Extension codec for Basalt plan nodes.
#[derive(Default)]
pub struct BasaltCodec {
    binding: Option<ScanBinding>,
    /// Bindings of other tables a fragment joins, by table id.
    others: Vec<(u64, ScanBinding)>,
    exchanges: Option<ExchangeBinding>,
}

impl std::fmt::Debug for BasaltCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasaltCodec")
            .field("bound", &self.binding.is_some())
            .finish()
    }
}

impl BasaltCodec {
    /// A codec that binds every decoded scan to one slice's segments on this worker.
    pub fn binding(binding: ScanBinding) -> Self {
        Self {
            binding: Some(binding),
            others: vec![],
            exchanges: None,
        }
    }

    /// Exchanges decoded by this codec consume for `binding`'s slice.
    pub fn with_exchanges(mut self, binding: ExchangeBinding) -> Self {
        self.exchanges = Some(binding);
        self
    }

    /// Leaves of table `table_id` bind to `binding` instead.
    pub fn with_table(mut self, table_id: u64, binding: ScanBinding) -> Self {
        self.others.push((table_id, binding));
        self
    }
}

impl PhysicalExtensionCodec for BasaltCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let msg = match crate::protocol::decode::<NodeMsg>(buf)
            .map_err(|e| DataFusionError::Plan(format!("decoding a Basalt plan node: {e}")))?
        {
            NodeMsg::Scan(msg) => msg,
            NodeMsg::Exchange(msg) => {
                let schema = ipc_to_schema(&msg.schema_ipc).map_err(DataFusionError::Plan)?;
                let exchange = ExchangeReadExec::new(
                    msg.id,
                    msg.kind,
                    schema,
                    msg.plan,
                    msg.sources,
                    msg.consumers,
                );
                return Ok(Arc::new(match &self.exchanges {
                    Some(b) => exchange.bind(b.clone()),
                    None => exchange,
                }));
            }
        };
        let schema = ipc_to_schema(&msg.schema_ipc).map_err(DataFusionError::Plan)?;
        let predicate = match &msg.predicate {
            Some(bytes) => {
                let node = PhysicalExprNode::decode(bytes.as_slice())
                    .map_err(|e| DataFusionError::Plan(format!("decoding scan predicate: {e}")))?;
                Some(parse_physical_expr(&node, ctx, &schema, self)?)
            }
            None => None,
        };
        let scan = SliceScanExec::new(
            msg.table_id,
            msg.table_name,
            schema,
            msg.projection,
            msg.limit,
            predicate,
        )?
        .with_columns(msg.columns);
        let binding = self
            .others
            .iter()
            .find(|(table, _)| *table == msg.table_id)
            .map(|(_, b)| b)
            .or(self.binding.as_ref());
        Ok(Arc::new(match binding {
            Some(b) => scan.bind(b.clone()),
            None => scan,
        }))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(exchange) = node.downcast_ref::<ExchangeReadExec>() {
            let msg = NodeMsg::Exchange(ExchangeMsg {
                id: exchange.id,
                consumers: exchange.consumers.clone(),
                kind: exchange.kind,
                schema_ipc: schema_to_ipc(&exchange.schema)
                    .map_err(|e| DataFusionError::External(e.into()))?,
                plan: exchange.plan.clone(),
                sources: exchange.sources.clone(),
            });
            buf.extend_from_slice(&crate::protocol::encode(&msg));
            return Ok(());
        }
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
            predicate: match &scan.predicate {
                Some(p) => Some(serialize_physical_expr(p, self)?.encode_to_vec()),
                None => None,
            },
            columns: scan.columns.clone(),
        };
        buf.extend_from_slice(&crate::protocol::encode(&NodeMsg::Scan(msg)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::filter::FilterExec;
    use datafusion::physical_plan::{displayable, expressions};
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    #[test]
    fn fragment_round_trips_and_binds_on_the_worker() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let columns = vec![
            crate::protocol::StoredColumn {
                stored: "a".into(),
                missing: None,
            },
            crate::protocol::StoredColumn {
                stored: "b#1".into(),
                missing: Some("x".into()),
            },
        ];
        let scan = Arc::new(
            SliceScanExec::new(7, "t".into(), schema.clone(), Some(vec![0]), Some(5), None)
                .unwrap()
                .with_columns(columns.clone()),
        );
        let predicate = expressions::binary(
            expressions::col("a", &scan.schema()).unwrap(),
            datafusion::logical_expr::Operator::Gt,
            expressions::lit(3i64),
            &scan.schema(),
        )
        .unwrap();
        let plan: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, scan).unwrap());
        let bytes =
            physical_plan_to_bytes_with_extension_codec(plan.clone(), &BasaltCodec::default())
                .unwrap();
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::memory::InMemory::new());
        let segment = crate::protocol::ScanSegment {
            path: "tables/7/slice-1/x.bseg".into(),
            deletes: None,
            ordinal: 3,
        };
        let codec = BasaltCodec::binding(ScanBinding {
            query: 1,
            slice: basalt_storage::layout::SliceId::Slice(1),
            segments: vec![segment.clone()],
            store,
            log: Default::default(),
        });
        let ctx = SessionContext::new();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(false).to_string(),
            displayable(plan.as_ref()).indent(false).to_string()
        );
        let leaf = decoded.children()[0]
            .downcast_ref::<SliceScanExec>()
            .unwrap();
        assert_eq!(leaf.binding.as_ref().unwrap().segments, vec![segment]);
        assert_eq!((leaf.table_id, leaf.limit), (7, Some(5)));
        assert_eq!(leaf.columns, columns);
    }

    #[test]
    fn garbage_plan_bytes_are_an_error() {
        let ctx = SessionContext::new();
        let codec = BasaltCodec::default();
        assert!(
            physical_plan_from_bytes_with_extension_codec(b"\\x01garbage", &ctx.task_ctx(), &codec)
                .is_err()
        );
        assert!(crate::protocol::decode::<crate::protocol::FragmentTicket>(b"\\xff\\xff").is_err());
    }
}
