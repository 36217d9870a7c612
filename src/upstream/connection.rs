//! The HTTP/2 connections of one endpoint (h2c, or over TLS when the upstream has `tls:`): dialed
//! lazily and again after they close, with exponential reconnect backoff after failed dials.
//!
//! gRPC multiplexes every call over one connection, so an endpoint keeps a single `SendRequest`
//! handle (cheap to clone per call) instead of a general-purpose pool: one per worker thread
//! (`crate::workers`), so a worker's requests and the connection they use never wake another
//! thread, plus one for everything off the workers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hyper::client::conn::http2::{self, SendRequest};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::UpstreamBody;
use super::reply::AttemptError;
use super::retry::AttemptOutcome;
use super::tls::{TlsAlert, UpstreamTls, Watched};

/// What one upstream stream may have in flight before its reader (the client the answer goes
/// to) takes some: the most a stalled client makes the gateway hold per stream.
const STREAM_WINDOW: u32 = 1 << 20;

/// The connection-wide window, far above the streams': streams whose clients stall fill at most
/// their own windows, and the connection stays open for every other stream on it (with hyper's
/// default of 5 MiB, three stalled 2 MiB streams stopped every other call on the connection).
const CONNECTION_WINDOW: u32 = 1 << 30;

/// First wait after a failed dial; doubles per further failure.
const RECONNECT_BASE: Duration = Duration::from_millis(50);
/// Longest wait between two dials of a failing endpoint.
const RECONNECT_CAP: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Reconnect {
    failures: u32,
    not_before: Option<Instant>,
    /// Why the last dial failed, when TLS refused it: refusals during the backoff say the same
    /// (a 502 like the dial's, not a 503).
    tls_failure: Option<String>,
    /// The TLS config (its reload count) that last dial used: a reloaded one (a rotated CA or
    /// client certificate) may succeed, so it ends a backoff after a TLS failure.
    tls_generation: u64,
}

/// TLS to one endpoint: the upstream's client config and the name the endpoint is verified
/// against (or why its host is no valid name).
#[derive(Debug)]
pub(super) struct TlsTarget {
    tls: Arc<UpstreamTls>,
    name: Result<ServerName<'static>, String>,
    /// The TLS error that last broke one of the endpoint's connections, until it answers again.
    alert: Arc<TlsAlert>,
}

impl TlsTarget {
    /// TLS with `tls` to the endpoint configured as `target` (`host:port`).
    pub(super) fn new(tls: &Arc<UpstreamTls>, target: &str) -> TlsTarget {
        TlsTarget {
            tls: tls.clone(),
            name: tls.server_name(target),
            alert: Arc::default(),
        }
    }
}

/// One thread's connection to the endpoint.
#[derive(Debug, Default)]
struct Slot {
    sender: Mutex<Option<SendRequest<UpstreamBody>>>,
    /// Held while dialing so a burst of calls on a dead connection makes one new connection.
    dialing: tokio::sync::Mutex<()>,
}

/// The connections of one endpoint, and the backoff of its failed dials.
#[derive(Debug)]
pub(super) struct Connections {
    /// The upstream's name (errors and logs).
    upstream: String,
    /// The endpoint's name (errors and logs); dialed when `address` is `None`.
    authority: String,
    /// The address dialed, when resolved from a host name.
    address: Option<SocketAddr>,
    connect_timeout: Duration,
    /// TLS, when the upstream has `tls:`; `None` = h2c.
    tls: Option<TlsTarget>,
    /// One connection slot per worker thread and one for other threads, sized at first use
    /// (workers start after the runtime that holds this endpoint is built).
    slots: OnceLock<Box<[Slot]>>,
    reconnect: Mutex<Reconnect>,
}

impl Connections {
    /// No connection yet to `authority` (or `address`, when given) of `upstream`.
    pub(super) fn new(
        upstream: &str,
        (authority, address): (&str, Option<SocketAddr>),
        connect_timeout: Duration,
        tls: Option<TlsTarget>,
    ) -> Connections {
        Connections {
            upstream: upstream.to_owned(),
            authority: authority.to_owned(),
            address,
            connect_timeout,
            tls,
            slots: OnceLock::new(),
            reconnect: Mutex::new(Reconnect::default()),
        }
    }

    fn reconnect(&self) -> std::sync::MutexGuard<'_, Reconnect> {
        self.reconnect
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a failed dial's backoff is still running at `now`.
    pub(super) fn reconnecting(&self, now: Instant) -> bool {
        self.reconnect().not_before.is_some_and(|t| now < t)
    }

    /// This thread's connection slot.
    fn slot(&self) -> &Slot {
        let slots = self.slots.get_or_init(|| {
            (0..crate::workers::slots())
                .map(|_| Slot::default())
                .collect()
        });
        &slots[crate::workers::slot() % slots.len()]
    }

