//! Sessions and statement execution. The [`Engine`] is shared by every connection: the
//! catalog, the cluster, the query runtime. A [`Session`] is one connection's state: its
//! user, its settings and its open transaction. A transaction keeps a private catalog view
//! (the snapshot at BEGIN plus its own changes) and a list of changes that COMMIT replays
//! onto the newest catalog in one durable catalog transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{ColumnarValue, LogicalPlan, Volatility, WriteOp, create_udf};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{SendableRecordBatchStream, collect, execute_stream};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectType, Set, Statement};
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{debug, warn};

use basalt_storage::layout::StorageRoot;

use crate::catalog::{Catalog, CatalogOp, CatalogState, ColumnDef, Relation};
use crate::cluster::Cluster;
use crate::config::LeaderConfig;
use crate::ddl;
use crate::error::{LeaderError, Result, code};
use crate::exec::PushFragmentsToWorkers;
use crate::gc::{FileGc, Pin, garbage_between};
use crate::sql::types::SqlType;
use crate::sql::{TableAttrs, alter_encodings, parse_sql};
use crate::sql_err;
use crate::system::SystemTables;
use crate::table::{BasaltCatalog, IdentityCounters, TableContext, WriteLog};

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
    pub session: Option<crate::pg_catalog::SessionInfo>,
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
            // `information_schema` is PostgreSQL's, from `pg_catalog.rs`.
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
        let views = Arc::new(crate::views::ViewPlanner {
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
            },
        };
        state
            .catalog_list()
            .register_catalog("dev".into(), Arc::new(catalog));
        if let Some(info) = stmt.session.clone() {
            crate::pg_catalog::register_functions(
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
        Ok(state)
    }
}

/// One parsed statement, ready to describe and execute.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stmt: Option<Statement>,
    pub attrs: TableAttrs,
}

/// The result of executing one statement.
pub enum Outcome {
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// A completed command and its tag (`INSERT 0 5`, `CREATE TABLE`, …).
    Command(String),
    /// `COPY … FROM STDIN`: the client now sends rows of `columns` fields.
    CopyIn {
        columns: usize,
    },
    Begin,
    /// `COMMIT` or `ROLLBACK` (what actually happened).
    End(&'static str),
    Empty,
}

pub(crate) struct Txn {
    view: Arc<CatalogState>,
    ops: Vec<CatalogOp>,
    failed: bool,
    started: chrono::DateTime<chrono::Utc>,
    /// Open savepoints, oldest first: a name, how many of `ops` came before it, and the
    /// view as it was, which `ROLLBACK TO` restores.
    savepoints: Vec<(String, usize, Arc<CatalogState>)>,
    /// Keeps the files of the snapshot taken at BEGIN readable until the end.
    _pin: Pin,
}

pub struct Session {
    pub(crate) engine: Arc<Engine>,
    pub user: String,
    pub(crate) txn: Option<Txn>,
    settings: BTreeMap<String, String>,
    /// Number of the last statement this session ran.
    pub(crate) last_query: u64,
    /// Query number and rows of the last successful COPY (`pg_last_copy_id/count()`).
    pub(crate) last_copy: Option<(u64, u64)>,
    /// Query number and rows of the last successful UNLOAD (`pg_last_unload_id/count()`).
    pub(crate) last_unload: Option<(u64, u64)>,
    /// A `COPY … FROM STDIN` waiting for the client's data, and the file staging it.
    pub(crate) pending_copy: Option<crate::copy::PreparedCopy>,
    pub(crate) copy_staging: Option<(std::path::PathBuf, std::fs::File)>,
    /// INFO messages for the client from the statement that just ran.
    pub(crate) notices: Vec<String>,
    /// What `pg_backend_pid()` answers.
    pid: i32,
    /// The statement being run, as the query log records it.
    statement_text: String,
    /// Query numbers the statement being run has used, until its result is sent.
    open_queries: Vec<u64>,
}

fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "search_path" => "$user, public",
        "timezone" => "UTC",
        "datestyle" => "ISO, MDY",
        "client_encoding" => "UTF8",
        "server_encoding" => "UNICODE",
        "server_version" => "8.0.2",
        "standard_conforming_strings" => "on",
        "integer_datetimes" => "on",
        "transaction_isolation" | "transaction isolation level" => "serializable",
        "max_identifier_length" => "127",
        "statement_timeout" => "0",
        "query_group" => "default",
        "enable_result_cache_for_session" => "on",
        "extra_float_digits" => "0",
        "application_name" => "",
        _ => return None,
    })
}

impl Drop for Session {
    /// A connection closed inside a transaction block rolls it back.
    fn drop(&mut self) {
        self.copy_fail();
        if let Some(txn) = self.txn.take() {
            self.abandon(&txn.ops);
        }
    }
}

impl Session {
    pub fn new(engine: Arc<Engine>, user: String) -> Self {
        Self {
            engine,
            user,
            txn: None,
            settings: BTreeMap::new(),
            last_query: 0,
            last_copy: None,
            last_unload: None,
            pending_copy: None,
            copy_staging: None,
            notices: vec![],
            pid: crate::pg_catalog::next_backend_pid(),
            statement_text: String::new(),
            open_queries: vec![],
        }
    }

    /// A setting's value in this session: what SET gave it, else the default.
    fn setting(&self, name: &str) -> Option<String> {
        self.settings
            .get(name)
            .cloned()
            .or_else(|| default_setting(name).map(str::to_string))
    }

