//! The HTTP/2 (h2c) connections of one endpoint: dialed lazily and again after they close, with
//! exponential reconnect backoff after failed dials.
//!
//! gRPC multiplexes every call over one connection, so an endpoint keeps a single `SendRequest`
//! handle (cheap to clone per call) instead of a general-purpose pool: one per worker thread
//! (`crate::workers`), so a worker's requests and the connection they use never wake another
//! thread, plus one for everything off the workers.

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hyper::client::conn::http2::{self, SendRequest};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::UpstreamBody;
use super::reply::AttemptError;
use super::retry::AttemptOutcome;

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
    /// One connection slot per worker thread and one for other threads, sized at first use
    /// (workers start after the runtime that holds this endpoint is built).
    slots: OnceLock<Box<[Slot]>>,
    reconnect: Mutex<Reconnect>,
}

impl Connections {
    /// No connection yet to `authority` (or `address`, when given) of `upstream`.
    pub(super) fn new(
        upstream: &str,
        authority: &str,
        address: Option<SocketAddr>,
        connect_timeout: Duration,
    ) -> Connections {
        Connections {
            upstream: upstream.to_owned(),
            authority: authority.to_owned(),
            address,
            connect_timeout,
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
        let slot = self.slot();
        if let Some(sender) = Self::live_sender(slot) {
            return Ok(sender);
        }
        let _dialing = slot.dialing.lock().await;
        if let Some(sender) = Self::live_sender(slot) {
            return Ok(sender);
        }
        let now = Instant::now();
        if let Some(not_before) = self.reconnect().not_before.filter(|t| now < *t) {
            let reason = format!(
                "{}: connect failed; next attempt in {:?}",
                self.authority,
                not_before - now
            );
            return Err(self.failed(reason, AttemptOutcome::Backoff));
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
                Err(e)
            }
        }
    }

    async fn dial(&self) -> Result<SendRequest<UpstreamBody>, AttemptError> {
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
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(TokioIo::new(stream))
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
