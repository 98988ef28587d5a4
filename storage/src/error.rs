//! The storage crate's error type. Every variant names the object it is about so that a
//! corrupt or missing file can be traced to its table, slice and segment.

use thiserror::Error;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("segment {path}: {reason}")]
    Corrupt { path: String, reason: String },

    #[error(
        "segment {path} has format version {found}, this build reads versions up to {supported}"
    )]
    UnsupportedVersion {
        path: String,
        found: u16,
        supported: u16,
    },

    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),

    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("invalid storage url '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("{0}")]
    Unsupported(String),
}

/// Shorthand for a [`StorageError::Corrupt`] naming the segment at `$path`.
#[macro_export]
macro_rules! corrupt {
    ($path:expr, $($arg:tt)*) => {
        $crate::error::StorageError::Corrupt { path: $path.to_string(), reason: format!($($arg)*) }
    };
}
