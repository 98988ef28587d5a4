//! The worker's Arrow Flight service: `DoGet` runs a plan fragment over one slice and
//! streams its batches, `DoPut` turns streamed rows into sorted, encoded segment files,
//! `DoAction(ping)` answers liveness probes.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{Action, FlightData, PutResult, Ticket};
use basalt_storage::layout::{StorageRoot, new_segment_path};
use basalt_storage::segment::write_segment;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::codec::BasaltCodec;
use crate::error::{Result, WorkerError};
use crate::protocol::{self, FragmentTicket, SegmentRef, WriteRequest};

/// Rows per segment written by one `DoPut`; larger loads produce several segments.
pub const SEGMENT_ROWS: usize = 1_000_000;

pub struct WorkerService {
    root: StorageRoot,
    ctx: SessionContext,
}

impl WorkerService {
    pub fn new(root: StorageRoot) -> Self {
        Self {
            root,
            ctx: SessionContext::new(),
        }
    }

    fn run_fragment(
        &self,
        ticket: FragmentTicket,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        let task_ctx: Arc<TaskContext> = self.ctx.task_ctx();
        let codec = BasaltCodec::binding(ticket.segments, self.root.store.clone());
        let mut plan: Arc<dyn ExecutionPlan> =
            physical_plan_from_bytes_with_extension_codec(&ticket.plan, &task_ctx, &codec)?;
        if plan.output_partitioning().partition_count() != 1 {
            plan = Arc::new(CoalescePartitionsExec::new(plan));
        }
        debug!(query = %ticket.query_id, slice = %ticket.slice, "running fragment");
        Ok(plan.execute(0, task_ctx)?)
    }

    async fn write_rows(
        &self,
        req: &WriteRequest,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<SegmentRef> {
        let batch = concat_batches(&schema, &batches)?;
        let batch = sort_batch(&batch, &req.sort_key)?;
        let codecs = req.codecs.clone();
        let rows = batch.num_rows() as u64;
        let bytes = tokio::task::spawn_blocking(move || write_segment(&batch, &codecs))
            .await
            .map_err(|e| WorkerError::Rpc(e.to_string()))??;
        let path = new_segment_path(req.table_id, req.slice);
        let size = bytes.len() as u64;
        self.root.put_durable(&path, bytes).await?;
        Ok(SegmentRef {
            slice: req.slice,
            path: path.to_string(),
            rows,
            bytes: size,
        })
    }
}

fn sort_batch(batch: &RecordBatch, key: &[usize]) -> Result<RecordBatch> {
    if key.is_empty() || batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let columns: Vec<SortColumn> = key
        .iter()
        .map(|&i| SortColumn {
            values: batch.column(i).clone(),
            options: None,
        })
        .collect();
    let indices = lexsort_to_indices(&columns, None)?;
    Ok(take_record_batch(batch, &indices)?)
}

pub type BoxedStream<T> = BoxStream<'static, std::result::Result<T, Status>>;

crate::flight_service!(WorkerService, {
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<BoxedStream<FlightData>>, Status> {
        let ticket: FragmentTicket = protocol::decode(&request.into_inner().ticket)?;
        let stream = self.run_fragment(ticket)?;
        let schema = stream.schema();
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(stream.map_err(|e| FlightError::ExternalError(Box::new(e))))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(flight.boxed()))
    }

    async fn do_put(
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

    async fn do_action(
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
            other => Err(Status::unimplemented(format!("unknown action {other}"))),
        }
    }
});

/// Implements `FlightService` for `$ty` with the given `do_get`, `do_put` and `do_action`
/// methods; every other Flight method answers `unimplemented`, since Basalt nodes do not
/// serve them.
#[macro_export]
macro_rules! flight_service {
    ($ty:ty, { $($methods:tt)* }) => {
        #[tonic::async_trait]
        impl arrow_flight::flight_service_server::FlightService for $ty {
            type HandshakeStream = $crate::service::BoxedStream<arrow_flight::HandshakeResponse>;
            type ListFlightsStream = $crate::service::BoxedStream<arrow_flight::FlightInfo>;
            type DoGetStream = $crate::service::BoxedStream<arrow_flight::FlightData>;
            type DoPutStream = $crate::service::BoxedStream<arrow_flight::PutResult>;
            type DoExchangeStream = $crate::service::BoxedStream<arrow_flight::FlightData>;
            type DoActionStream = $crate::service::BoxedStream<arrow_flight::Result>;
            type ListActionsStream = $crate::service::BoxedStream<arrow_flight::ActionType>;

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
