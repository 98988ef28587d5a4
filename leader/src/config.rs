//! Leader configuration: one TOML file (`basalt leader --config basalt.toml`), every field
//! optional, with command-line overrides applied by the binary.

use serde::{Deserialize, Serialize};

use crate::error::{LeaderError, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderConfig {
    /// Directory for the leader's catalog (`catalog.redb`).
    pub data_dir: String,
    /// PostgreSQL wire protocol listen address.
    pub listen: String,
    /// Cluster (Arrow Flight) listen address that workers register with.
    pub cluster_listen: String,
    /// Storage root URL; default `file://<data_dir>/storage`.
    pub storage_url: Option<String>,
    /// Number of worker nodes the cluster is created with.
    pub workers: u32,
    /// Slices per worker node; fixed when the cluster is created.
    pub slices_per_worker: u32,
    /// Password of the `admin` superuser. Required unless listening on loopback only.
    pub admin_password: Option<String>,
    /// `md5` (default, as Redshift: every Redshift driver can answer it, and Amazon's
    /// redshift_connector cannot answer SCRAM) or `scram-sha-256`.
    pub auth_method: String,
    /// PEM certificate and key: when both are set, SSLRequest is answered with 'S'.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Memory limit per query, in MiB (queries spill beyond it where they can).
    pub query_memory_mb: usize,
    /// COPY splits an uncompressed text file larger than this (MiB) into byte ranges
    /// that several workers load in parallel.
    pub copy_split_mb: u64,
    /// Object store access for `s3://` COPY sources and UNLOAD targets.
    pub s3: S3Config,
}

/// `[s3]`: the endpoint of an S3-compatible store and the keys COPY and UNLOAD use when
/// a statement names an IAM_ROLE (Basalt has no AWS role to assume) — statements that
/// carry their own keys use those. Unset fields fall back to the standard `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` variables.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    /// Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// This configuration with unset fields taken from the environment.
    pub fn with_env(&self) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            endpoint: self.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL")),
            region: self
                .region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: self
                .access_key_id
                .clone()
                .or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: self
                .secret_access_key
                .clone()
                .or_else(|| env("AWS_SECRET_ACCESS_KEY")),
        }
    }
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            data_dir: "./basalt-data".into(),
            listen: "127.0.0.1:5439".into(),
            cluster_listen: "127.0.0.1:5440".into(),
            storage_url: None,
            workers: 2,
            slices_per_worker: 2,
            admin_password: None,
            auth_method: "md5".into(),
            tls_cert: None,
            tls_key: None,
            query_memory_mb: 2048,
            copy_split_mb: 64,
            s3: S3Config::default(),
        }
    }
}

/// Used only while every listener is bound to loopback.
pub const DEFAULT_LOOPBACK_PASSWORD: &str = "basalt";

impl LeaderConfig {
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| LeaderError::Catalog(format!("config: {e}")))
    }

    pub fn storage_url(&self) -> Result<String> {
        if let Some(u) = &self.storage_url {
            return Ok(u.clone());
        }
        let dir = std::path::Path::new(&self.data_dir).join("storage");
        std::fs::create_dir_all(&dir)?;
        let abs = std::fs::canonicalize(&dir)?;
        Ok(format!("file://{}", abs.display()))
    }

    /// The admin password to use, refusing the built-in default off loopback.
    pub fn admin_password(&self) -> Result<String> {
        if let Some(p) = &self.admin_password {
            return Ok(p.clone());
        }
        let loopback = |addr: &str| {
            addr.parse::<std::net::SocketAddr>()
                .map(|a| a.ip().is_loopback())
                .unwrap_or_else(|_| addr.starts_with("localhost:"))
        };
        if loopback(&self.listen) && loopback(&self.cluster_listen) {
            Ok(DEFAULT_LOOPBACK_PASSWORD.into())
        } else {
            Err(LeaderError::Catalog(
                "an admin password is required when listening beyond loopback \
                 (--admin-password or BASALT_ADMIN_PASSWORD)"
                    .into(),
            ))
        }
    }

    pub fn slice_count(&self) -> u32 {
        self.workers * self.slices_per_worker
    }
}
