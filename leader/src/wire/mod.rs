//! The PostgreSQL wire protocol front: startup and authentication ([`auth`]: SCRAM-SHA-256
//! or MD5, passwords stored only as hashes), TLS, the server parameters Redshift reports,
//! simple and extended query protocol ([`params`] decodes bound values), COPY FROM STDIN
//! data, and the streaming of result rows to the client. It talks to one [`Session`] per
//! connection and imports no command.

use std::collections::HashMap;
use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use futures::{FutureExt, Sink, SinkExt, StreamExt};
use pgwire::api::auth::md5pass::Md5PasswordAuthStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::{ServerParameterProvider, StartupHandler};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo,
    QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, DEFAULT_NAME, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::config::LeaderConfig;
use crate::error::{LeaderError, Result, code, panicked};
use crate::plan::engine::Engine;
use crate::session::{Outcome, Prepared, Session};
use crate::sql::types::{encode_batch, field_infos, pg_type_of};
use crate::sql_err;
use crate::system::querylog::QueryGuard;

mod auth;
mod live;
mod params;

use auth::{AuthDb, bootstrap_admin};
use params::bind_params;

/// The ParameterStatus set Redshift drivers expect.
struct RedshiftParameters {
    engine: Arc<Engine>,
}

impl ServerParameterProvider for RedshiftParameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let superuser = self
            .engine
            .catalog
            .snapshot()
            .users
            .get(&user)
            .is_some_and(|u| u.superuser);
        let app = client
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        Some(
            [
                ("server_version", "8.0.2".to_string()),
                ("server_encoding", "UNICODE".into()),
                ("client_encoding", "UTF8".into()),
                ("DateStyle", "ISO, MDY".into()),
                ("integer_datetimes", "on".into()),
                // Redshift's string literals treat a backslash as an escape (the dialect's
                // `supports_string_literal_backslash_escape`), so this is off, and drivers
                // that put values into the SQL text double their backslashes.
                ("standard_conforming_strings", "off".into()),
                ("TimeZone", "UTC".into()),
                ("IntervalStyle", "postgres".into()),
                ("application_name", app),
                ("is_superuser", if superuser { "on" } else { "off" }.into()),
                ("session_authorization", user),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        )
    }
}

enum Startup {
    Scram(SASLAuthStartupHandler<RedshiftParameters>),
    Md5(Md5PasswordAuthStartupHandler<AuthDb, RedshiftParameters>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Scram(h) => h.on_startup(client, message).await,
            Startup::Md5(h) => h.on_startup(client, message).await,
        }
    }
}

/// A statement running on a connection; its end starts the connection's idle time.
struct Busy(Arc<live::Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A parsed statement with what Describe needs.
#[derive(Debug, Clone)]
pub struct StatementInfo {
    prepared: Prepared,
    param_types: Vec<Option<DataType>>,
    result: Option<SchemaRef>,
}

/// One client connection: its session and its protocol handlers.
pub struct Connection {
    engine: Arc<Engine>,
    session: Arc<Mutex<Option<Session>>>,
    startup: Arc<live::GatedStartup<Startup>>,
    activity: Arc<live::Activity>,
    cancel: Arc<DefaultCancelHandler>,
    parser: Arc<BasaltParser>,
}

pub struct BasaltParser {
    engine: Arc<Engine>,
    session: Arc<Mutex<Option<Session>>>,
}

async fn session_for<'a, C: ClientInfo>(
    engine: &Arc<Engine>,
    slot: &'a Mutex<Option<Session>>,
    client: &C,
) -> tokio::sync::MutexGuard<'a, Option<Session>> {
    let mut guard = slot.lock().await;
    if guard.is_none() {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        *guard = Some(Session::new(engine.clone(), user));
    }
    guard
}

#[async_trait]
impl QueryParser for BasaltParser {
    type Statement = StatementInfo;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<StatementInfo>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut guard = session_for(&self.engine, &self.session, client).await;
        let session = guard.as_mut().expect("session created above");
        let described = guarded(Self::parse_one(session, sql)).await;
        if described.is_err() {
            session.fail_transaction();
        }
        Ok(described?)
    }

    fn get_parameter_types(&self, stmt: &StatementInfo) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_types
            .iter()
            .map(|t| t.as_ref().map_or(Type::TEXT, pg_type_of))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &StatementInfo,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &stmt.result {
            Some(schema) => field_infos(schema, |i| {
                format.map_or(FieldFormat::Text, |f| f.format_for(i))
            }),
            None => vec![],
        })
    }
}

