//! One endpoint of an upstream: one long-lived HTTP/2 (h2c) connection, dialed lazily and again
//! after it closes, with exponential reconnect backoff after failed dials; its circuit breaker;
//! its in-flight count (for least-request balancing); whether health checks keep it in rotation.
//!
//! gRPC multiplexes every call over one connection, so the endpoint keeps a single `SendRequest`
//! handle (cheap to clone per call) instead of a general-purpose pool: one per worker thread
//! (`crate::workers`), so a worker's requests and the connection they use never wake another
//! thread, plus one for everything off the workers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Limited};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::breaker::Breaker;
use super::codec::{self, GrpcStatus, encode_timeout};
use super::retry::AttemptOutcome;
use super::stream::{MessageStream, StreamItem, UpstreamBody};
use super::{GrpcReply, UpstreamError};
use crate::config::UpstreamConfig;

/// First wait after a failed dial; doubles per further failure.
const RECONNECT_BASE: Duration = Duration::from_millis(50);
/// Longest wait between two dials of a failing endpoint.
const RECONNECT_CAP: Duration = Duration::from_secs(2);

/// Why one attempt produced no gRPC answer, and what that means for retrying.
#[derive(Debug)]
pub struct AttemptError {
    /// The error the client sees if this is the last attempt.
    pub error: UpstreamError,
    /// Its classification input.
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Default)]
struct Reconnect {
    failures: u32,
    not_before: Option<Instant>,
}

