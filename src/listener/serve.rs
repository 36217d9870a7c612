//! Serving one accepted connection: the HTTP/1.1 and HTTP/2 server settings every listener
//! shares ([`HttpServer`]) and the life of a connection ([`serve_connection`]).
//!
//! A connection starts with a small wait outside hyper for the client's first bytes, which also
//! tell HTTP/1.1 from h2c. HTTP/2 connections are then handed to hyper for good. An HTTP/1.1
//! connection goes to hyper for as long as it is in use; once it has been idle for
//! [`RELEASE_AFTER`], hyper gives it back (its read and write buffers, the cached header map and
//! the dispatcher: about 25 KiB) and it waits outside hyper again, holding only the socket and its
//! [`Connection`] state, until the client's next request starts. 10,000 idle keep-alive
//! connections cost about 4 KiB each instead of 30 KiB (benches/RESULTS.md). The idle, head and
//! write timeouts are the transport watchdog's ([`Watched`]) throughout, so the head timeout only
//! runs from a request head's first byte and an idle keep-alive connection is governed by
//! `idle_timeout`.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Sleep;

use super::Handler;
use super::connection::{self, Connection};
use super::drain::Draining;
use super::h2frames::PREFACE;
use super::prefixed::Prefixed;
use super::tls::identity::{self, ClientIdentity};
use super::watch::Watched;
use crate::body::ResponseBody;
use crate::config::ListenerLimits;

/// How long an HTTP/1.1 connection stays idle in hyper (its buffers kept for the next request)
/// before hyper gives it back: long enough that a busy keep-alive client never pays for the
/// hand-back, short enough that idle connections hold no buffers for long.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// What a connection may speak, from its TLS ALPN result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    /// No ALPN (cleartext, or a TLS client that sent none): what the client's first bytes say.
    Any,
    /// `http/1.1` negotiated: an HTTP/2 preface is refused.
    Http1,
    /// `h2` negotiated: anything but the HTTP/2 preface is refused.
    Http2,
}

impl Speaks {
    /// The protocol ALPN negotiated (`None`: no ALPN).
    pub(crate) fn from_alpn(alpn: Option<&[u8]>) -> Speaks {
        match alpn {
            Some(b"h2") => Speaks::Http2,
            Some(b"http/1.1") => Speaks::Http1,
            _ => Speaks::Any,
        }
    }
}

/// The HTTP/1.1 and HTTP/2 connection settings every listener shares.
#[derive(Debug, Clone)]
pub(crate) struct HttpServer {
    http1: http1::Builder,
    http2: auto::Builder<TokioExecutor>,
}

impl HttpServer {
    /// The settings for `limits`.
    pub(crate) fn new(limits: &ListenerLimits) -> HttpServer {
        let mut http1 = http1::Builder::new();
        // The head timeout is the watchdog's (`watch`): it starts at a head's first byte, where
        // hyper's would also cut idle keep-alive connections.
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(limits.max_header_bytes.max(8192));
        let mut http2 = auto::Builder::new(TokioExecutor::new()).http2_only();
        http2
            .http2()
            .timer(TokioTimer::new())
            // Twice the limit: a header list between the limit and this is decoded and refused
            // by the pipeline with the gateway's JSON 431 (h2's own 431 has no body); past it h2
            // refuses the stream itself without decoding more.
            .max_header_list_size(
                u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
            )
            .max_concurrent_streams(limits.max_concurrent_streams)
            // What HTTP/2 buffers per stream ahead of the client's window: one answer chunk, so
            // the bytes a stalled client holds are counted where the answer is delivered
            // (`connection`).
            .max_send_buf_size(connection::CHUNK);
        HttpServer { http1, http2 }
    }
}