impl BasaltParser {
    async fn parse_one(session: &Session, sql: &str) -> Result<Option<StatementInfo>> {
        let mut statements = session.parse(sql)?;
        if statements.len() > 1 {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement"
            ));
        }
        let Some(prepared) = statements.pop() else {
            return Ok(None);
        };
        let (param_types, result) = session.describe(&prepared).await?;
        Ok(Some(StatementInfo {
            prepared,
            param_types,
            result,
        }))
    }
}

/// Turn one statement's outcome into a wire response. Waits for the first batch of a
/// result: that is where aggregations and sorts do their work, so the wait stays
/// cancellable (CancelRequest aborts this future) and a failure becomes a plain error
/// response instead of an error after the row description.
///
/// `queries` are the statement's entries in the query log: finished when the last row
/// has been sent (aborted on an error, or when the client goes away first).
async fn respond(
    outcome: Outcome,
    format: &Format,
    queries: Option<QueryGuard>,
) -> Result<Response> {
    let mut queries = queries;
    Ok(match outcome {
        Outcome::Rows { schema, stream } => {
            let mut stream = unwinding_to_errors(stream);
            let first = stream.next().await.transpose()?;
            let stream = futures::stream::iter(first.map(Ok)).chain(stream);
            let stream = track_queries(stream, queries.take());
            let fields = Arc::new(field_infos(&schema, |i| format.format_for(i)));
            let rows = {
                let fields = fields.clone();
                stream.flat_map(move |batch| {
                    let rows: Vec<PgWireResult<_>> = match batch {
                        Ok(b) => match encode_batch(&b, &fields) {
                            Ok(rows) => rows.into_iter().map(Ok).collect(),
                            Err(e) => vec![Err(e)],
                        },
                        Err(e) => vec![Err(LeaderError::from(e).to_pg())],
                    };
                    futures::stream::iter(rows)
                })
            };
            Response::Query(QueryResponse::new(fields, rows))
        }
        Outcome::Command(tag) => {
            let mut parts = tag.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("INSERT"), Some(oid), Some(n)) => Response::Execution(
                    Tag::new("INSERT")
                        .with_oid(oid.parse().unwrap_or(0))
                        .with_rows(n.parse().unwrap_or(0)),
                ),
                _ => Response::Execution(Tag::new(&tag)),
            }
        }
        Outcome::CopyIn { columns } => Response::CopyIn(CopyResponse::new(
            0,
            columns,
            futures::stream::empty::<PgWireResult<CopyData>>(),
        )),
        Outcome::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Outcome::End(t) => Response::TransactionEnd(Tag::new(t)),
        Outcome::Empty => Response::EmptyQuery,
    })
    .inspect(|_| {
        if let Some(q) = queries.as_mut() {
            q.succeeded();
        }
    })
}

/// Run one step of a statement (parse, describe, execute, first batch): a panic in it
/// becomes the statement's `XX000` error instead of ending the connection, and the caller
/// fails the transaction as for any error.
async fn guarded<T>(step: impl Future<Output = Result<T>>) -> Result<T> {
    AssertUnwindSafe(step)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(panicked(p.as_ref())))
}

/// A result stream whose panics (while a batch is computed) end it with an `XX000` error.
fn unwinding_to_errors(
    stream: datafusion::physical_plan::SendableRecordBatchStream,
) -> impl futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send + Unpin + 'static {
    basalt_worker::node::unwind::ending_on_panic(stream, |p| {
        datafusion::error::DataFusionError::External(Box::new(panicked(p)))
    })
}

/// `stream` that finishes `queries` in the query log when it ends: successfully once the
/// last batch is through, as aborted after an error or when dropped early.
fn track_queries(
    stream: impl futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send + 'static,
    queries: Option<QueryGuard>,
) -> impl futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send + 'static {
    let guard = Arc::new(std::sync::Mutex::new(queries));
    let on_item = guard.clone();
    stream
        .inspect(move |item| {
            if item.is_err()
                && let Some(q) = on_item.lock().expect("query guard lock").as_mut()
            {
                q.failed();
            }
        })
        .chain(
            futures::stream::once(async move {
                if let Some(q) = guard.lock().expect("query guard lock").as_mut() {
                    q.succeeded();
                }
            })
            .filter_map(|()| futures::future::ready(None)),
        )
}

