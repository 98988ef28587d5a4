//! Where table data lives under the storage root, and how the root is opened.
//!
//! The storage root is an `object_store` URL (`file:///…` by default). Under it:
//! `tables/<table_id>/slice-<slice>/<segment_id>.bseg`, and deletion vectors beside them
//! as `<id>.bdel`. Table ids are never reused, so
//! dropping a table and creating another of the same name can never mix their files.
//! DISTSTYLE ALL tables keep their single copy under the pseudo-slice `all`.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::{Result, StorageError};

/// The slice placement of a segment: a real slice, or the single copy of a DISTSTYLE ALL
/// table that every worker may read.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum SliceId {
    Slice(u32),
    All,
}

impl std::fmt::Display for SliceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SliceId::Slice(s) => write!(f, "slice-{s}"),
            SliceId::All => write!(f, "slice-all"),
        }
    }
}

/// Path of a new segment of `table_id` on `slice`.
pub fn new_segment_path(table_id: u64, slice: SliceId) -> Path {
    Path::from(format!(
        "tables/{table_id}/{slice}/{}.bseg",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Path of a new deletion-vector file for a segment of `table_id` on `slice`.
pub fn new_delete_path(table_id: u64, slice: SliceId) -> Path {
    Path::from(format!(
        "tables/{table_id}/{slice}/{}.bdel",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Prefix holding every file of a table (used to delete a dropped table's files).
pub fn table_prefix(table_id: u64) -> Path {
    Path::from(format!("tables/{table_id}"))
}

/// An opened storage root: the object store, plus the local directory behind it when the
/// root is a `file://` URL (used to make writes durable).
#[derive(Debug, Clone)]
pub struct StorageRoot {
    pub store: Arc<dyn ObjectStore>,
    local: Option<PathBuf>,
}

impl StorageRoot {
    /// Open the storage root named by `url`. `file://` roots are created if missing.
    pub fn open(url: &str) -> Result<Self> {
        let parsed = Url::parse(url).map_err(|e| StorageError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| StorageError::InvalidUrl {
                        url: url.to_string(),
                        reason: "not an absolute local path".into(),
                    })?;
                std::fs::create_dir_all(&dir).map_err(|e| StorageError::InvalidUrl {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)?;
                Ok(Self {
                    store: Arc::new(fs),
                    local: Some(dir),
                })
            }
            other => Err(StorageError::InvalidUrl {
                url: url.to_string(),
                reason: format!("unsupported scheme '{other}' (supported: file)"),
            }),
        }
    }

    /// The directory behind a local (`file://`) root.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// Size in bytes of the file system holding a local (`file://`) root, if known.
    pub fn local_capacity(&self) -> Option<u64> {
        let dir = self.local.as_ref()?;
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid NUL-terminated string and `stat` a writable statvfs.
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
        (rc == 0).then_some(stat.f_blocks * stat.f_frsize)
    }

    /// Write a new immutable file and make it durable before returning, so that a catalog
    /// commit that names it can never outlive it in a crash.
    pub async fn put_durable(&self, path: &Path, bytes: bytes::Bytes) -> Result<()> {
        self.store.put(path, PutPayload::from_bytes(bytes)).await?;
        if let Some(root) = &self.local {
            let file = root.join(path.as_ref());
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::File::open(&file)?.sync_all()?;
                if let Some(dir) = file.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            })
            .await
            .map_err(|e| StorageError::Unsupported(format!("fsync task: {e}")))?
            .map_err(|e| StorageError::Unsupported(format!("fsync {path}: {e}")))?;
        }
        Ok(())
    }
}