/// One `host:port` of an upstream (or one address a host name resolved to).
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port` as configured, or the resolved `ip:port` (the endpoint's name in logs and
    /// metrics).
    pub authority: String,
    /// The configured entry this endpoint comes from (equal to `authority` unless resolved).
    pub target: String,
    /// The address dialed, when resolved from a host name; otherwise `authority` is dialed.
    pub address: Option<std::net::SocketAddr>,
    upstream: String,
    uri_authority: Option<Authority>,
    connect_timeout: Duration,
    max_response_bytes: usize,
    /// One connection slot per worker thread and one for other threads, sized at first use
    /// (workers start after the runtime that holds this endpoint is built).
    slots: std::sync::OnceLock<Box<[Slot]>>,
    reconnect: Mutex<Reconnect>,
    /// This endpoint's circuit breaker.
    pub breaker: Breaker,
    in_flight: AtomicUsize,
    /// False while active health checks keep it out of rotation.
    healthy: AtomicBool,
    /// This endpoint's state-change counters.
    pub events: EndpointEvents,
}

/// Monotonic counts of one endpoint's state changes (exported per endpoint by the metrics).
#[derive(Debug, Default)]
pub struct EndpointEvents {
    /// Breaker transitions to open.
    pub opened: std::sync::atomic::AtomicU64,
    /// Breaker transitions to half-open.
    pub half_opened: std::sync::atomic::AtomicU64,
    /// Breaker transitions to closed.
    pub closed: std::sync::atomic::AtomicU64,
    /// Times health checks took it out of rotation.
    pub ejected: std::sync::atomic::AtomicU64,
    /// Times health checks put it back.
    pub restored: std::sync::atomic::AtomicU64,
}

/// One thread's connection to the endpoint.
#[derive(Debug, Default)]
struct Slot {
    sender: Mutex<Option<SendRequest<UpstreamBody>>>,
    /// Held while dialing so a burst of calls on a dead connection makes one new connection.
    dialing: tokio::sync::Mutex<()>,
}

/// Decrements the in-flight count when an attempt ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Endpoint {
    /// An endpoint of `config` at `authority`; nothing is dialed yet.
    pub fn new(config: &UpstreamConfig, authority: &str) -> Endpoint {
        Endpoint {
            authority: authority.to_owned(),
            target: authority.to_owned(),
            address: None,
            upstream: config.name.clone(),
            uri_authority: Authority::try_from(authority).ok(),
            connect_timeout: config.connect_timeout,
            max_response_bytes: config.max_response_bytes,
            slots: std::sync::OnceLock::new(),
            reconnect: Mutex::new(Reconnect::default()),
            breaker: Breaker::new(config.circuit_breaker.clone()),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            events: EndpointEvents::default(),
        }
    }

    /// An endpoint of `config` at `address`, which the configured entry `target` (a host name)
    /// resolved to; requests still name `target` as their `:authority`.
    pub fn resolved(
        config: &UpstreamConfig,
        target: &str,
        address: std::net::SocketAddr,
    ) -> Endpoint {
        let mut endpoint = Endpoint::new(config, target);
        endpoint.authority = address.to_string();
        endpoint.address = Some(address);
        endpoint
    }

    /// Largest response accepted from this endpoint.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Calls in progress on this endpoint.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Pretends `n` more calls are in flight (balancer tests).
    #[cfg(test)]
    pub(crate) fn add_in_flight(&self, n: usize) {
        self.in_flight.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether health checks keep it in rotation.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Sets the health-check verdict; returns whether it changed.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed) != healthy
    }

    /// Whether a failed dial's backoff is still running at `now`.
    pub fn reconnecting(&self, now: Instant) -> bool {
        let r = self
            .reconnect
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        r.not_before.is_some_and(|t| now < t)
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

    fn unavailable(&self, reason: String) -> UpstreamError {
        UpstreamError::Unavailable {
            upstream: self.upstream.clone(),
            reason,
        }
    }

    fn invalid(&self, reason: String) -> AttemptError {
        AttemptError {
            error: UpstreamError::InvalidResponse {
                upstream: self.upstream.clone(),
                reason,
            },
            outcome: AttemptOutcome::Invalid,
        }
    }

    fn not_sent(&self, reason: String) -> AttemptError {
        AttemptError {
            error: self.unavailable(reason),
            outcome: AttemptOutcome::NotSent,
        }
    }

    /// A handle on a live HTTP/2 connection, dialing one if there is none (and the reconnect
    /// backoff allows).
    async fn connection(&self) -> Result<SendRequest<UpstreamBody>, AttemptError> {
        let slot = self.slot();
        if let Some(sender) = Self::live_sender(slot) {
            return Ok(sender);
        }
        let _dialing = slot.dialing.lock().await;
        if let Some(sender) = Self::live_sender(slot) {
            return Ok(sender);
        }
        let now = Instant::now();
        if let Some(not_before) = self
            .reconnect
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .not_before
            .filter(|t| now < *t)
        {
            return Err(AttemptError {
                error: self.unavailable(format!(
                    "{}: connect failed; next attempt in {:?}",
                    self.authority,
                    not_before - now
                )),
                outcome: AttemptOutcome::Backoff,
            });
        }
        match self.dial().await {
            Ok(sender) => {
                *self
                    .reconnect
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Reconnect::default();
                *slot.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
                Ok(sender)
            }
            Err(e) => {
                let mut r = self
                    .reconnect
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
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
        let connect = async {
            match self.address {
                Some(address) => TcpStream::connect(address).await,
                None => TcpStream::connect(self.authority.as_str()).await,
            }
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| {
                self.not_sent(format!(
                    "connect timed out after {:?}",
                    self.connect_timeout
                ))
            })?
            .map_err(|e| self.not_sent(format!("connect failed: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.not_sent(format!("HTTP/2 handshake failed: {e}")))?;
        let name = self.upstream.clone();
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(upstream = %name, endpoint = %authority, error = %e, "upstream connection closed");
            }
        });
        Ok(sender)
    }

    /// One attempt: sends `message` to `grpc_path` and waits at most `timeout` for the whole
    /// answer (connect, send, headers, body, trailers).
    pub async fn attempt(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<GrpcReply, AttemptError> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        self.within(timeout, self.send(grpc_path, message, metadata, timeout))
            .await
    }

    /// Runs one attempt, failing it as timed out (a breaker failure) once `timeout` has passed.
    async fn within<T>(
        &self,
        timeout: Duration,
        attempt: impl Future<Output = Result<T, AttemptError>>,
    ) -> Result<T, AttemptError> {
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(AttemptError {
                    error: UpstreamError::DeadlineExceeded {
                        upstream: self.upstream.clone(),
                        timeout,
                    },
                    outcome: AttemptOutcome::TimedOut,
                })
            })
    }

    async fn send(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<GrpcReply, AttemptError> {
        let body = UpstreamBody::message(&message);
        let response = self
            .exchange(grpc_path, body, metadata, Some(timeout))
            .await?;
        self.read_reply(response).await
    }

    /// One server-streaming attempt: sends `message` and waits at most `timeout` for the
    /// response head and the stream's first item. The reply holds the first message (status
    /// OK) with the rest of the stream, or the status of a stream that ended at once.
    pub(super) async fn open_stream(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<(GrpcReply, Option<MessageStream>), AttemptError> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let opening = async {
            // No `grpc-timeout`: the deadline bounds only the wait for the first message.
            let body = UpstreamBody::message(&message);
            let response = self.exchange(grpc_path, body, metadata, None).await?;
            let (parts, body) = response.into_parts();
            self.check_head(&parts)?;
            let mut metadata = parts.headers;
            if let Some(status) = GrpcStatus::from_headers(&metadata) {
                let reply = GrpcReply {
                    status,
                    message: None,
                    metadata,
                };
                return Ok((reply, None));
            }
            let mut stream =
                MessageStream::new(body, self.max_response_bytes, self.upstream.clone());
            let first = stream.next().await.map_err(|error| AttemptError {
                outcome: match error {
                    UpstreamError::Unavailable { .. } => AttemptOutcome::Reset,
                    _ => AttemptOutcome::Invalid,
                },
                error,
            })?;
            Ok(match first {
                StreamItem::Message(message) => {
                    let status = GrpcStatus {
                        code: 0,
                        message: String::new(),
                        details: None,
                    };
                    let reply = GrpcReply {
                        status,
                        message: Some(message),
                        metadata,
                    };
                    (reply, Some(stream))
                }
                StreamItem::End(status, trailers) => {
                    metadata.extend(trailers);
                    let reply = GrpcReply {
                        status,
                        message: None,
                        metadata,
                    };
                    (reply, None)
                }
            })
        };
        self.within(timeout, opening).await
    }

    /// Sends one request and returns the response with its body unread; `timeout`, when given,
    /// goes to the backend as `grpc-timeout`.
    async fn exchange(
        &self,
        grpc_path: &PathAndQuery,
        body: UpstreamBody,
        metadata: HeaderMap,
        timeout: Option<Duration>,
    ) -> Result<http::Response<hyper::body::Incoming>, AttemptError> {
        let authority = self.uri_authority.clone().ok_or_else(|| {
            self.invalid(format!("`{}` is not a valid authority", self.authority))
        })?;
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority)
            .path_and_query(grpc_path.clone())
            .build()
            .map_err(|e| self.invalid(format!("cannot build request URI: {e}")))?;
        let mut request = Request::post(uri)
            .body(body)
            .map_err(|e| self.invalid(format!("cannot build request: {e}")))?;
        let headers = request.headers_mut();
        headers.extend(metadata);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("tai-gateway/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(timeout) = timeout {
            headers.insert("grpc-timeout", encode_timeout(timeout));
        }

        let mut sender = self.connection().await?;
        sender.try_send_request(request).await.map_err(|e| {
            let sent = e.message().is_none();
            let reason = error_chain(e.error());
            AttemptError {
                error: self.unavailable(reason),
                outcome: if sent {
                    AttemptOutcome::Reset
                } else {
                    AttemptOutcome::NotSent
                },
            }
        })
    }

    /// One pass-through attempt (native gRPC and gRPC-Web clients): takes the request body from
    /// `body` once a connection is up (so a failed dial leaves it for the next endpoint), sends
    /// it with `metadata`, and waits at most `timeout` for the response head. The body of the
    /// response is left unread; `timeout` also goes to the backend as `grpc-timeout`.
    pub(super) async fn forward(
        &self,
        grpc_path: &PathAndQuery,
        metadata: HeaderMap,
        body: &Mutex<Option<UpstreamBody>>,
        timeout: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, AttemptError> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let sending = async {
            self.connection().await?;
            let Some(body) = body.lock().unwrap_or_else(PoisonError::into_inner).take() else {
                // An earlier attempt sent the (unrepeatable) body: nothing new to learn here.
                return Err(AttemptError {
                    error: self.unavailable("the request body was already sent".to_owned()),
                    outcome: AttemptOutcome::Backoff,
                });
            };
            let response = self
                .exchange(grpc_path, body, metadata, Some(timeout))
                .await?;
            let (parts, body) = response.into_parts();
            self.check_head(&parts)?;
            Ok(http::Response::from_parts(parts, body))
        };
        self.within(timeout, sending).await
    }

    /// Refuses a response head that is not a gRPC answer.
    fn check_head(&self, parts: &http::response::Parts) -> Result<(), AttemptError> {
        if parts.status != http::StatusCode::OK {
            return Err(self.invalid(format!("HTTP status {}", parts.status)));
        }
        let is_grpc = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if !is_grpc {
            return Err(self.invalid("content-type is not application/grpc".to_owned()));
        }
        Ok(())
    }

    async fn read_reply(
        &self,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<GrpcReply, AttemptError> {
        let (parts, body) = response.into_parts();
        self.check_head(&parts)?;
        let mut metadata = parts.headers;
        // Trailers-only: the status is in the headers and the body is empty.
        if let Some(status) = GrpcStatus::from_headers(&metadata) {
            return Ok(GrpcReply {
                status,
                message: None,
                metadata,
            });
        }
        let collected = Limited::new(body, self.max_response_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    self.invalid(format!(
                        "response larger than {} bytes",
                        self.max_response_bytes
                    ))
                } else {
                    AttemptError {
                        error: self.unavailable(format!("response body failed: {e}")),
                        outcome: AttemptOutcome::Reset,
                    }
                }
            })?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = collected.to_bytes();
        let status = GrpcStatus::from_headers(&trailers)
            .ok_or_else(|| self.invalid("no grpc-status in trailers".to_owned()))?;
        metadata.extend(trailers);
        let message = if status.is_ok() {
            Some(codec::unframe_single(data).map_err(|reason| self.invalid(reason))?)
        } else {
            None
        };
        Ok(GrpcReply {
            status,
            message,
            metadata,
        })
    }
}

/// An error with its causes, `outer: inner: ...`.
fn error_chain(error: &hyper::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}