/// A statement's text for the query log.
fn statement_text(p: &Prepared) -> String {
    p.stmt.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Send INFO notices (NoticeResponse, SQLSTATE 00000) ahead of the statement's result.
async fn send_notices<C>(client: &mut C, notices: Vec<String>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for n in notices {
        let info = ErrorInfo::new("INFO".into(), "00000".into(), n);
        client
            .send(PgWireBackendMessage::NoticeResponse(info.into()))
            .await?;
    }
    Ok(())
}

fn error_response(e: &LeaderError) -> Response {
    Response::Error(Box::new(e.error_info()))
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = self.busy();
        let mut guard = session_for(&self.engine, &self.session, client).await;
        let session = guard.as_mut().expect("session created above");
        let parsed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.parse(query)));
        let statements = match parsed.unwrap_or_else(|p| Err(panicked(p.as_ref()))) {
            Ok(s) => s,
            Err(e) => {
                session.fail_transaction();
                return Ok(vec![error_response(&e)]);
            }
        };
        let mut responses = Vec::with_capacity(statements.len());
        for p in statements {
            if let Some(datafusion::sql::sqlparser::ast::Statement::Deallocate { name, .. }) =
                &p.stmt
                && !name.value.eq_ignore_ascii_case("all")
            {
                client.portal_store().rm_statement(&name.value);
            }
            session.begin_statement(statement_text(&p));
            let result = match guarded(session.execute(&p, vec![])).await {
                Ok(outcome) => {
                    let queries = session.take_query_guard();
                    guarded(respond(outcome, &Format::UnifiedText, queries)).await
                }
                Err(e) => Err(e),
            };
            // A failed statement's queries are finished (aborted) here.
            drop(session.take_query_guard());
            send_notices(client, session.take_notices()).await?;
            match result {
                Ok(response) => responses.push(response),
                Err(e) => {
                    session.fail_transaction();
                    responses.push(error_response(&e));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = StatementInfo;
    type QueryParser = BasaltParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<StatementInfo>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = StatementInfo>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let info = &target.statement;
        let params = (0..info.param_types.len().max(target.parameter_types.len()))
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .or_else(|| {
                        info.param_types
                            .get(i)
                            .cloned()
                            .flatten()
                            .map(|t| pg_type_of(&t))
                    })
                    .unwrap_or(Type::TEXT)
            })
            .collect();
        let fields = self.parser.get_result_schema(info, None)?;
        Ok(DescribeStatementResponse::new(params, fields))
    }

    /// PostgreSQL answers Describe of a statement that returns no rows (an INSERT with
    /// parameters) with ParameterDescription and NoData; pgwire's default sends an empty
    /// RowDescription instead, which pgjdbc takes for a result set ("A result was returned
    /// when none was expected").
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = StatementInfo>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let described = self.do_describe_statement(client, &stmt).await?;
                if described.fields.is_empty() {
                    let oids = described.parameters.iter().map(|t| t.oid()).collect();
                    client
                        .send(PgWireBackendMessage::ParameterDescription(
                            ParameterDescription::new(oids),
                        ))
                        .await?;
                    client
                        .send(PgWireBackendMessage::NoData(NoData::new()))
                        .await?;
                } else {
                    send_describe_response(client, &described).await?;
                }
                return Ok(());
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        target: &Portal<StatementInfo>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = StatementInfo>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.parser.get_result_schema(
            &target.statement.statement,
            Some(&target.result_column_format),
        )?;
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<StatementInfo>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = StatementInfo>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = self.busy();
        let mut guard = session_for(&self.engine, &self.session, client).await;
        let session = guard.as_mut().expect("session created above");
        let params = match bind_params(portal) {
            Ok(p) => p,
            Err(e) => return Ok(error_response(&e)),
        };
        let info = &portal.statement.statement;
        session.begin_statement(statement_text(&info.prepared));
        let result = guarded(session.execute(&info.prepared, params)).await;
        let queries = session.take_query_guard();
        send_notices(client, session.take_notices()).await?;
        let result = match result {
            Ok(outcome) => guarded(respond(outcome, &portal.result_column_format, queries)).await,
            Err(e) => Err(e),
        };
        Ok(result.unwrap_or_else(|e| {
            session.fail_transaction();
            error_response(&e)
        }))
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(self.clone_handle())
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(self.clone_handle())
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::new(self.clone_handle())
    }
}

