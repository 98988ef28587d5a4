//! Where COPY reads its input and UNLOAD writes its output: server-local paths,
//! `file://` URLs and `s3://bucket/key` URLs, all opened as `object_store` locations so
//! the loader and unloader have one code path. [`ObjectAccess`] carries what an S3 store
//! needs (region, endpoint, keys); the leader resolves it from the statement's
//! REGION / ACCESS_KEY_ID / SECRET_ACCESS_KEY / CREDENTIALS / IAM_ROLE options and the
//! server configuration, and sends it to the workers with each request.
//!
//! A COPY source is a *key prefix*, as in Redshift: every object whose full key starts
//! with it, whether or not the prefix ends at a `/`.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

/// Credentials and endpoint for `s3://` locations. Local paths ignore it.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectAccess {
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://host:port`); None = AWS.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for ObjectAccess {
    /// Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectAccess")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

/// Why a location could not be opened, read or written, in words for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ObjectError(pub String);

impl ObjectError {
    fn new(url: &str, e: impl std::fmt::Display) -> Self {
        Self(format!("{url}: {}", describe(e.to_string())))
    }
}

/// object_store's messages carry whole HTTP bodies; keep the part a user acts on.
fn describe(msg: String) -> String {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("invalidaccesskeyid") || lower.contains("signaturedoesnotmatch") {
        return "S3 rejected the credentials (InvalidAccessKeyId / SignatureDoesNotMatch)".into();
    }
    if lower.contains("accessdenied") || lower.contains("403 forbidden") {
        return "S3 denied access (AccessDenied)".into();
    }
    if lower.contains("nosuchbucket") {
        return "the bucket does not exist (NoSuchBucket)".into();
    }
    if lower.contains("not found") || lower.contains("nosuchkey") {
        return "not found".into();
    }
    msg
}

/// One store and a key inside it.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The key (for local files: the absolute path without its leading `/`).
    pub path: Path,
    /// How users name it: `s3://bucket/key` or `/abs/path`.
    pub url: String,
}

/// How users name the object `key` of the store behind `base` (same scheme and bucket).
fn url_for(base: &str, key: &str) -> String {
    match base.strip_prefix("s3://") {
        Some(rest) => {
            let bucket = rest.split('/').next().unwrap_or_default();
            format!("s3://{bucket}/{key}")
        }
        None => format!("/{key}"),
    }
}

/// Open the store behind `url` (a path, `file://…` or `s3://bucket/key`) and the key it
/// names. A trailing `/` is kept in `Location::url` but not in the key.
pub fn open(url: &str, access: &ObjectAccess) -> Result<Location, ObjectError> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectError(format!("{url}: the S3 URL names no bucket")));
        }
        let path = Path::parse(key.trim_end_matches('/'))
            .map_err(|e| ObjectError(format!("{url}: invalid key: {e}")))?;
        return Ok(Location {
            store: s3_store(url, bucket, access)?,
            path,
            url: url.to_string(),
        });
    }
    if url.contains("://") && !url.starts_with("file://") {
        return Err(ObjectError(format!(
            "{url}: unsupported location (use an absolute path, file:// or s3://)"
        )));
    }
    let local = url.strip_prefix("file://").unwrap_or(url);
    if !local.starts_with('/') {
        return Err(ObjectError(format!(
            "{url}: must be an absolute path, a file:// URL or an s3:// URL"
        )));
    }
    let path = Path::parse(local.trim_matches('/'))
        .map_err(|e| ObjectError(format!("{url}: invalid path: {e}")))?;
    static LOCAL: LazyLock<Arc<dyn ObjectStore>> =
        LazyLock::new(|| Arc::new(LocalFileSystem::new()));
    Ok(Location {
        store: LOCAL.clone(),
        path,
        url: local.to_string(),
    })
}