    /// A new statement starts: the query log records its queries under `text`.
    pub fn begin_statement(&mut self, text: String) {
        self.statement_text = text;
        self.open_queries.clear();
    }

    /// The queries of the statement that just ran, to finish in the query log when its
    /// result has been sent; None when it ran no query (DDL, SET, transaction control).
    pub fn take_query_guard(&mut self) -> Option<crate::querylog::QueryGuard> {
        if self.open_queries.is_empty() {
            return None;
        }
        let queries = std::mem::take(&mut self.open_queries);
        Some(crate::querylog::QueryGuard::new(
            self.engine.system.queries.clone(),
            queries,
        ))
    }

    /// The session as the catalog functions see it.
    fn session_info(&self) -> Option<crate::pg_catalog::SessionInfo> {
        Some(crate::pg_catalog::SessionInfo {
            user: self.user.clone(),
            search_path: self
                .settings
                .get("search_path")
                .cloned()
                .unwrap_or_else(|| {
                    default_setting("search_path")
                        .unwrap_or_default()
                        .to_string()
                }),
            pid: self.pid,
        })
    }

    /// Open a transaction block on the newest catalog version.
    fn begin(&mut self) {
        let (view, pin) = self.engine.gc.pinned_snapshot(&self.engine.catalog);
        self.txn = Some(Txn {
            view,
            ops: vec![],
            failed: false,
            started: chrono::Utc::now(),
            savepoints: vec![],
            _pin: pin,
        });
    }

    /// The catalog view a statement reads, and (outside a transaction block, whose own
    /// pin covers it) a pin keeping its files readable while the statement runs.
    pub(crate) fn pinned_view(&self) -> (Arc<CatalogState>, Option<Pin>) {
        match &self.txn {
            Some(t) => (t.view.clone(), None),
            None => {
                let (view, pin) = self.engine.gc.pinned_snapshot(&self.engine.catalog);
                (view, Some(pin))
            }
        }
    }

    /// A DataFusion session for a new statement over `view`; returns it with the
    /// statement's query number.
    pub(crate) fn statement_state(
        &mut self,
        view: Arc<CatalogState>,
        writes: Arc<WriteLog>,
        row_ids_for: Option<u64>,
    ) -> Result<(SessionState, u64)> {
        let query = self.engine.next_query();
        let stmt = StatementCtx {
            query,
            row_ids_for,
            last_query: self.last_query,
            last_copy: self.last_copy,
            last_unload: self.last_unload,
            transaction_start: self.txn.as_ref().map(|t| t.started),
            session: self.session_info(),
            view_depth: 0,
        };
        let state = self.engine.session_state(view, writes, stmt)?;
        self.last_query = query;
        self.engine
            .system
            .queries
            .start(crate::querylog::QueryRecord {
                query,
                pid: self.pid,
                user: self.user.clone(),
                label: self
                    .setting("query_group")
                    .unwrap_or_else(|| "default".into()),
                text: self.statement_text.clone(),
                start: crate::now_us(),
                end: None,
                aborted: false,
            });
        self.open_queries.push(query);
        Ok((state, query))
    }

    /// INFO messages the last statement left for the client.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// A statement failed before it ran (at parse or describe): like any failure inside a
    /// transaction block, it aborts the transaction.
    pub fn fail_transaction(&mut self) {
        if let Some(t) = self.txn.as_mut() {
            t.failed = true;
        }
    }

    pub(crate) fn view(&self) -> Arc<CatalogState> {
        match &self.txn {
            Some(t) => t.view.clone(),
            None => self.engine.catalog.snapshot(),
        }
    }

    /// Whether the session's user is a superuser.
    pub(crate) fn is_superuser(&self) -> bool {
        self.view()
            .users
            .get(&self.user)
            .is_some_and(|u| u.superuser)
    }

    /// Parse `sql` into statements.
    pub fn parse(&self, sql: &str) -> Result<Vec<Prepared>> {
        Ok(parse_sql(sql)?
            .into_iter()
            .map(|(mut stmt, attrs)| {
                crate::pg_catalog::rewrite(&mut stmt);
                Prepared {
                    stmt: Some(stmt),
                    attrs,
                }
            })
            .collect())
    }