/// The COPY sub-protocol of `COPY … FROM STDIN` (psql `\copy`, psycopg `cursor.copy()`):
/// data is staged as it arrives and loaded at CopyDone.
#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = session_for(&self.engine, &self.session, client).await;
        let session = guard.as_mut().expect("session created above");
        if let Err(e) = session.copy_data(&copy_data.data).await {
            session.copy_fail();
            session.fail_transaction();
            return Err(e.to_pg());
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = {
            let mut guard = session_for(&self.engine, &self.session, client).await;
            let session = guard.as_mut().expect("session created above");
            let result = session.copy_done().await;
            if result.is_err() {
                session.fail_transaction();
            }
            // The load's query ends in the query log as the COPY does.
            if let Some(mut queries) = session.take_query_guard() {
                if result.is_ok() {
                    queries.succeeded();
                } else {
                    queries.failed();
                }
            }
            send_notices(client, session.take_notices()).await?;
            result
        };
        match result {
            Ok(tag) => {
                client
                    .send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).into()))
                    .await?;
                Ok(())
            }
            Err(e) => Err(e.to_pg()),
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = session_for(&self.engine, &self.session, client).await;
        if let Some(session) = guard.as_mut() {
            session.copy_fail();
            session.fail_transaction();
        }
        sql_err!(
            code::QUERY_CANCELED,
            "COPY from stdin failed: {}",
            fail.message
        )
        .to_pg()
    }
}

impl Connection {
    fn new(
        engine: Arc<Engine>,
        startup: Arc<live::GatedStartup<Startup>>,
        cancel: Arc<DefaultCancelHandler>,
    ) -> Self {
        let session = Arc::new(Mutex::new(None));
        Self {
            cancel,
            activity: startup.activity.clone(),
            parser: Arc::new(BasaltParser {
                engine: engine.clone(),
                session: session.clone(),
            }),
            engine,
            session,
            startup,
        }
    }

    /// Marks the connection busy (not idle, for SESSION TIMEOUT) until dropped.
    fn busy(&self) -> Busy {
        self.activity.begin();
        Busy(self.activity.clone())
    }

    fn clone_handle(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            session: self.session.clone(),
            startup: self.startup.clone(),
            activity: self.activity.clone(),
            cancel: self.cancel.clone(),
            parser: self.parser.clone(),
        }
    }
}

