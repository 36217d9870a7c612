//! Listeners: where connections enter. Each accept loop (cleartext in [`plain`], HTTPS in
//! [`https`]) takes a bound socket, hands every connection to a worker thread, serves it with the
//! one HTTP/1.1 + HTTP/2 server configuration below, and on shutdown stops accepting and drains.
//!
//! # Layout
//! - this file: the shared parts — accepting ([`accept`]) and the accept loop ([`accept_loop`]),
//!   with [`drain`] to close open connections on shutdown.
//! - [`serve`]: the HTTP server settings and serving one connection — an idle wait outside hyper,
//!   then hyper's HTTP/1.1 (given back after a second idle, so idle connections hold no buffers)
//!   or HTTP/2, through [`prefixed`] for the bytes the wait read.
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
mod drain;
mod h2frames;
pub(crate) mod https;
pub(crate) mod plain;
mod prefixed;
pub mod refusal;
mod serve;
pub(crate) mod table;
pub mod tls;
mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::body::ResponseBody;
use crate::config::ListenerLimits;
use connection::{Connection, Timeouts};
use drain::{Drain, Draining};
use table::{Seat, Table};

/// What a listener does with each request: the pipeline (public listeners) or the admin server.
pub(crate) trait Handler:
    Fn(Request<Incoming>, SocketAddr) -> Self::Answer + Clone + Send + Sync + Unpin + 'static
{
    /// The future of one answer.
    type Answer: Future<Output = Response<ResponseBody>> + Send + 'static;
}

impl<H, F> Handler for H
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + Unpin + 'static,
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

/// The accept loop every listener runs: each accepted connection is seated in `table` (or
/// closed at once when there is no room) and goes to `on_accept` with its state, its seat and a
/// watcher that keeps shutdown waiting for it; once `stop` completes with the drain timeout, the
/// socket closes and open connections get at most that long to finish.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    stop: impl Future<Output = Duration>,
    name: &str,
    (table, timeouts): (Arc<Table>, Timeouts),
    mut on_accept: impl FnMut(tokio::net::TcpStream, Arc<Connection>, Seat, Draining),
) {
    let drain = Drain::new();
    let mut failures = AcceptFailures::default();
    tokio::pin!(stop);
    let drain_timeout = loop {
        let (stream, peer) = tokio::select! {
            pair = accept(&listener, &table, &mut failures) => pair,
            drain_timeout = &mut stop => break drain_timeout,
        };
        match table.seat(peer, timeouts) {
            Ok((connection, seat)) => on_accept(stream, connection, seat, drain.watcher()),
            Err(full) => {
                tracing::debug!(listener = name, peer = %peer, refused = ?full, "connection refused");
                drop(stream);
            }
        }
    };
    drop(listener);
    if tokio::time::timeout(drain_timeout, drain.shutdown())
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
