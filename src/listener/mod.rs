//! Listeners: where connections enter. Each accept loop (cleartext in [`plain`], HTTPS in
//! [`https`]) takes a bound socket, hands every connection to a worker thread, serves it with the
//! one HTTP/1.1 + HTTP/2 server configuration below, and on shutdown stops accepting and drains.
//!
//! # Layout
//! - this file: the shared parts — accepting ([`accept`]), the HTTP server settings
//!   ([`http_builder`]), and serving one connection ([`serve_connection`]).
//! - [`plain`]: the cleartext accept loop (public HTTP/1.1 + h2c, and the admin server).
//! - [`https`]: the HTTPS accept loop (handshake with a timeout, then the same server).
//! - [`tls`]: the rustls configuration: SNI, ALPN, mTLS, certificate reload, dev certificates.
//! - [`connection`]: one connection's state — idle, head and write timeouts, answers being
//!   delivered and the bytes they hold; [`watch`] enforces it in the transport, with
//!   [`h2frames`] to see half-received HTTP/2 heads.
//! - [`refusal`]: hyper's own empty 400 / 414 / 431 for an unparsable HTTP/1.1 head, replaced
//!   by the gateway's JSON error as the transport writes it.
//! - [`table`]: the open connections — caps in all and per address, idle ones closed first;
//!   [`budget`]: the process-wide count of held answer bytes.

pub(crate) mod budget;
pub mod connection;
mod h2frames;
pub(crate) mod https;
pub(crate) mod plain;
pub mod refusal;
pub(crate) mod table;
pub mod tls;
mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::body::ResponseBody;
use crate::config::ListenerLimits;
use connection::{Connection, Timeouts};
use table::{Seat, Table};
use tls::identity::{self, ClientIdentity};
use watch::Watched;

/// What a listener does with each request: the pipeline (public listeners) or the admin server.
pub(crate) trait Handler:
    Fn(Request<Incoming>, SocketAddr) -> Self::Answer + Clone + Send + Sync + 'static
{
    /// The future of one answer.
    type Answer: Future<Output = Response<ResponseBody>> + Send + 'static;
}

impl<H, F> Handler for H
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    type Answer = F;
}

/// The next connection, with Nagle off. Accept errors (out of file descriptors and similar)
/// pause accepting instead of spinning or ending the listener; running out of descriptors also
/// closes the longest-idle connection, and is logged once per [`ACCEPT_LOG_INTERVAL`].
pub(crate) async fn accept(
    listener: &TcpListener,
    table: &Table,
    failures: &mut AcceptFailures,
) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                failures.pause = Duration::ZERO;
                return (stream, peer);
            }
            Err(e) => {
                if is_out_of_descriptors(&e) {
                    table.make_room();
                }
                failures.note(&e);
                tokio::time::sleep(failures.pause).await;
            }
        }
    }
}

/// How often a listener that keeps failing to accept says so.
pub(crate) const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accept failures since the last log line, and the current pause.
#[derive(Debug, Default)]
pub(crate) struct AcceptFailures {
    pause: Duration,
    unlogged: u64,
    logged_at: Option<tokio::time::Instant>,
}

impl AcceptFailures {
    /// Notes one failure: the pause doubles (10 ms to 100 ms: short, clients wait in the
    /// kernel's queue meanwhile), the log line waits for its interval.
    fn note(&mut self, error: &std::io::Error) {
        self.pause = (self.pause * 2).clamp(Duration::from_millis(10), Duration::from_millis(100));
        self.unlogged += 1;
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed() >= ACCEPT_LOG_INTERVAL);
        if due {
            tracing::warn!(error = %error, failures = self.unlogged, pause_ms = self.pause.as_millis() as u64, "accept failed; pausing");
            self.unlogged = 0;
            self.logged_at = Some(tokio::time::Instant::now());
        }
    }
}

/// `EMFILE` / `ENFILE`: the process or the system has no file descriptor left.
fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// The HTTP/1.1 + HTTP/2 connection settings every listener shares.
pub(crate) fn http_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The head timeout is the watchdog's (`watch`): it starts at a head's first byte, where
    // hyper's would also cut idle keep-alive connections.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        // Twice the limit: a header list between the limit and this is decoded and refused by
        // the pipeline with the gateway's JSON 431 (h2's own 431 has no body); past it h2
        // refuses the stream itself without decoding more.
        .max_header_list_size(
            u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
        )
        .max_concurrent_streams(limits.max_concurrent_streams)
        // What HTTP/2 buffers per stream ahead of the client's window: one answer chunk, so the
        // bytes a stalled client holds are counted where the answer is delivered (`connection`).
        .max_send_buf_size(connection::CHUNK);
    builder
}

/// The accept loop every listener runs: each accepted connection is seated in `table` (or
/// closed at once when there is no room) and goes to `on_accept` with its state, its seat and a
/// watcher that keeps shutdown waiting for it; once `stop` completes with the drain timeout, the
/// socket closes and open connections get at most that long to finish.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    stop: impl Future<Output = Duration>,
    name: &str,
    (table, timeouts): (Arc<Table>, Timeouts),
    mut on_accept: impl FnMut(tokio::net::TcpStream, Arc<Connection>, Seat, Watcher),
) {
    let graceful = GracefulShutdown::new();
    let mut failures = AcceptFailures::default();
    tokio::pin!(stop);
    let drain = loop {
        let (stream, peer) = tokio::select! {
            pair = accept(&listener, &table, &mut failures) => pair,
            drain = &mut stop => break drain,
        };
        match table.seat(peer, timeouts) {
            Ok((connection, seat)) => on_accept(stream, connection, seat, graceful.watcher()),
            Err(full) => {
                tracing::debug!(listener = name, peer = %peer, refused = ?full, "connection refused");
                drop(stream);
            }
        }
    };
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "drain timeout passed with connections still open"
        );
    }
}

/// The watchdog timeouts of `limits`.
pub(crate) fn timeouts(limits: &ListenerLimits) -> Timeouts {
    Timeouts {
        idle: limits.idle_timeout,
        head: limits.header_read_timeout,
        write: limits.write_timeout,
    }
}

/// Serves one accepted connection until it closes: every request goes to `handler` with the
/// client-certificate headers set from `identity` (client-sent copies are always replaced) and
/// the [`Connection`] in its extensions; the connection's watchdog closes it when it must.
pub(crate) async fn serve_connection<IO, H>(
    builder: &auto::Builder<TokioExecutor>,
    stream: IO,
    connection: Arc<Connection>,
    identity: Option<Arc<ClientIdentity>>,
    handler: H,
    shutdown: Watcher,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    let peer = connection.peer();
    let io = Watched::new(stream, connection.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        identity::apply(request.headers_mut(), identity.as_deref());
        request.extensions_mut().insert(connection.clone());
        connection.serve(handler(request, peer))
    });
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(e) = shutdown.watch(connection).await {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