    /// Parameter types and result schema of a statement, without running it.
    pub async fn describe(
        &self,
        p: &Prepared,
    ) -> Result<(Vec<Option<DataType>>, Option<SchemaRef>)> {
        let Some(stmt) = &p.stmt else {
            return Ok((vec![], None));
        };
        if let Statement::ShowVariable { variable } = stmt {
            let name = variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            return Ok((vec![], Some(show_schema(&name))));
        }
        if matches!(stmt, Statement::Analyze(_)) && p.attrs.analyze_compression {
            return Ok((
                vec![],
                Some(crate::maintenance::analyze_compression_schema()),
            ));
        }
        if !goes_to_datafusion(stmt) {
            return Ok((vec![], None));
        }
        let state = self.engine.session_state(
            self.view(),
            Arc::new(WriteLog::default()),
            StatementCtx {
                last_query: self.last_query,
                last_copy: self.last_copy,
                last_unload: self.last_unload,
                transaction_start: self.txn.as_ref().map(|t| t.started),
                session: self.session_info(),
                ..Default::default()
            },
        )?;
        let mut planned = stmt.clone();
        alias_repeated_select_items(&mut planned);
        let plan = plan_statement(&state, planned).await?;
        let params = plan.get_parameter_types()?;
        let mut ordered: Vec<(usize, Option<DataType>)> = params
            .into_iter()
            .filter_map(|(k, v)| {
                k.trim_start_matches('$')
                    .parse::<usize>()
                    .ok()
                    .map(|i| (i, v))
            })
            .collect();
        ordered.sort_by_key(|(i, _)| *i);
        let n = ordered.last().map_or(0, |(i, _)| *i);
        let mut types = vec![None; n];
        for (i, t) in ordered {
            types[i - 1] = t;
        }
        let schema = match &plan {
            LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) => None,
            LogicalPlan::Explain(e) if !e.verbose => Some(crate::explain::query_plan_schema()),
            other => Some(pg_named_schema(other, stmt)),
        };
        Ok((types, schema))
    }

    /// Execute one statement, with `params` bound to `$1…`.
    pub async fn execute(&mut self, p: &Prepared, params: Vec<ScalarValue>) -> Result<Outcome> {
        let Some(stmt) = p.stmt.clone() else {
            return Ok(Outcome::Empty);
        };
        let is_txn_end = matches!(stmt, Statement::Commit { .. } | Statement::Rollback { .. });
        if self.txn.as_ref().is_some_and(|t| t.failed) && !is_txn_end {
            return Err(sql_err!(
                code::IN_FAILED_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block"
            ));
        }
        let result = self.dispatch(stmt, &p.attrs, params).await;
        if let (Err(e), Some(t)) = (&result, self.txn.as_mut()) {
            debug!("statement failed inside a transaction: {e}");
            t.failed = true;
        }
        result
    }

    async fn dispatch(
        &mut self,
        stmt: Statement,
        attrs: &TableAttrs,
        params: Vec<ScalarValue>,
    ) -> Result<Outcome> {
        if let Statement::Insert(ins) = &stmt
            && let datafusion::sql::sqlparser::ast::TableObject::TableName(n) = &ins.table
        {
            crate::views::refuse_write_to_view(&self.view(), n, "insert into")?;
        }
        match stmt {
            Statement::StartTransaction { .. } => {
                if self.txn.is_some() {
                    warn!("BEGIN inside a transaction block is ignored");
                } else {
                    self.begin();
                }
                Ok(Outcome::Begin)
            }
            Statement::Commit { .. } => {
                let Some(txn) = self.txn.take() else {
                    return Ok(Outcome::End("COMMIT"));
                };
                if txn.failed {
                    self.abandon(&txn.ops);
                    return Ok(Outcome::End("ROLLBACK"));
                }
                self.commit_ops(txn.ops)?;
                Ok(Outcome::End("COMMIT"))
            }
            Statement::Savepoint { name } => {
                let txn = self.txn_for_savepoint("SAVEPOINT")?;
                let point = (
                    crate::sql::names::ident_name(&name),
                    txn.ops.len(),
                    txn.view.clone(),
                );
                txn.savepoints.push(point);
                Ok(Outcome::Command("SAVEPOINT".into()))
            }
            Statement::ReleaseSavepoint { name } => {
                let txn = self.txn_for_savepoint("RELEASE SAVEPOINT")?;
                let at = savepoint_position(txn, &crate::sql::names::ident_name(&name))?;
                // Releasing a savepoint also releases every savepoint set after it.
                txn.savepoints.truncate(at);
                Ok(Outcome::Command("RELEASE".into()))
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let txn = self.txn_for_savepoint("ROLLBACK TO SAVEPOINT")?;
                let at = savepoint_position(txn, &crate::sql::names::ident_name(&name))?;
                // The savepoint itself stays, so it can be rolled back to again.
                txn.savepoints.truncate(at + 1);
                let (_, count, view) = txn.savepoints[at].clone();
                let undone = txn.ops.split_off(count);
                txn.view = view;
                txn.failed = false;
                self.abandon(&undone);
                Ok(Outcome::Command("ROLLBACK".into()))
            }
            Statement::Rollback { .. } => {
                if let Some(txn) = self.txn.take() {
                    self.abandon(&txn.ops);
                }
                Ok(Outcome::End("ROLLBACK"))
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let name = match &schema_name {
                    datafusion::sql::sqlparser::ast::SchemaName::Simple(n)
                    | datafusion::sql::sqlparser::ast::SchemaName::NamedAuthorization(n, _) => {
                        crate::sql::names::split_name(n)?.1
                    }
                    datafusion::sql::sqlparser::ast::SchemaName::UnnamedAuthorization(a) => {
                        crate::sql::names::ident_name(a)
                    }
                };
                if if_not_exists && self.view().schemas.contains(&name) {
                    return Ok(Outcome::Command("CREATE SCHEMA".into()));
                }
                self.record(vec![CatalogOp::CreateSchema(name)])?;
                Ok(Outcome::Command("CREATE SCHEMA".into()))
            }
            Statement::CreateTable(ct) => {
                let view = self.view();
                let (schema, name) = crate::sql::names::split_name(&ct.name)?;
                if ct.if_not_exists && view.table(&schema, &name).is_some() {
                    return Ok(Outcome::Command("CREATE TABLE".into()));
                }
                if let Some(query) = &ct.query {
                    return self.create_table_as(&ct, attrs, query).await;
                }
                use datafusion::sql::sqlparser::ast::{
                    CreateTableLikeDefaults, CreateTableLikeKind,
                };
                let id = self.engine.catalog.allocate_table_id()?;
                let mut def = match &ct.like {
                    Some(
                        CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like),
                    ) if ct.columns.is_empty() => {
                        let parent = view.named_table(&like.name)?;
                        let include_defaults =
                            like.defaults == Some(CreateTableLikeDefaults::Including);
                        ddl::table_like(&parent, (schema, name), id, &self.user, include_defaults)
                    }
                    _ => ddl::table_def(&ct, attrs, id, &self.user)?,
                };
                let mut constraints = crate::constraints::from_create(&ct, &mut def, &view)?;
                for c in &mut constraints {
                    c.id = self.engine.catalog.allocate_table_id()?;
                }
                let mut ops = vec![CatalogOp::CreateTable(def)];
                ops.extend(constraints.into_iter().map(CatalogOp::AddConstraint));
                self.record(ops)?;
                Ok(Outcome::Command("CREATE TABLE".into()))
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => self.drop(object_type, if_exists, &names, cascade),
            Statement::CreateView(cv) => self.create_view(cv).await,
            Statement::Comment {
                object_type,
                object_name,
                comment,
                if_exists,
            } => self.comment(object_type, &object_name, comment, if_exists),
            Statement::ShowVariable { variable }
                if variable.len() >= 2 && variable[0].value.eq_ignore_ascii_case("view") =>
            {
                let name =
                    datafusion::sql::sqlparser::ast::ObjectName::from(variable[1..].to_vec());
                self.show_view(&name)
            }
            Statement::Set(set) => {
                match set {
                    Set::SingleAssignment {
                        variable, values, ..
                    } => {
                        let name = variable.to_string().to_lowercase();
                        let value = values
                            .iter()
                            .map(|v| v.to_string().trim_matches('\'').to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        self.settings.insert(name, value);
                    }
                    Set::SetTimeZone { value, .. } => {
                        self.settings.insert(
                            "timezone".into(),
                            value.to_string().trim_matches('\'').into(),
                        );
                    }
                    _ => {}
                }
                Ok(Outcome::Command("SET".into()))
            }
            Statement::Reset(reset) => {
                use datafusion::sql::sqlparser::ast::Reset;
                match reset.reset {
                    Reset::ALL => self.settings.clear(),
                    Reset::ConfigurationParameter(name) => {
                        self.settings.remove(&name.to_string().to_lowercase());
                    }
                }
                Ok(Outcome::Command("RESET".into()))
            }
            Statement::ShowVariable { variable }
                if variable.len() >= 2 && variable[0].value.eq_ignore_ascii_case("table") =>
            {
                // `SHOW TABLE [schema.]name`: its DDL.
                let name =
                    datafusion::sql::sqlparser::ast::ObjectName::from(variable[1..].to_vec());
                let view = self.view();
                let def = view.named_table(&name)?;
                let constraints: Vec<String> = view
                    .constraints_of(def.id)
                    .into_iter()
                    .map(|c| crate::constraints::definition(c, &view))
                    .collect();
                let schema = show_schema("Show Table DDL statement");
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(StringArray::from(vec![ddl::show_table_ddl(
                        &def,
                        &constraints,
                    )]))],
                )
                .map_err(datafusion::error::DataFusionError::from)?;
                Ok(rows_outcome(schema, vec![batch]))
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                let value = self.setting(&name).ok_or_else(|| {
                    sql_err!(
                        code::UNDEFINED_OBJECT,
                        "unrecognized configuration parameter \"{name}\""
                    )
                })?;
                let schema = show_schema(&name);
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(StringArray::from(vec![value]))],
                )
                .map_err(datafusion::error::DataFusionError::from)?;
                Ok(rows_outcome(schema, vec![batch]))
            }
            // Protocol-level prepared statements live in the connection; the wire layer
            // removes named ones. `DEALLOCATE ALL` leaves unnamed leftovers to be replaced.
            Statement::Deallocate { .. } => Ok(Outcome::Command("DEALLOCATE".into())),
            Statement::Delete(d) => self.delete(d).await,
            Statement::Update(u) => self.update(u).await,
            Statement::Truncate(t) => self.truncate(t),
            Statement::Vacuum(v) => self.vacuum(v).await,
            Statement::Copy {
                source,
                to,
                target,
                legacy_options,
                options,
                ..
            } => {
                let spec = crate::copy::CopySpec::from_statement(
                    &source,
                    to,
                    &target,
                    &legacy_options,
                    &options,
                )?;
                self.copy(spec, attrs).await
            }
            Statement::Unload {
                query,
                query_text,
                to,
                auth,
                with,
                options,
            } => {
                let stmt = crate::unload::UnloadStatement {
                    query,
                    query_text,
                    to,
                    auth,
                    with,
                    options,
                };
                self.unload(stmt, attrs).await
            }
            Statement::Analyze(a) => self.analyze(a, attrs).await,
            // `ALTER TABLE view RENAME TO` renames the view (dbt renames relations so).
            Statement::AlterTable(at)
                if renamed_to(&at).is_some() && {
                    let (schema, name) = crate::sql::names::split_name(&at.name)?;
                    self.view().view(&schema, &name).is_some()
                } =>
            {
                let (schema, name) = crate::sql::names::split_name(&at.name)?;
                let def = self.view().view(&schema, &name).cloned().expect("checked");
                let (_, new_name) = renamed_to(&at).expect("checked by the guard")?;
                self.record(vec![CatalogOp::RenameTable {
                    table_id: def.id,
                    name: new_name,
                }])?;
                Ok(Outcome::Command("ALTER TABLE".into()))
            }
            Statement::AlterTable(at) if renamed_to(&at).is_some() => {
                let def = self.view().named_table(&at.name)?;
                let (schema, name) = renamed_to(&at).expect("checked by the guard")?;
                // Redshift renames within the schema; a qualified new name must agree.
                if schema.is_some_and(|s| s != def.schema) {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER TABLE RENAME cannot move a table to another schema"
                    ));
                }
                // Normal views over the table keep reading it, under its new name.
                let views = crate::views::rename_ops(
                    &self.view(),
                    (def.id, &def.schema, &def.name),
                    crate::views::Renamed::Relation { new_name: &name },
                )?;
                let mut ops = vec![CatalogOp::RenameTable {
                    table_id: def.id,
                    name,
                }];
                ops.extend(views);
                self.record(ops)?;
                Ok(Outcome::Command("ALTER TABLE".into()))
            }
            Statement::AlterTable(at) if alter_encodings(&at).is_some() => {
                let changes = alter_encodings(&at).unwrap_or_default();
                self.alter_encode(&at.name, changes).await
            }
            Statement::AlterTable(at) if crate::sql::alter_layout(&at).is_some() => {
                let changes = crate::sql::alter_layout(&at).unwrap_or_default();
                self.relayout(&at, changes, attrs).await
            }
            Statement::AlterTable(at) if crate::constraints::is_constraint_change(&at) => {
                self.alter_constraints(&at)
            }
            Statement::AlterTable(at) if crate::alter::is_column_change(&at) => {
                self.alter_columns(&at).await
            }
            s if goes_to_datafusion(&s) => self.run_datafusion(s, params).await,
            other => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "{} is not supported yet",
                statement_kind(&other)
            )),
        }
    }

    async fn run_datafusion(
        &mut self,
        stmt: Statement,
        params: Vec<ScalarValue>,
    ) -> Result<Outcome> {
        let writes = Arc::new(WriteLog::default());
        let (view, pin) = self.pinned_view();
        let (state, _) = self.statement_state(view.clone(), writes.clone(), None)?;
        let names_from = stmt.clone();
        let mut stmt = stmt;
        alias_repeated_select_items(&mut stmt);
        let mut plan = plan_statement(&state, stmt).await?;
        if !params.is_empty() {
            plan = plan.with_param_values(ParamValues::List(
                params.into_iter().map(Into::into).collect(),
            ))?;
        }
        // EXPLAIN draws the plan Basalt runs in Redshift's form; EXPLAIN VERBOSE keeps
        // DataFusion's plans at every stage.
        if let LogicalPlan::Explain(e) = &plan
            && !e.verbose
        {
            let physical = state.create_physical_plan(&e.plan).await?;
            let lines = crate::explain::redshift_plan(&physical, &view);
            let schema = crate::explain::query_plan_schema();
            let batch = datafusion::arrow::array::RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(datafusion::arrow::array::StringArray::from(lines))],
            )
            .map_err(datafusion::error::DataFusionError::from)?;
            return Ok(Outcome::Rows {
                schema: schema.clone(),
                stream: Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::iter([Ok(batch)]),
                )),
            });
        }
        let dml = match &plan {
            LogicalPlan::Dml(d) => Some(d.op.clone()),
            _ => None,
        };
        let physical = state.create_physical_plan(&plan).await?;
        match dml {
            Some(WriteOp::Insert(_)) => {
                let batches = collect(physical, state.task_ctx()).await?;
                let count = crate::dml::inserted_count(&batches);
                self.record(writes.take())?;
                Ok(Outcome::Command(format!("INSERT 0 {count}")))
            }
            Some(op) => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "{op} is not supported yet"
            )),
            None => {
                let stream = execute_stream(physical, state.task_ctx())?;
                // The pin lives as long as the result stream: the files it reads stay.
                let schema = stream.schema();
                let pinned = stream.map(move |b| {
                    let _ = &pin;
                    b
                });
                Ok(Outcome::Rows {
                    schema: pg_named_schema(&plan, &names_from),
                    stream: Box::pin(RecordBatchStreamAdapter::new(schema, pinned)),
                })
            }
        }
    }

    async fn create_table_as(
        &mut self,
        ct: &datafusion::sql::sqlparser::ast::CreateTable,
        attrs: &TableAttrs,
        query: &datafusion::sql::sqlparser::ast::Query,
    ) -> Result<Outcome> {
        // Plan the query once to learn the column types.
        let (state, _) = self.statement_state(self.view(), Arc::new(WriteLog::default()), None)?;
        let plan = plan_statement(&state, Statement::Query(Box::new(query.clone()))).await?;
        let mut def_stmt = ct.clone();
        def_stmt.query = None;
        def_stmt.columns = vec![];
        let id = self.engine.catalog.allocate_table_id()?;
        let mut columns = Vec::new();
        // A column copied from a table keeps its declared type (`varchar(10)`, as Redshift's
        // CTAS does); any other takes the type of its values.
        let declared = crate::views::declared_types(&plan, &self.view());
        for (f, declared) in plan.schema().fields().iter().zip(declared) {
            // A type no table can store fails here.
            SqlType::from_arrow(f.data_type())?;
            let sql_type = declared;
            columns.push(ColumnDef {
                name: f.name().to_lowercase(),
                stored: f.name().to_lowercase(),
                missing: None,
                encoding: String::new(),
                sql_type,
                nullable: true,
                default: None,
                identity: None,
            });
        }
        // Reuse the CREATE TABLE rules (distkey/sortkey/encodings) with a stand-in column
        // list, then put the real columns in.
        def_stmt.columns = columns
            .iter()
            .map(|c| datafusion::sql::sqlparser::ast::ColumnDef {
                name: datafusion::sql::sqlparser::ast::Ident::with_quote('"', c.name.clone()),
                data_type: datafusion::sql::sqlparser::ast::DataType::Custom(
                    datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                        datafusion::sql::sqlparser::ast::Ident::new(c.sql_type.display_name()),
                    ]),
                    vec![],
                ),
                options: vec![],
            })
            .collect();
        let def = ddl::table_def(&def_stmt, attrs, id, &self.user)?;
        let (schema, name) = (def.schema.clone(), def.name.clone());
        // The table and its rows commit together: run inside a transaction of our own
        // unless the client already has one.
        let own_txn = self.txn.is_none();
        if own_txn {
            self.begin();
        }
        let result: Result<u64> = async {
            self.record(vec![CatalogOp::CreateTable(def)])?;
            let insert = format!("INSERT INTO \"{schema}\".\"{name}\" {query}");
            let stmt = parse_sql(&insert)?
                .into_iter()
                .next()
                .ok_or_else(|| sql_err!(code::INTERNAL, "empty CTAS insert"))?
                .0;
            match self.run_datafusion(stmt, vec![]).await? {
                Outcome::Command(tag) => Ok(tag
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)),
                _ => Ok(0),
            }
        }
        .await;
        if own_txn {
            let txn = self.txn.take().expect("own transaction");
            if let Err(e) = result {
                self.abandon(&txn.ops);
                return Err(e);
            }
            self.commit_ops(txn.ops)?;
        } else {
            result?;
        }
        Ok(Outcome::Command("SELECT".into()))
    }

    fn drop(
        &mut self,
        object_type: ObjectType,
        if_exists: bool,
        names: &[datafusion::sql::sqlparser::ast::ObjectName],
        cascade: bool,
    ) -> Result<Outcome> {
        let view = self.view();
        let mut ops = vec![];
        match object_type {
            ObjectType::Table | ObjectType::View => {
                let is_view = object_type == ObjectType::View;
                let (kind, tag) = if is_view {
                    ("View", "DROP VIEW")
                } else {
                    ("Table", "DROP TABLE")
                };
                let mut ids = vec![];
                for n in names {
                    let (schema, name) = crate::sql::names::split_name(n)?;
                    match view.relation(&schema, &name) {
                        Some(rel @ Relation::Table(_)) if !is_view => ids.push(rel.id()),
                        Some(rel @ Relation::View(_)) if is_view => ids.push(rel.id()),
                        Some(_) => {
                            let (what, other) = if is_view {
                                ("view", "DROP TABLE to remove a table")
                            } else {
                                ("table", "DROP VIEW to remove a view")
                            };
                            return Err(sql_err!(
                                code::WRONG_OBJECT_TYPE,
                                "\"{name}\" is not a {what}{}Use {other}.",
                                code::HINT_SEPARATOR
                            ));
                        }
                        None if if_exists => {}
                        None => {
                            return Err(sql_err!(
                                code::UNDEFINED_TABLE,
                                "{kind} \"{name}\" does not exist"
                            ));
                        }
                    }
                }
                ops.extend(crate::views::drop_ops(&view, &ids, cascade)?);
                self.record(ops)?;
                Ok(Outcome::Command(tag.into()))
            }
            ObjectType::Schema => {
                for n in names {
                    let (_, name) = crate::sql::names::split_name(n)?;
                    if !view.schemas.contains(&name) {
                        if if_exists {
                            continue;
                        }
                        return Err(sql_err!(
                            code::UNDEFINED_SCHEMA,
                            "Schema \"{name}\" does not exist"
                        ));
                    }
                    if cascade {
                        let ids: Vec<u64> = view
                            .tables_in(&name)
                            .map(|t| t.id)
                            .chain(view.views_in(&name).map(|v| v.id))
                            .collect();
                        ops.extend(crate::views::drop_ops(&view, &ids, true)?);
                    }
                    ops.push(CatalogOp::DropSchema(name));
                }
                self.record(ops)?;
                Ok(Outcome::Command("DROP SCHEMA".into()))
            }
            other => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "DROP {other} is not supported yet"
            )),
        }
    }

    /// Make `ops` part of the open transaction, or commit them now (autocommit).
    /// End the open transaction block (if any), returning its changes unless it failed.
    pub(crate) fn take_txn(&mut self) -> Option<Vec<CatalogOp>> {
        let txn = self.txn.take()?;
        (!txn.failed).then_some(txn.ops)
    }

    pub(crate) fn record(&mut self, ops: Vec<CatalogOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        match &mut self.txn {
            Some(txn) => {
                let mut view = (*txn.view).clone();
                if let Err(e) = ops.iter().try_for_each(|op| view.apply(op)) {
                    self.abandon(&ops);
                    return Err(e);
                }
                txn.view = Arc::new(view);
                txn.ops.extend(ops);
                Ok(())
            }
            None => self.commit_ops(ops),
        }
    }

    /// The open transaction block a savepoint command works in.
    fn txn_for_savepoint(&mut self, command: &str) -> Result<&mut Txn> {
        self.txn.as_mut().ok_or_else(|| {
            sql_err!(
                code::NO_ACTIVE_SQL_TRANSACTION,
                "{command} can only be used in transaction blocks"
            )
        })
    }

    /// Files written for changes that will never commit (a rollback, a failed commit or
    /// statement) are deleted once no reader could be looking at them.
    pub(crate) fn abandon(&self, ops: &[CatalogOp]) {
        let files = ops.iter().flat_map(CatalogOp::new_files).collect();
        self.engine.gc.discard(&self.engine.catalog, files);
    }

    pub(crate) fn commit_ops(&self, ops: Vec<CatalogOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let (before, after) = match self.engine.catalog.commit_diff(&ops) {
            Ok(states) => states,
            Err(e) => {
                self.abandon(&ops);
                return Err(e);
            }
        };
        // Files the new version no longer names are deleted once no reader needs them.
        for g in garbage_between(&before, &after) {
            self.engine.gc.retire(after.version, g);
        }
        Ok(())
    }
}

