//! The worker crate's error type, and its mapping onto gRPC statuses (the leader turns
//! those back into SQL errors).

use thiserror::Error;

pub type Result<T, E = WorkerError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error(transparent)]
    Storage(#[from] basalt_storage::StorageError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Object(#[from] crate::objects::ObjectError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("{0}")]
    Rpc(String),
}

/// Shorthand for [`WorkerError::BadRequest`].
#[macro_export]
macro_rules! bad_request {
    ($($arg:tt)*) => { $crate::error::WorkerError::BadRequest(format!($($arg)*)) };
}

impl From<WorkerError> for tonic::Status {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::BadRequest(m) => tonic::Status::invalid_argument(m),
            other => tonic::Status::internal(other.to_string()),
        }
    }
}