    fn live_sender(slot: &Slot) -> Option<SendRequest<UpstreamBody>> {
        let guard = slot.sender.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    fn failed(&self, reason: String, outcome: AttemptOutcome) -> AttemptError {
        AttemptError::unavailable(&self.upstream, reason, outcome)
    }

    /// A handle on a live HTTP/2 connection, dialing one if there is none (and the reconnect
    /// backoff allows).
    pub(super) async fn sender(&self) -> Result<SendRequest<UpstreamBody>, AttemptError> {
        if let Some(sender) = Self::live_sender(self.slot()) {
            return Ok(sender);
        }
        // The dial's future (TCP, TLS and HTTP/2 handshakes) is several KiB: boxed, so that
        // every call's future, moved on each request, does not carry it (benches/RESULTS.md).
        Box::pin(self.sender_dialed()).await
    }

    /// The slow path of [`Connections::sender`]: one dial per slot at a time, unless the
    /// reconnect backoff refuses it.
    async fn sender_dialed(&self) -> Result<SendRequest<UpstreamBody>, AttemptError> {
        let slot = self.slot();
        let _dialing = slot.dialing.lock().await;
        if let Some(sender) = Self::live_sender(slot) {
            return Ok(sender);
        }
        let now = Instant::now();
        if let Some(refusal) = self.backing_off(now) {
            return Err(refusal);
        }
        match self.dial().await {
            Ok(sender) => {
                *self.reconnect() = Reconnect::default();
                *slot.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
                Ok(sender)
            }
            Err(e) => {
                let mut r = self.reconnect();
                let wait = RECONNECT_BASE
                    .saturating_mul(1u32 << r.failures.min(16))
                    .min(RECONNECT_CAP);
                r.failures = r.failures.saturating_add(1);
                r.not_before = Some(Instant::now() + wait);
                r.tls_failure = e.tls_reason().map(str::to_owned);
                r.tls_generation = self.tls_generation();
                Err(e)
            }
        }
    }

    /// The TLS error that broke a connection since the endpoint last answered (see
    /// [`TlsAlert`]).
    pub(super) fn tls_alert(&self) -> Option<String> {
        self.tls.as_ref()?.alert.get()
    }

    /// The endpoint answered a request.
    pub(super) fn answered(&self) {
        if let Some(tls) = &self.tls {
            tls.alert.clear();
        }
    }

    /// How many times the upstream's TLS config has been reloaded (0 without TLS).
    fn tls_generation(&self) -> u64 {
        self.tls
            .as_ref()
            .map_or(0, |t| t.tls.reload_stats().borrow().applied)
    }

    /// The refusal of a dial while the backoff after a failed one runs at `now` (none after a
    /// TLS failure once the TLS config has been reloaded since).
    fn backing_off(&self, now: Instant) -> Option<AttemptError> {
        let r = self.reconnect();
        let wait = r.not_before.filter(|t| now < *t)? - now;
        if r.tls_failure.is_some() && r.tls_generation != self.tls_generation() {
            return None;
        }
        Some(match &r.tls_failure {
            Some(reason) => AttemptError::tls(
                &self.upstream,
                format!("{reason} (next attempt in {wait:?})"),
                AttemptOutcome::Backoff,
            ),
            None => {
                let reason = format!(
                    "{}: connect failed; next attempt in {wait:?}",
                    self.authority
                );
                self.failed(reason, AttemptOutcome::Backoff)
            }
        })
    }

    /// A new HTTP/2 connection: TCP, then TLS when configured, then the HTTP/2 handshake.
    async fn dial(&self) -> Result<SendRequest<UpstreamBody>, AttemptError> {
        let stream = self.connect().await?;
        match &self.tls {
            None => self.handshake(TokioIo::new(stream)).await,
            Some(target) => {
                let stream = self.tls_handshake(target, stream).await?;
                self.handshake(TokioIo::new(stream)).await
            }
        }
    }

    /// The TLS handshake (bounded by the connect timeout, and so is the wait for the backend's
    /// first bytes); a failure is logged with its reason.
    async fn tls_handshake(
        &self,
        target: &TlsTarget,
        stream: TcpStream,
    ) -> Result<Watched, AttemptError> {
        let result = match target.name.clone() {
            Err(reason) => Err(reason),
            Ok(name) => {
                let bounds = (&target.alert, self.connect_timeout);
                target.tls.connect(stream, name, bounds).await
            }
        };
        result.map_err(|reason| {
            let reason = format!("{}: {reason}", self.authority);
            tracing::warn!(upstream = %self.upstream, endpoint = %self.authority, error = %reason, "TLS to the backend failed");
            AttemptError::tls(&self.upstream, reason, AttemptOutcome::NotSent)
        })
    }

    /// The TCP connection, bounded by the connect timeout.
    async fn connect(&self) -> Result<TcpStream, AttemptError> {
        let not_sent = |reason| self.failed(reason, AttemptOutcome::NotSent);
        let connect = async {
            match self.address {
                Some(address) => TcpStream::connect(address).await,
                None => TcpStream::connect(self.authority.as_str()).await,
            }
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| {
                not_sent(format!(
                    "connect timed out after {:?}",
                    self.connect_timeout
                ))
            })?
            .map_err(|e| not_sent(format!("connect failed: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// The HTTP/2 handshake on `io`; the connection is driven by a task of its own.
    async fn handshake<I>(&self, io: I) -> Result<SendRequest<UpstreamBody>, AttemptError>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let not_sent = |reason| self.failed(reason, AttemptOutcome::NotSent);
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(io)
            .await
            .map_err(|e| not_sent(format!("HTTP/2 handshake failed: {e}")))?;
        let name = self.upstream.clone();
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(upstream = %name, endpoint = %authority, error = %e, "upstream connection closed");
            }
        });
        Ok(sender)
    }
}