/// Where the newest savepoint called `name` is in the transaction's list.
fn savepoint_position(txn: &Txn, name: &str) -> Result<usize> {
    txn.savepoints
        .iter()
        .rposition(|(n, _, _)| n == name)
        .ok_or_else(|| {
            sql_err!(
                code::INVALID_SAVEPOINT_SPECIFICATION,
                "savepoint \"{name}\" does not exist"
            )
        })
}

/// PostgreSQL's name for each unaliased item of a query's select list: a function call is
/// named after the function (`count`, not DataFusion's `count(*)`), a column after the
/// column, a cast after what it casts, anything else `?column?`. `None` keeps the planned
/// name (aliases, `*`). Returns nothing when the select list has a wildcard, since its
/// items then do not line up with the result columns.
fn pg_column_names(stmt: &Statement) -> Option<Vec<Option<String>>> {
    use datafusion::sql::sqlparser::ast::{Expr, SelectItem, SetExpr};
    let Statement::Query(q) = stmt else {
        return None;
    };
    let mut body = q.body.as_ref();
    let select = loop {
        match body {
            SetExpr::Select(s) => break s,
            SetExpr::Query(q) => body = q.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    };
    fn name_of(e: &Expr) -> String {
        match e {
            Expr::Identifier(id) => crate::sql::names::ident_name(id),
            Expr::CompoundIdentifier(ids) => ids
                .last()
                .map(crate::sql::names::ident_name)
                .unwrap_or_default(),
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(crate::sql::names::ident_name)
                .unwrap_or_else(|| "?column?".into()),
            Expr::Cast { expr, .. } | Expr::Nested(expr) => name_of(expr),
            _ => "?column?".into(),
        }
    }
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(Some(name_of(e))),
            SelectItem::ExprWithAlias { .. } | SelectItem::ExprWithAliases { .. } => Some(None),
            _ => None,
        })
        .collect()
}