/// Serves one accepted connection until it closes: every request goes to `handler` with the
/// client-certificate headers set from `identity` (client-sent copies are always replaced) and
/// the [`Connection`] in its extensions; the connection's watchdog closes it when it must, and
/// `draining` when the listener shuts down.
pub(crate) async fn serve_connection<IO, H>(
    server: &HttpServer,
    (stream, speaks): (IO, Speaks),
    connection: Arc<Connection>,
    identity: Option<Arc<ClientIdentity>>,
    handler: H,
    mut draining: Draining,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    let peer = connection.peer();
    let mut io = Watched::new(stream, connection.clone());
    let Some(first) = next_bytes(&mut io, &mut draining).await else {
        return;
    };
    let state = connection.clone();
    let service = service_fn(move |mut request: Request<Incoming>| {
        identity::apply(request.headers_mut(), identity.as_deref());
        request.extensions_mut().insert(state.clone());
        state.serve(handler(request, peer))
    });
    let http2 = match speaks {
        Speaks::Any => io.speaks_http2() == Some(true),
        Speaks::Http1 => false,
        Speaks::Http2 => true,
    };
    let served = if http2 {
        // Boxed: an HTTP/2 connection's state is only allocated for HTTP/2 clients.
        let io = TokioIo::new(Prefixed::new(io, first));
        let served = serve_http2(&server.http2, io, service, &mut draining);
        Box::pin(served).await
    } else {
        let served = serve_http1(
            &server.http1,
            (io, first),
            service,
            &connection,
            &mut draining,
        );
        served.await.map_err(Into::into)
    };
    if let Err(e) = served {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// The client's next bytes, read outside hyper while the connection is idle (at most the HTTP/2
/// preface's length, and as many as it takes to tell the protocol on a new connection); `None`
/// when the connection is to close instead: the client closed it, the watchdog expired it, or the
/// listener drains.
async fn next_bytes<T>(io: &mut Watched<T>, draining: &mut Draining) -> Option<Bytes>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = [0u8; PREFACE.len()];
    let mut filled = 0;
    loop {
        let read = tokio::select! {
            biased;
            () = draining.signalled() => return None,
            read = io.read(&mut buf[filled..]) => read,
        };
        match read {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(e) => {
                tracing::debug!(error = %e, "idle connection closed");
                return None;
            }
        }
        if io.speaks_http2().is_some() || filled == buf.len() {
            return Some(Bytes::copy_from_slice(&buf[..filled]));
        }
    }
}

/// Serves an HTTP/2 connection until it closes (gracefully when the listener drains).
async fn serve_http2<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    draining: &mut Draining,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = http::Response<ResponseBody>>,
    S: Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = pin!(builder.serve_connection(io, service));
    tokio::select! {
        biased;
        served = conn.as_mut() => return served,
        () = draining.signalled() => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

/// Serves an HTTP/1.1 connection, `first` being the bytes read of it so far: in hyper while it
/// is in use, outside while it is idle, until it closes.
async fn serve_http1<T, S>(
    builder: &http1::Builder,
    (mut io, mut first): (Watched<T>, Bytes),
    mut service: S,
    connection: &Connection,
    draining: &mut Draining,
) -> Result<(), hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: HttpService<Incoming, ResBody = ResponseBody> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        // Boxed: hyper's connection state is only allocated while the connection is in hyper,
        // not for as long as the task lives.
        let session = http1_session(builder, (io, first), service, connection, draining);
        let Some((back, rest, kept)) = Box::pin(session).await? else {
            return Ok(());
        };
        (io, service) = (back, kept);
        first = if rest.is_empty() {
            match next_bytes(&mut io, draining).await {
                Some(bytes) => bytes,
                None => return Ok(()),
            }
        } else {
            rest
        };
    }
}

/// One stretch of an HTTP/1.1 connection in hyper: until the connection closes (`None`) or has
/// been idle for [`RELEASE_AFTER`], when hyper gives back the transport, the bytes it read and
/// did not use, and the service.
async fn http1_session<T, S>(
    builder: &http1::Builder,
    (io, first): (Watched<T>, Bytes),
    service: S,
    connection: &Connection,
    draining: &mut Draining,
) -> Result<Option<(Watched<T>, Bytes, S)>, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: HttpService<Incoming, ResBody = ResponseBody> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = builder.serve_connection(TokioIo::new(Prefixed::new(io, first)), service);
    let mut signalled = pin!(draining.signalled());
    let mut release = pin!(tokio::time::sleep(Duration::ZERO));
    let (mut drained, mut released) = (false, false);
    poll_fn(|cx| {
        if !drained && signalled.as_mut().poll(cx).is_ready() {
            drained = true;
            Pin::new(&mut conn).graceful_shutdown();
        }
        loop {
            if let Poll::Ready(served) = conn.poll_without_shutdown(cx) {
                return Poll::Ready(served);
            }
            // hyper waits for the client with nothing in progress: it is idle.
            if drained || released || !idle_long_enough(connection, release.as_mut(), cx) {
                return Poll::Pending;
            }
            // Idle, so hyper closes its side at once, writing nothing (keep-alive stays on).
            released = true;
            Pin::new(&mut conn).graceful_shutdown();
        }
    })
    .await?;
    let parts = conn.into_parts();
    let (mut io, rest) = parts.io.into_inner().into_parts(parts.read_buf);
    if released && !drained {
        return Ok(Some((io, rest, parts.service)));
    }
    // hyper left the transport open: closed here (a TLS close_notify, then FIN).
    let _ = io.shutdown().await;
    Ok(None)
}

/// True once `connection` has been idle for [`RELEASE_AFTER`]; until then `timer` wakes the task
/// at that moment.
fn idle_long_enough(
    connection: &Connection,
    mut timer: Pin<&mut Sleep>,
    cx: &mut Context<'_>,
) -> bool {
    let Some(due) = connection.idle_for(RELEASE_AFTER) else {
        return false;
    };
    if tokio::time::Instant::now() >= due {
        return true;
    }
    // Re-armed only when it would fire late or has fired: a busy connection moves `due` on with
    // every request, and an earlier wake-up just checks again.
    if timer.is_elapsed() || timer.deadline() > due {
        timer.as_mut().reset(due);
    }
    if timer.as_mut().poll(cx).is_ready() {
        // It fired before `due`: armed again, so that the task is woken then.
        timer.as_mut().reset(due);
        let _ = timer.poll(cx);
    }
    false
}
