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
//! - [`idle`]: the idle timeout every connection carries.

pub(crate) mod https;
pub(crate) mod idle;
pub(crate) mod plain;
pub mod tls;

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
use idle::{Activity, IdleIo};
use tls::identity::{self, ClientIdentity};

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

/// The next connection, with Nagle off. Accept errors (out of file descriptors and similar) are
/// logged and retried after a pause instead of spinning or ending the listener.
pub(crate) async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP/1.1 + HTTP/2 connection settings every listener shares.
pub(crate) fn http_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(1024);
    builder
}

/// The accept loop every listener runs: each accepted connection goes to `on_accept` with a
/// watcher that keeps shutdown waiting for it; once `stop` completes with the drain timeout,
/// the socket closes and open connections get at most that long to finish.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    stop: impl Future<Output = Duration>,
    name: &'static str,
    mut on_accept: impl FnMut(tokio::net::TcpStream, SocketAddr, Watcher),
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    let drain = loop {
        let (stream, peer) = tokio::select! {
            pair = accept(&listener) => pair,
            drain = &mut stop => break drain,
        };
        on_accept(stream, peer, graceful.watcher());
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

/// Serves one accepted connection until it closes: every request goes to `handler` with the
/// client-certificate headers set from `identity` (client-sent copies are always replaced), and
/// the connection closes after `idle_timeout` without requests or bytes.
pub(crate) async fn serve_connection<IO, H>(
    builder: &auto::Builder<TokioExecutor>,
    stream: IO,
    peer: SocketAddr,
    identity: Option<Arc<ClientIdentity>>,
    idle_timeout: Duration,
    handler: H,
    shutdown: Watcher,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    let activity = Activity::new();
    let io = IdleIo::new(stream, activity.clone(), idle_timeout);
    let service = service_fn(move |mut request: Request<Incoming>| {
        identity::apply(request.headers_mut(), identity.as_deref());
        activity.serve(handler(request, peer))
    });
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(e) = shutdown.watch(connection).await {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