/// Plan `stmt`. Redshift lets a select item use the alias of an earlier item of the same
/// select list (`select 'NO' as auto, auto as generated`), as its drivers' metadata
/// queries do. A column of the queried tables keeps precedence over such an alias, so only
/// a name the planner cannot find is replaced by the aliased expression, and planned again.
pub(crate) async fn plan_statement(state: &SessionState, stmt: Statement) -> Result<LogicalPlan> {
    use datafusion::common::SchemaError;
    use datafusion::error::DataFusionError;
    let mut stmt = stmt;
    crate::sql::pivot::rewrite(state, &mut stmt).await?;
    integers_as_booleans(&mut stmt);
    let mut first_error = None;
    // Each round resolves one alias; a select list has only so many.
    for _ in 0..64 {
        let e = match state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt.clone())))
            .await
        {
            Ok(plan) => return Ok(plan),
            Err(e) => e,
        };
        let missing = match e.find_root() {
            DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
                SchemaError::FieldNotFound { field, .. } if field.relation.is_none() => {
                    Some(field.name.clone())
                }
                _ => None,
            },
            _ => None,
        };
        first_error.get_or_insert(e);
        if !missing.is_some_and(|name| inline_lateral_alias(&mut stmt, &name)) {
            break;
        }
    }
    Err(first_error.expect("planned at least once").into())
}

