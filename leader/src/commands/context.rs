//! The statement context: what every command runs against — the engine (catalog,
//! cluster, system tables), the session's user and settings, its open transaction
//! (snapshot, recorded catalog changes, savepoints), the query numbers the query log and
//! the `pg_last_*` functions report, and the notices for the client. Commands are methods
//! of [`StatementContext`] and return an [`Outcome`]; neither knows the session that
//! dispatches to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::context::SessionState;
use datafusion::physical_plan::SendableRecordBatchStream;

use crate::catalog::gc::{Pin, garbage_between};
use crate::catalog::{CatalogOp, CatalogState};
use crate::error::{Result, code};
use crate::plan::engine::{Engine, StatementCtx};
use crate::plan::table::{ReadLog, WriteLog};
use crate::sql_err;

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

pub struct Txn {
    pub(crate) view: Arc<CatalogState>,
    pub(crate) ops: Vec<CatalogOp>,
    pub(crate) failed: bool,
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    /// Open savepoints, oldest first: a name, how many of `ops` came before it, and the
    /// view as it was, which `ROLLBACK TO` restores.
    pub(crate) savepoints: Vec<(String, usize, Arc<CatalogState>)>,
    /// Keeps the files of the snapshot taken at BEGIN readable until the end.
    _pin: Pin,
}

/// One session's state as its commands see it.
pub struct StatementContext {
    pub(crate) engine: Arc<Engine>,
    /// The current user, whose privileges every check uses: the session user, or the
    /// role `SET ROLE` chose.
    pub user: String,
    /// The session user (`session_user`): who logged in, or whom `SET SESSION
    /// AUTHORIZATION` chose; `RESET ROLE` goes back to it.
    pub(crate) session_user: String,
    /// Who logged in: `SET SESSION AUTHORIZATION` needs them to be a superuser, and
    /// DEFAULT goes back to them.
    pub(crate) login_user: String,
    pub(crate) txn: Option<Txn>,
    pub(crate) settings: BTreeMap<String, String>,
    /// The user's own defaults (`ALTER USER … SET`), as they were at login; RESET goes
    /// back to these.
    user_defaults: BTreeMap<String, String>,
    /// Number of the last statement this session ran.
    pub(crate) last_query: u64,
    /// Query number and rows of the last successful COPY (`pg_last_copy_id/count()`).
    pub(crate) last_copy: Option<(u64, u64)>,
    /// Query number and rows of the last successful UNLOAD (`pg_last_unload_id/count()`).
    pub(crate) last_unload: Option<(u64, u64)>,
    /// INFO messages for the client from the statement that just ran.
    pub(crate) notices: Vec<String>,
    /// What `pg_backend_pid()` answers.
    pid: i32,
    /// The statement being run, as the query log records it.
    statement_text: String,
    /// Query numbers the statement being run has used, until its result is sent.
    open_queries: Vec<u64>,
}

/// Whether `name` is a setting sessions have (SET of anything else fails).
pub(crate) fn is_setting(name: &str) -> bool {
    default_setting(name).is_some()
}

fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "search_path" => "$user, public",
        "timezone" => "UTC",
        "datestyle" => "ISO, MDY",
        "client_encoding" => "UTF8",
        "server_encoding" => "UNICODE",
        "server_version" => "8.0.2",
        "standard_conforming_strings" => "off",
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

impl Drop for StatementContext {
    /// A connection closed inside a transaction block rolls it back.
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            self.abandon(&txn.ops);
        }
    }
}

impl StatementContext {
    pub fn new(engine: Arc<Engine>, user: String) -> Self {
        let user_defaults = engine
            .catalog
            .snapshot()
            .users
            .get(&user)
            .map(|u| u.settings.clone())
            .unwrap_or_default();
        Self {
            engine,
            login_user: user.clone(),
            session_user: user.clone(),
            user,
            txn: None,
            settings: BTreeMap::new(),
            user_defaults,
            last_query: 0,
            last_copy: None,
            last_unload: None,
            notices: vec![],
            pid: crate::system::pg_catalog::next_backend_pid(),
            statement_text: String::new(),
            open_queries: vec![],
        }
    }

    /// A setting's value in this session: what SET gave it, else the default.
    pub(crate) fn setting(&self, name: &str) -> Option<String> {
        self.settings
            .get(name)
            .or_else(|| self.user_defaults.get(name))
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
    pub fn take_query_guard(&mut self) -> Option<crate::system::querylog::QueryGuard> {
        if self.open_queries.is_empty() {
            return None;
        }
        let queries = std::mem::take(&mut self.open_queries);
        Some(crate::system::querylog::QueryGuard::new(
            self.engine.system.queries.clone(),
            queries,
        ))
    }

    /// The session as the catalog functions see it.
    pub(crate) fn session_info(&self) -> Option<crate::system::pg_catalog::SessionInfo> {
        Some(crate::system::pg_catalog::SessionInfo {
            user: self.user.clone(),
            session_user: self.session_user.clone(),
            search_path: self.setting("search_path").unwrap_or_default(),
            pid: self.pid,
        })
    }

    /// Open a transaction block on the newest catalog version.
    pub(crate) fn begin(&mut self) {
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
    /// statement's query number and the log of the relations its planning resolves,
    /// which the command checks privileges on ([`Self::check_reads`]) before it runs.
    pub(crate) fn statement_state(
        &mut self,
        view: Arc<CatalogState>,
        writes: Arc<WriteLog>,
        row_ids_for: Option<u64>,
    ) -> Result<(SessionState, u64, Arc<ReadLog>)> {
        let last_query = self.last_query;
        let query = self.start_query();
        let reads = Arc::new(ReadLog::default());
        let stmt = StatementCtx {
            reads: reads.clone(),
            query,
            row_ids_for,
            last_query,
            ..self.facts()
        };
        let state = self.engine.session_state(view, writes, stmt)?;
        Ok((state, query, reads))
    }

    /// A new query number for the statement being run, recorded in the query log under
    /// the session's user (so `stl_query` and the user's view of the load and scan logs
    /// find it) until the statement's result has been sent.
    pub(crate) fn start_query(&mut self) -> u64 {
        let query = self.engine.next_query();
        self.last_query = query;
        self.engine
            .system
            .queries
            .start(crate::system::querylog::QueryRecord {
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
        query
    }

    /// A DataFusion session to describe a statement in: it takes no query number and
    /// logs nothing.
    pub(crate) fn describe_state(&self) -> Result<SessionState> {
        self.engine
            .session_state(self.view(), Arc::new(WriteLog::default()), self.facts())
    }

    /// What a statement's DataFusion session knows of this session: its user and
    /// settings, the last query, COPY and UNLOAD, and when the transaction began.
    fn facts(&self) -> StatementCtx {
        StatementCtx {
            last_query: self.last_query,
            last_copy: self.last_copy,
            last_unload: self.last_unload,
            transaction_start: self.txn.as_ref().map(|t| t.started),
            session: self.session_info(),
            ..Default::default()
        }
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
        crate::catalog::privileges::is_superuser(&self.view(), &self.user)
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
    pub(crate) fn txn_for_savepoint(&mut self, command: &str) -> Result<&mut Txn> {
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

pub(crate) fn show_schema(name: &str) -> SchemaRef {
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