fn tls_acceptor(cfg: &LeaderConfig) -> Result<Option<pgwire::tokio::TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    use std::io::BufReader;
    let certs = rustls_pemfile::certs(&mut BufReader::new(std::fs::File::open(cert)?))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(std::fs::File::open(key)?))?
        .ok_or_else(|| LeaderError::Catalog(format!("no private key in {key}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LeaderError::Catalog(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| LeaderError::Catalog(format!("tls: {e}")))?;
    Ok(Some(pgwire::tokio::TlsAcceptor::from(Arc::new(config))))
}

/// Accept PostgreSQL connections on `listener` forever.
pub async fn serve_pg(engine: Arc<Engine>, listener: TcpListener) -> Result<()> {
    bootstrap_admin(&engine)?;
    let tls = tls_acceptor(&engine.config)?;
    let params = Arc::new(RedshiftParameters {
        engine: engine.clone(),
    });
    let auth = Arc::new(AuthDb {
        engine: engine.clone(),
    });
    // Tracks backend keys so that a CancelRequest reaches the right session.
    let connections = Arc::new(ConnectionManager::new());
    let live = Arc::new(live::LiveConnections::default());
    let cancel = Arc::new(DefaultCancelHandler::new(connections.clone()));
    let startup = Arc::new(
        match engine.config.auth_method.to_ascii_lowercase().as_str() {
            "md5" => Startup::Md5(
                Md5PasswordAuthStartupHandler::new(auth, params)
                    .with_connection_manager(connections),
            ),
            "scram-sha-256" | "scram" => {
                let mut scram = ScramAuth::new(auth);
                scram.set_iterations(crate::catalog::users::SCRAM_ITERATIONS);
                Startup::Scram(
                    SASLAuthStartupHandler::new(params)
                        .with_scram(scram)
                        .with_connection_manager(connections),
                )
            }
            other => {
                return Err(sql_err!(
                    code::INVALID_PARAMETER_VALUE,
                    "unknown auth_method '{other}' (use scram-sha-256 or md5)"
                ));
            }
        },
    );
    info!(addr = %listener.local_addr()?, tls = tls.is_some(), "accepting PostgreSQL connections");
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        // A second handle on the socket, so that SESSION TIMEOUT can close it.
        let (socket, handle) = match socket
            .into_std()
            .and_then(|s| Ok((s.try_clone()?, s)))
            .and_then(|(s, handle)| Ok((tokio::net::TcpStream::from_std(s)?, handle)))
        {
            Ok(pair) => pair,
            Err(e) => {
                warn!(%peer, "cannot set up the connection: {e}");
                continue;
            }
        };
        let gated = Arc::new(live::GatedStartup {
            inner: startup.clone(),
            engine: engine.clone(),
            live: live.clone(),
            activity: Arc::default(),
            socket: Arc::new(handle),
        });
        let activity = gated.activity.clone();
        let conn = Arc::new(Connection::new(engine.clone(), gated, cancel.clone()));
        let tls = tls.clone();
        let live = live.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, conn).await {
                warn!(%peer, "connection ended with error: {e}");
            }
            live.leave(peer);
            activity.close();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::params::numeric_from_binary;

    #[tokio::test]
    async fn a_panicking_step_becomes_the_statements_internal_error() {
        let err = super::guarded(async {
            if std::hint::black_box(true) {
                panic!("index out of bounds: the len is 0");
            }
            Ok(1)
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.sqlstate(),
            (
                "XX000",
                "internal error: index out of bounds: the len is 0".into()
            )
        );
        assert_eq!(super::guarded(async { Ok(7) }).await.unwrap(), 7);
    }

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b
    }

    #[test]
    fn zones_that_postgresql_ignores_are_dropped() {
        use super::params::without_ignored_zone;
        use datafusion::arrow::datatypes::{DataType, TimeUnit};
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let tz = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let cases = [
            ("2024-02-29 +00", DataType::Date32, "2024-02-29"),
            ("2024-02-29", DataType::Date32, "2024-02-29"),
            (
                "2024-02-29 13:45:30.5+01",
                ts.clone(),
                "2024-02-29 13:45:30.5",
            ),
            (
                "2024-02-29 13:45:30 -05:30",
                ts.clone(),
                "2024-02-29 13:45:30",
            ),
            ("2024-02-29T13:45:30Z", ts.clone(), "2024-02-29T13:45:30"),
            ("2024-02-29 13:45:30", ts, "2024-02-29 13:45:30"),
            ("2024-02-29 13:45:30+01", tz, "2024-02-29 13:45:30+01"),
        ];
        for (text, dtype, expect) in cases {
            assert_eq!(
                without_ignored_zone(text.into(), Some(&dtype)),
                expect,
                "{text}"
            );
        }
    }

    #[test]
    fn binary_numeric_parameters_decode_exactly() {
        // 123456789.125 = 1|2345|6789 . 1250
        let v = numeric(4, 2, 0, 3, &[1, 2345, 6789, 1250]);
        assert_eq!(numeric_from_binary(&v).as_deref(), Some("123456789.125"));
        // -0.001: one group 10 at weight -1 (0.0010)
        let v = numeric(1, -1, 0x4000, 3, &[10]);
        assert_eq!(numeric_from_binary(&v).as_deref(), Some("-0.001"));
        // 0.00000005: weight -2 skips a zero group
        let v = numeric(1, -2, 0, 8, &[5]);
        assert_eq!(numeric_from_binary(&v).as_deref(), Some("0.00000005"));
        // 20000 with trailing zero groups left out
        let v = numeric(1, 1, 0, 0, &[2]);
        assert_eq!(numeric_from_binary(&v).as_deref(), Some("20000"));
        assert_eq!(
            numeric_from_binary(&numeric(0, 0, 0, 2, &[])).as_deref(),
            Some("0.00")
        );
        assert_eq!(numeric_from_binary(&[0, 1]), None);
        assert_eq!(numeric_from_binary(&numeric(1, 0, 0, 0, &[10000])), None);
    }
}