/// Replace, in every select list of `stmt`, the unqualified references to `name` that
/// follow an item aliased `name` by that item's expression, and those in the select's
/// WHERE clause. Whether anything changed.
fn inline_lateral_alias(stmt: &mut Statement, name: &str) -> bool {
    use datafusion::sql::sqlparser::ast::{
        Expr, Query, SelectItem, SetExpr, VisitMut, VisitorMut, visit_expressions_mut,
    };
    use std::ops::ControlFlow;
    fn in_set_expr(body: &mut SetExpr, name: &str, changed: &mut bool) {
        match body {
            SetExpr::Select(select) => {
                let mut aliased: Option<Expr> = None;
                for item in select.projection.iter_mut() {
                    let expr = match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                        _ => continue,
                    };
                    if let Some(aliased) = &aliased {
                        let _ = visit_expressions_mut(expr, |e| {
                            if let Expr::Identifier(id) = e
                                && crate::sql::names::ident_name(id) == name
                            {
                                *e = Expr::Nested(Box::new(aliased.clone()));
                                *changed = true;
                            }
                            ControlFlow::<()>::Continue(())
                        });
                    }
                    if let SelectItem::ExprWithAlias { expr, alias } = item
                        && aliased.is_none()
                        && crate::sql::names::ident_name(alias) == name
                    {
                        aliased = Some(expr.clone());
                    }
                }
                // Redshift also resolves a select-list alias in WHERE (sqlalchemy-redshift's
                // reflection filters on `schema`, an alias of `n.nspname`).
                if let (Some(aliased), Some(selection)) = (&aliased, select.selection.as_mut()) {
                    let _ = visit_expressions_mut(selection, |e| {
                        if let Expr::Identifier(id) = e
                            && crate::sql::names::ident_name(id) == name
                        {
                            *e = Expr::Nested(Box::new(aliased.clone()));
                            *changed = true;
                        }
                        ControlFlow::<()>::Continue(())
                    });
                }
            }
            SetExpr::Query(q) => in_set_expr(q.body.as_mut(), name, changed),
            SetExpr::SetOperation { left, right, .. } => {
                in_set_expr(left.as_mut(), name, changed);
                in_set_expr(right.as_mut(), name, changed);
            }
            _ => {}
        }
    }
    struct Queries<'a>(&'a str, bool);
    impl VisitorMut for Queries<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            in_set_expr(q.body.as_mut(), self.0, &mut self.1);
            ControlFlow::Continue(())
        }
    }
    let mut queries = Queries(name, false);
    let _ = stmt.visit(&mut queries);
    queries.1
}