/// The S3 client for `bucket` with `access`, built once and reused: a COPY of many
/// objects (and every part of one) shares its connections instead of opening new ones.
fn s3_store(
    url: &str,
    bucket: &str,
    access: &ObjectAccess,
) -> Result<Arc<dyn ObjectStore>, ObjectError> {
    type Stores = Mutex<HashMap<(String, ObjectAccess), Arc<dyn ObjectStore>>>;
    static STORES: LazyLock<Stores> = LazyLock::new(Stores::default);
    let key = (bucket.to_string(), access.clone());
    if let Some(store) = STORES.lock().expect("store cache lock").get(&key) {
        return Ok(store.clone());
    }
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(access.region.as_deref().unwrap_or("us-east-1"))
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..Default::default()
        });
    if let Some(e) = &access.endpoint {
        b = b
            .with_endpoint(e)
            .with_allow_http(e.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    match (&access.access_key_id, &access.secret_access_key) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            if let Some(t) = &access.session_token {
                b = b.with_token(t);
            }
        }
        _ => {
            return Err(ObjectError(format!(
                "{url}: no credentials; give ACCESS_KEY_ID and SECRET_ACCESS_KEY, CREDENTIALS, or configure [s3] keys on the server for IAM_ROLE"
            )));
        }
    }
    let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(|e| ObjectError::new(url, e))?);
    let mut stores = STORES.lock().expect("store cache lock");
    // Distinct credentials are few; a cache that somehow grows is simply restarted.
    if stores.len() >= 64 {
        stores.clear();
    }
    stores.insert(key, store.clone());
    Ok(store)
}

/// One object found under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub url: String,
    pub size: u64,
}

/// Every object whose key starts with the prefix `url` names (Redshift's key-prefix
/// rule: `data/part` matches `data/part-0` and `data/part/x`), in key order.
pub async fn list_prefix(url: &str, access: &ObjectAccess) -> Result<Vec<Listed>, ObjectError> {
    let loc = open(url, access)?;
    let wanted = loc.path.as_ref().to_string();
    // A prefix ending in '/' matches only inside that folder.
    let wanted = if url.ends_with('/') && !wanted.is_empty() {
        format!("{wanted}/")
    } else {
        wanted
    };
    // object_store lists by whole path segments: list the folder holding the prefix.
    let folder = wanted.rfind('/').map(|i| Path::from(&wanted[..i]));
    let mut out: Vec<Listed> = loc
        .store
        .list(folder.as_ref())
        .try_filter(|m| futures::future::ready(m.location.as_ref().starts_with(&wanted)))
        .map_ok(|m| Listed {
            url: url_for(url, m.location.as_ref()),
            size: m.size,
        })
        .try_collect()
        .await
        .or_else(|e| match e {
            // A folder that does not exist holds nothing.
            object_store::Error::NotFound { .. } => Ok(vec![]),
            e => Err(ObjectError::new(url, e)),
        })?;
    out.sort();
    Ok(out)
}

/// Size of the object at `url`.
pub async fn size(url: &str, access: &ObjectAccess) -> Result<u64, ObjectError> {
    let loc = open(url, access)?;
    let meta = loc
        .store
        .head(&loc.path)
        .await
        .map_err(|e| ObjectError::new(url, e))?;
    Ok(meta.size)
}

/// The whole object at `url`.
pub async fn read(url: &str, access: &ObjectAccess) -> Result<Bytes, ObjectError> {
    let loc = open(url, access)?;
    let got = loc
        .store
        .get(&loc.path)
        .await
        .map_err(|e| ObjectError::new(url, e))?;
    got.bytes().await.map_err(|e| ObjectError::new(url, e))
}

/// Bytes `range` of the object at `url` (clamped to its end).
pub async fn read_range(
    loc: &Location,
    range: Range<u64>,
    size: u64,
) -> Result<Bytes, ObjectError> {
    let range = range.start.min(size)..range.end.min(size);
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    loc.store
        .get_range(&loc.path, range)
        .await
        .map_err(|e| ObjectError::new(&loc.url, e))
}

