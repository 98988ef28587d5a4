//! The connections that are logged in. A login is admitted as its password is accepted
//! (the moment the server would send AuthenticationOk) unless its user already has
//! `CONNECTION LIMIT` connections, which fails it with PostgreSQL's 53300 before the
//! client sees a ready connection — and only after the password was checked, so the
//! refusal tells an outsider nothing. A user with `SESSION TIMEOUT n` has each of its
//! connections closed once it has waited n seconds for the client's next statement.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion};

use crate::plan::engine::Engine;

/// Every logged-in connection's user, by the client's address (unique per connection).
#[derive(Debug, Default)]
pub struct LiveConnections {
    users: Mutex<HashMap<SocketAddr, String>>,
}

impl LiveConnections {
    /// Record `user`'s login from `peer`, unless the user already has `limit`
    /// connections (checked and recorded under one lock, so racing logins cannot both
    /// take the last place).
    fn admit(&self, peer: SocketAddr, user: &str, limit: Option<u32>) -> bool {
        let mut users = self.users.lock().expect("live connections lock");
        let open = users.values().filter(|u| *u == user).count();
        if limit.is_some_and(|l| open >= l as usize) {
            return false;
        }
        users.insert(peer, user.to_string());
        true
    }

    /// The connection from `peer` has ended.
    pub fn leave(&self, peer: SocketAddr) {
        self.users
            .lock()
            .expect("live connections lock")
            .remove(&peer);
    }
}

/// What one connection is doing, for SESSION TIMEOUT: when its last statement ended and
/// how many are running.
#[derive(Debug)]
pub struct Activity {
    last_end_us: AtomicI64,
    running: AtomicU32,
    closed: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            last_end_us: AtomicI64::new(crate::now_us()),
            running: AtomicU32::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

impl Activity {
    pub fn begin(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    pub fn end(&self) {
        self.last_end_us.store(crate::now_us(), Ordering::SeqCst);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// The connection has ended: its watchdog stops.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// How long the connection has waited for its client (None while a statement runs).
    fn idle_for(&self) -> Option<Duration> {
        if self.running.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = crate::now_us() - self.last_end_us.load(Ordering::SeqCst);
        Some(Duration::from_micros(since.max(0) as u64))
    }
}

/// One connection's startup: the shared authentication handler, with the admission
/// check at the moment it accepts the password.
pub struct GatedStartup<S> {
    pub inner: Arc<S>,
    pub engine: Arc<Engine>,
    pub live: Arc<LiveConnections>,
    pub activity: Arc<Activity>,
    /// A handle on the connection's socket, to close it when its session times out.
    pub socket: Arc<std::net::TcpStream>,
}

#[async_trait]
impl<S: StartupHandler> StartupHandler for GatedStartup<S> {
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
        let mut gate = Gate {
            client,
            refused: None,
            startup: self,
        };
        self.inner.on_startup(&mut gate, message).await?;
        match gate.refused {
            Some(user) => Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "53300".into(),
                format!("too many connections for role \"{user}\""),
            )))),
            None => Ok(()),
        }
    }
}

impl<S> GatedStartup<S> {
    /// Admit the connection's user, and watch its idle time if the user has a SESSION
    /// TIMEOUT. False when the user's CONNECTION LIMIT is reached.
    fn admit(&self, peer: SocketAddr, user: &str) -> bool {
        let def = self.engine.catalog.snapshot().users.get(user).cloned();
        let limit = def.as_ref().and_then(|u| u.connection_limit);
        if !self.live.admit(peer, user, limit) {
            return false;
        }
        if let Some(secs) = def.and_then(|u| u.session_timeout) {
            let activity = self.activity.clone();
            let socket = self.socket.clone();
            let timeout = Duration::from_secs(u64::from(secs));
            tokio::spawn(async move {
                let tick = Duration::from_secs(1).min(timeout);
                while !activity.closed.load(Ordering::SeqCst) {
                    tokio::time::sleep(tick).await;
                    if activity.idle_for().is_some_and(|idle| idle >= timeout) {
                        tracing::info!(%peer, "closing a connection idle past its SESSION TIMEOUT");
                        let _ = socket.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
        }
        true
    }
}

/// The client as the authentication handler sees it: every message passes through,
/// except that AuthenticationOk first admits the login, and a refused login sends
/// nothing more (the error follows).
struct Gate<'a, C, S> {
    client: &'a mut C,
    refused: Option<String>,
    startup: &'a GatedStartup<S>,
}

impl<C: Sink<PgWireBackendMessage> + Unpin, S> Sink<PgWireBackendMessage> for Gate<'_, C, S>
where
    C: ClientInfo,
{
    type Error = C::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.client).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), C::Error> {
        if self.refused.is_some() {
            return Ok(());
        }
        if matches!(item, PgWireBackendMessage::Authentication(ref a)
            if matches!(a, pgwire::messages::startup::Authentication::Ok))
        {
            let user = self
                .client
                .metadata()
                .get("user")
                .cloned()
                .unwrap_or_default();
            let peer = self.client.socket_addr();
            if !self.startup.admit(peer, &user) {
                self.refused = Some(user);
                return Ok(());
            }
        }
        Pin::new(&mut *self.client).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.client).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.client).poll_close(cx)
    }
}

impl<C: ClientInfo, S> ClientInfo for Gate<'_, C, S> {
    fn socket_addr(&self) -> SocketAddr {
        self.client.socket_addr()
    }

    fn is_secure(&self) -> bool {
        self.client.is_secure()
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.client.protocol_version()
    }

    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.client.set_protocol_version(version)
    }

    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.client.pid_and_secret_key()
    }

    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.client.set_pid_and_secret_key(pid, secret_key)
    }

    fn state(&self) -> PgWireConnectionState {
        self.client.state()
    }

    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.client.set_state(new_state)
    }

    fn transaction_status(&self) -> TransactionStatus {
        self.client.transaction_status()
    }

    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.client.set_transaction_status(new_status)
    }

    fn metadata(&self) -> &HashMap<String, String> {
        self.client.metadata()
    }

    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.client.metadata_mut()
    }

    fn session_extensions(&self) -> &pgwire::api::SessionExtensions {
        self.client.session_extensions()
    }

    fn sni_server_name(&self) -> Option<&str> {
        self.client.sni_server_name()
    }

    fn client_certificates<'a>(&self) -> Option<&[rustls::pki_types::CertificateDer<'a>]> {
        self.client.client_certificates()
    }
}
