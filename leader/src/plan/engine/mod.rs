//! The [`Engine`] every connection shares (the catalog, the cluster, the query runtime,
//! the system tables) and the DataFusion session one statement plans and runs in.

pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::common::ScalarValue;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::SessionConfig;

use basalt_storage::layout::StorageRoot;

use crate::catalog::gc::FileGc;
use crate::catalog::{Catalog, CatalogState};
use crate::cluster::Cluster;
use crate::config::LeaderConfig;
use crate::error::{LeaderError, Result};
use crate::plan::exec::PushFragmentsToWorkers;
use crate::plan::table::{BasaltCatalog, IdentityCounters, TableContext, WriteLog};
use crate::system::SystemTables;

/// What `select version()` answers.
pub const VERSION: &str = concat!(
    "PostgreSQL 8.0.2 on x86_64-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 Redshift 1.0.0 (Basalt ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

pub struct Engine {
    pub catalog: Arc<Catalog>,
    pub cluster: Arc<Cluster>,
    pub counters: Arc<IdentityCounters>,
    pub system: Arc<SystemTables>,
    pub runtime: Arc<RuntimeEnv>,
    pub config: LeaderConfig,
    /// The table files, for the deletion vectors DELETE writes and for garbage.
    pub storage: StorageRoot,
    pub gc: Arc<FileGc>,
    /// Number of the next statement (`stl_scan.query`, `pg_last_query_id()`).
    next_query: AtomicU64,
    /// Redshift runs one VACUUM at a time.
    pub(crate) vacuum_lock: tokio::sync::Mutex<()>,
}

/// What one statement's DataFusion session needs beyond the catalog view.
#[derive(Debug, Clone, Default)]
pub struct StatementCtx {
    /// The session's user, search path and backend pid, for the catalog functions.
    pub session: Option<crate::system::pg_catalog::SessionInfo>,
    pub query: u64,
    /// The table whose scans also yield row ids (the target of a DELETE or UPDATE).
    pub row_ids_for: Option<u64>,
    /// The session's previous query number, for `pg_last_query_id()`.
    pub last_query: u64,
    /// Query number and rows loaded of the session's last successful COPY.
    pub last_copy: Option<(u64, u64)>,
    /// Query number and rows written of the session's last successful UNLOAD.
    pub last_unload: Option<(u64, u64)>,
    /// When the enclosing transaction block began (SYSDATE), if there is one.
    pub transaction_start: Option<chrono::DateTime<chrono::Utc>>,
    /// How many views deep this session plans (0 for the statement itself).
    pub view_depth: usize,
    /// The relations planning resolves, for the privilege check (shared by the sessions
    /// that plan the statement's views).
    pub reads: Arc<crate::plan::table::ReadLog>,
    /// Whose privileges reading a relation needs here: the owner of the view being
    /// planned (None: the session's user).
    pub acting_user: Option<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl Engine {
    /// The runtime one statement runs in: the shared disk manager and caches, and a memory
    /// pool of its own of `query_memory_mb`, so one query's hash tables and sorts spill
    /// (or fail with 53200) at its own limit instead of starving the others.
    fn statement_runtime(&self) -> Result<Arc<RuntimeEnv>> {
        let limit = self.config.query_memory_mb * 1024 * 1024;
        let pool = datafusion::execution::memory_pool::TrackConsumersPool::new(
            datafusion::execution::memory_pool::FairSpillPool::new(limit),
            std::num::NonZeroUsize::new(3).expect("3 is not zero"),
        );
        Ok(RuntimeEnvBuilder::from_runtime_env(&self.runtime)
            .with_memory_pool(Arc::new(pool))
            .build_arc()?)
    }

    pub fn new(catalog: Arc<Catalog>, cluster: Arc<Cluster>, config: LeaderConfig) -> Result<Self> {
        // Shared by every statement: temp files for spilling, caches, object stores. Each
        // statement gets its own memory pool on top (`statement_runtime`).
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        let storage = StorageRoot::open(&cluster.storage_url)
            .map_err(|e| LeaderError::Catalog(format!("storage root: {e}")))?;
        Ok(Self {
            system: Arc::new(SystemTables::new(cluster.clone(), storage.clone())),
            catalog,
            cluster,
            counters: Arc::new(IdentityCounters::default()),
            runtime,
            config,
            gc: FileGc::new(storage.clone()),
            storage,
            next_query: AtomicU64::new(1),
            vacuum_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// A new statement number.
    pub fn next_query(&self) -> u64 {
        self.next_query.fetch_add(1, Ordering::Relaxed)
    }

    /// A DataFusion session over catalog `view` whose writes go to `writes`.
    pub(crate) fn session_state(
        self: &Arc<Self>,
        view: Arc<CatalogState>,
        writes: Arc<WriteLog>,
        stmt: StatementCtx,
    ) -> Result<SessionState> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema("dev", "public")
            .with_create_default_catalog_and_schema(false)
            .with_target_partitions(self.cluster.slice_count().max(1) as usize)
            // `information_schema` is PostgreSQL's, from `system/pg_catalog`.
            .with_information_schema(false);
        let mut rules = PhysicalOptimizer::new().rules;
        rules.push(Arc::new(PushFragmentsToWorkers));
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.statement_runtime()?)
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        state.add_analyzer_rule(Arc::new(crate::sql::functions::RedshiftDatetimeInput));
        let view_for_functions = view.clone();
        let views = Arc::new(crate::plan::engine::views::ViewPlanner {
            engine: self.clone(),
            view: view.clone(),
            stmt: stmt.clone(),
        });
        let catalog = BasaltCatalog {
            view,
            ctx: TableContext {
                cluster: self.cluster.clone(),
                writes,
                counters: self.counters.clone(),
                system: self.system.clone(),
                query: stmt.query,
                row_ids_for: stmt.row_ids_for,
                gc: self.gc.clone(),
                catalog: self.catalog.clone(),
                views,
                reads: stmt.reads.clone(),
                acting_user: stmt
                    .acting_user
                    .clone()
                    .or_else(|| stmt.session.as_ref().map(|s| s.user.clone()))
                    .unwrap_or_default(),
            },
        };
        state
            .catalog_list()
            .register_catalog("dev".into(), Arc::new(catalog));
        if let Some(info) = stmt.session.clone() {
            crate::system::pg_catalog::register_functions(
                &mut state,
                view_for_functions,
                info,
                self.system.clone(),
            )?;
        }
        // Session functions that answer a constant for the statement: version() and the
        // ids and counts of the session's last query, COPY and UNLOAD (-1 until the
        // first successful COPY/UNLOAD, as Redshift).
        let (copy_id, copy_count) = stmt
            .last_copy
            .map_or((-1, -1), |(q, n)| (q as i32, n as i64));
        let (unload_id, unload_count) = stmt
            .last_unload
            .map_or((-1, -1), |(q, n)| (q as i32, n as i64));
        for (name, value, volatility) in [
            (
                "version",
                ScalarValue::Utf8(Some(VERSION.into())),
                Volatility::Immutable,
            ),
            (
                "pg_last_query_id",
                ScalarValue::Int32(Some(stmt.last_query as i32)),
                Volatility::Stable,
            ),
            (
                "pg_last_copy_id",
                ScalarValue::Int32(Some(copy_id)),
                Volatility::Stable,
            ),
            (
                "pg_last_copy_count",
                ScalarValue::Int64(Some(copy_count)),
                Volatility::Stable,
            ),
            (
                "pg_last_unload_id",
                ScalarValue::Int32(Some(unload_id)),
                Volatility::Stable,
            ),
            (
                "pg_last_unload_count",
                ScalarValue::Int64(Some(unload_count)),
                Volatility::Stable,
            ),
        ] {
            let data_type = value.data_type();
            let udf = create_udf(
                name,
                vec![],
                data_type,
                volatility,
                Arc::new(move |_| Ok(ColumnarValue::Scalar(value.clone()))),
            );
            datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(udf))?;
        }
        crate::sql::functions::register(&mut state, stmt.transaction_start)?;
        // The statement starts now: now(), current_timestamp and getdate() are this
        // instant for the whole statement (and the planner folds them to it; without a
        // start time, DataFusion's now() cannot run at all).
        state.mark_start_execution();
        Ok(state)
    }
}

impl From<LeaderError> for datafusion::error::DataFusionError {
    fn from(e: LeaderError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}