/// Write `bytes` as the object at `url`, replacing any object there.
pub async fn write(url: &str, access: &ObjectAccess, bytes: Bytes) -> Result<(), ObjectError> {
    let loc = open(url, access)?;
    loc.store
        .put(&loc.path, PutPayload::from_bytes(bytes))
        .await
        .map_err(|e| ObjectError::new(url, e))?;
    Ok(())
}

/// An object being written piece by piece (UNLOAD's output files): small objects go up
/// in one PUT when finished, larger ones as a multipart upload while they are written,
/// so memory stays bounded whatever the object's size. Nothing is visible at `url`
/// until [`ObjectWriter::finish`].
pub struct ObjectWriter {
    url: String,
    inner: object_store::buffered::BufWriter,
    written: u64,
}

/// Bytes an [`ObjectWriter`] gathers before it switches to a multipart upload (also the
/// part size).
const WRITE_CHUNK: usize = 10 << 20;

impl ObjectWriter {
    /// Start writing the object at `url` (replacing any object there once finished).
    pub fn create(url: &str, access: &ObjectAccess) -> Result<Self, ObjectError> {
        let loc = open(url, access)?;
        Ok(Self {
            url: loc.url.clone(),
            inner: object_store::buffered::BufWriter::with_capacity(
                loc.store,
                loc.path,
                WRITE_CHUNK,
            ),
            written: 0,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Bytes handed to the writer so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn put(&mut self, bytes: Bytes) -> Result<(), ObjectError> {
        self.written += bytes.len() as u64;
        self.inner
            .put(bytes)
            .await
            .map_err(|e| ObjectError::new(&self.url, e))
    }

    /// Complete the object; returns its size.
    pub async fn finish(mut self) -> Result<u64, ObjectError> {
        use tokio::io::AsyncWriteExt;
        self.inner
            .shutdown()
            .await
            .map_err(|e| ObjectError::new(&self.url, e))?;
        Ok(self.written)
    }

    /// Give up the object: a multipart upload in progress is aborted, nothing appears.
    pub async fn abort(mut self) {
        let _ = self.inner.abort().await;
    }
}

/// Delete the object at `url` (a missing object is not an error).
pub async fn delete(url: &str, access: &ObjectAccess) -> Result<(), ObjectError> {
    let loc = open(url, access)?;
    match loc.store.delete(&loc.path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(ObjectError::new(url, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_local_key_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().to_string();
        std::fs::create_dir_all(format!("{root}/data/sub")).unwrap();
        for f in ["data/part-0", "data/part-1", "data/sub/x", "data/other"] {
            std::fs::write(format!("{root}/{f}"), f).unwrap();
        }
        let access = ObjectAccess::default();
        let names = |v: Vec<Listed>| -> Vec<String> {
            v.into_iter()
                .map(|l| l.url.trim_start_matches(&root).to_string())
                .collect()
        };
        let got = list_prefix(&format!("{root}/data/part"), &access)
            .await
            .unwrap();
        assert_eq!(names(got), ["/data/part-0", "/data/part-1"]);
        let got = list_prefix(&format!("file://{root}/data/"), &access)
            .await
            .unwrap();
        assert_eq!(
            names(got),
            ["/data/other", "/data/part-0", "/data/part-1", "/data/sub/x"]
        );
        let got = list_prefix(&format!("{root}/data/s"), &access)
            .await
            .unwrap();
        assert_eq!(names(got), ["/data/sub/x"]);
        assert!(
            list_prefix(&format!("{root}/nothing/here"), &access)
                .await
                .unwrap()
                .is_empty()
        );
        let loc = open(&format!("{root}/data/part-1"), &access).unwrap();
        assert_eq!(
            &read_range(&loc, 2..100, 11).await.unwrap()[..],
            b"ta/part-1"
        );
        assert!(open("relative/path", &access).is_err());
        assert!(open("s3://bucket/key", &access).is_err(), "no credentials");
    }
}
