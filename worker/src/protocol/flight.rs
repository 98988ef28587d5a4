//! How nodes reach each other's Arrow Flight endpoints: the message size both sides
//! accept, the HTTP/2 settings of every peer connection, and the `DoAction` round trip.
//! The leader and the workers use these same functions, so both ends always agree.

use std::time::Duration;

use arrow_flight::{Action, FlightClient};
use futures::TryStreamExt;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Endpoint;

use crate::error::{Result, WorkerError};

/// Largest gRPC message either side accepts (a batch of wide rows can be large).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Accepted connections with Nagle's algorithm off. (Tonic's `tcp_nodelay` applies only
/// to listeners it binds itself; without it small responses wait out delayed ACKs, ~40 ms.)
pub fn nodelay_incoming(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// How every Basalt node reaches another's Flight endpoint: fail fast if nobody answers,
/// notice a dead peer within seconds (a peer that stops answering pings for 10 s; a
/// busy peer on a loaded machine can take several seconds to answer one, and a killed
/// one closes its sockets at once), and flow control per stream only. Many result
/// streams share one HTTP/2 connection, and a stream whose reader is busy elsewhere (a
/// hash join's probe side while it builds, a repartition's gated input) must not use up
/// a connection-wide window the other streams need — with exchanges between workers that
/// would be a deadlock. Each stream still buffers at most its own window.
pub fn peer_endpoint(addr: &str) -> std::result::Result<Endpoint, String> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(10))
        .initial_stream_window_size(2 << 20)
        .initial_connection_window_size(i32::MAX as u32))
}

/// A Flight client on `channel` that takes messages up to [`MAX_MESSAGE_BYTES`] either
/// way, as the servers do (tonic's default of 4 MB is too small for a batch of wide rows
/// or a load's reply listing many rejected rows).
pub fn flight_service_client(
    channel: tonic::transport::Channel,
) -> arrow_flight::flight_service_client::FlightServiceClient<tonic::transport::Channel> {
    arrow_flight::flight_service_client::FlightServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Open a Flight client to `addr` (`host:port`), failing fast if nobody answers.
pub async fn connect(addr: &str) -> Result<FlightClient> {
    let channel = peer_endpoint(addr)
        .map_err(WorkerError::Rpc)?
        .connect()
        .await
        .map_err(|e| WorkerError::Rpc(format!("cannot connect to {addr}: {e}")))?;
    Ok(FlightClient::new_from_inner(flight_service_client(channel)))
}

/// Send one `DoAction` and return the first result body.
pub async fn call_action(client: &mut FlightClient, kind: &str, body: Vec<u8>) -> Result<Vec<u8>> {
    let mut results = client
        .do_action(Action::new(kind, body))
        .await
        .map_err(|e| WorkerError::Rpc(e.to_string()))?;
    let first = results
        .try_next()
        .await
        .map_err(|e| WorkerError::Rpc(e.to_string()))?
        .ok_or_else(|| WorkerError::Rpc(format!("{kind}: empty reply")))?;
    Ok(first.to_vec())
}