/// Give repeated unaliased select items (`select x, x …`, `insert … select v, v …`) unique
/// aliases: PostgreSQL allows them, DataFusion's projections need unique names. Result
/// columns keep their PostgreSQL names through [`pg_column_names`], computed beforehand.
/// Integer literals used as operands of AND / OR (`where 1 and …`, as sqlalchemy-redshift
/// writes) are booleans to Redshift: zero is false, anything else true.
fn integers_as_booleans(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value, visit_expressions_mut};
    use std::ops::ControlFlow;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(op, BinaryOperator::And | BinaryOperator::Or)
        {
            for side in [left.as_mut(), right.as_mut()] {
                if let Expr::Value(v) = side
                    && let Value::Number(n, _) = &v.value
                    && let Ok(n) = n.parse::<i64>()
                {
                    *side = Expr::Value(Value::Boolean(n != 0).into());
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

pub(crate) fn alias_repeated_select_items(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};
    fn in_query(q: &mut Query) {
        let mut body = q.body.as_mut();
        loop {
            match body {
                SetExpr::Select(select) => {
                    let mut seen = std::collections::HashSet::new();
                    for (i, item) in select.projection.iter_mut().enumerate() {
                        let SelectItem::UnnamedExpr(e) = item else {
                            continue;
                        };
                        // A cast of a column is named after the column, as in PostgreSQL
                        // (DataFusion gives it the column's own name, which then clashes
                        // with the column when ORDER BY adds it).
                        let column = match e {
                            Expr::Cast { expr, .. } => match expr.as_ref() {
                                Expr::Identifier(id) => Some(id.clone()),
                                Expr::CompoundIdentifier(ids) => ids.last().cloned(),
                                _ => None,
                            },
                            _ => None,
                        };
                        let key = column
                            .as_ref()
                            .map_or_else(|| e.to_string(), |c| c.value.to_lowercase());
                        let alias = if !seen.insert(key) {
                            Ident::new(format!("?column{}?", i + 1))
                        } else if let Some(c) = column {
                            c
                        } else {
                            continue;
                        };
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias,
                        };
                    }
                    return;
                }
                SetExpr::Query(q) => body = q.body.as_mut(),
                SetExpr::SetOperation { left, .. } => body = left.as_mut(),
                _ => return,
            }
        }
    }
    match stmt {
        Statement::Query(q) => in_query(q),
        Statement::Insert(insert) => {
            if let Some(source) = insert.source.as_mut() {
                in_query(source);
            }
        }
        _ => {}
    }
}

/// The result schema of `plan`, with PostgreSQL's column names where [`pg_column_names`]
/// has them.
pub(crate) fn pg_named_schema(plan: &LogicalPlan, stmt: &Statement) -> SchemaRef {
    let arrow = plan.schema().as_arrow().clone();
    let Some(names) = pg_column_names(stmt).filter(|n| n.len() == arrow.fields().len()) else {
        return Arc::new(arrow);
    };
    let fields: Vec<Field> = arrow
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| match n {
            Some(n) => f.as_ref().clone().with_name(n),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, true)]))
}

pub(crate) fn rows_outcome(schema: SchemaRef, batches: Vec<RecordBatch>) -> Outcome {
    let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        schema.clone(),
        futures::stream::iter(batches.into_iter().map(Ok)),
    );
    Outcome::Rows {
        schema,
        stream: Box::pin(stream),
    }
}

/// `ALTER TABLE t RENAME TO [schema.]name` alone: the new name (and schema, if given).
fn renamed_to(
    at: &datafusion::sql::sqlparser::ast::AlterTable,
) -> Option<Result<(Option<String>, String)>> {
    use datafusion::sql::sqlparser::ast::{AlterTableOperation, RenameTableNameKind};
    match at.operations.as_slice() {
        [AlterTableOperation::RenameTable { table_name }] => {
            let (RenameTableNameKind::To(name) | RenameTableNameKind::As(name)) = table_name;
            let qualified = name.0.len() > 1;
            Some(
                crate::sql::names::split_name(name)
                    .map(|(schema, table)| (qualified.then_some(schema), table)),
            )
        }
        _ => None,
    }
}

fn goes_to_datafusion(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. }
    )
}

fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

impl From<LeaderError> for datafusion::error::DataFusionError {
    fn from(e: LeaderError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}
