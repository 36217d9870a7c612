//! Calls to gRPC backends: one [`Upstream`] per configured backend, with one or more endpoints;
//! [`Upstream::call`] runs the call loop — pick an endpoint, attempt with a per-try timeout,
//! classify the outcome, feed the endpoint's breaker, and retry with backoff while the deadline,
//! the retry policy and the retry budget allow.
//!
//! Layout:
//! - [`codec`] frames and unframes gRPC messages and reads status trailers;
//! - [`endpoint`]: one HTTP/2 connection per endpoint and worker thread, reconnect backoff, one attempt;
//! - [`balancer`]: power-of-two-choices least-request over the endpoints that take traffic;
//! - [`breaker`]: the per-endpoint circuit breaker state machine;
//! - [`retry`]: outcome classification, backoff, retry budget;
//! - [`health`]: active `grpc.health.v1` checks;
//! - [`resolve`]: periodic DNS re-resolution of host-name endpoints (one endpoint per address);
//! - [`stats`]: counters and gauges for the operations side;
//! - [`stream`]: server-streaming calls, their messages decoded as they arrive.

pub mod balancer;
pub mod breaker;
pub mod codec;
pub mod endpoint;
pub mod health;
pub mod resolve;
pub mod retry;
pub mod stats;
pub mod stream;

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

pub use codec::{GrpcStatus, encode_timeout, parse_timeout};

use crate::config::{HealthCheckConfig, RetryConfig, RouteRetryConfig, UpstreamConfig};
use balancer::Pick;
use breaker::{Breaker, Transition};
use endpoint::Endpoint;
use retry::{AttemptOutcome, Retry, RetryBudget};
use stats::{StatsSnapshot, UpstreamStats, bump};

/// Response header carrying how many attempts a call took.
pub const ATTEMPTS_HEADER: &str = "x-tai-attempts";

/// Why a backend call produced no gRPC answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be made or broke before an answer (maps to 503).
    #[error("upstream `{upstream}` is unreachable: {reason}")]
    Unavailable {
        /// Upstream name.
        upstream: String,
        /// What the transport said.
        reason: String,
    },
    /// The deadline passed before the answer was complete (maps to 504).
    #[error("upstream `{upstream}` did not answer within {timeout:?}")]
    DeadlineExceeded {
        /// Upstream name.
        upstream: String,
        /// The deadline that was applied.
        timeout: Duration,
    },
    /// The backend answered with something that is not a valid gRPC response (maps to 502).
    #[error("upstream `{upstream}` sent an invalid gRPC response: {reason}")]
    InvalidResponse {
        /// Upstream name.
        upstream: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Every endpoint's circuit breaker is open (maps to 503 with `Retry-After`).
    #[error(
        "upstream `{upstream}` is unavailable: every endpoint's circuit breaker is open (next probe in {}s)",
        retry_after_secs(*.retry_after)
    )]
    CircuitOpen {
        /// Upstream name.
        upstream: String,
        /// Time until an endpoint lets a probe through.
        retry_after: Duration,
    },
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The outcome of a unary call that reached the backend and got a well-formed gRPC answer.
#[derive(Debug)]
pub struct GrpcReply {
    /// `grpc-status` and friends (OK or an error the backend chose).
    pub status: GrpcStatus,
    /// The response message bytes (unframed), when status is OK.
    pub message: Option<Bytes>,
    /// Response headers, then trailers, as the backend sent them.
    pub metadata: HeaderMap,
}

/// How one call may be retried and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions<'a> {
    /// Bound of the whole call, retries included.
    pub deadline: Duration,
    /// Bound of one attempt, when shorter than what is left of the deadline.
    pub per_try_timeout: Option<Duration>,
    /// Failures that reached the backend may be retried (the call is safe to repeat).
    pub retryable: bool,
    /// Codes retried instead of the upstream's `retryable_codes`.
    pub retry_on: Option<&'a [i32]>,
}

impl<'a> CallOptions<'a> {
    /// The options of a call through a route: GET bindings are retryable unless the route says
    /// otherwise; other methods only when it says so.
    pub fn for_route(
        route: &'a RouteRetryConfig,
        http_method: &str,
        deadline: Duration,
    ) -> CallOptions<'a> {
        CallOptions {
            deadline,
            per_try_timeout: route.per_try_timeout,
            retryable: route.retryable.unwrap_or(http_method == "GET"),
            retry_on: route.retry_on.as_deref(),
        }
    }
}

/// What a call ended with, and how many attempts it took.
#[derive(Debug)]
pub struct CallOutcome {
    /// The backend's answer, or why there is none.
    pub result: Result<GrpcReply, UpstreamError>,
    /// Attempts made (0 when every breaker was open).
    pub attempts: u32,
    /// The endpoint of the last attempt (`None` when no attempt was made).
    pub endpoint: Option<Arc<Endpoint>>,
}

impl CallOutcome {
    /// The attempt-count header for the response.
    pub fn attempts_header(&self) -> HeaderMap {
        CallOutcome::attempts_only(self.attempts)
    }

    /// The attempt-count header for a call that took `attempts`.
    pub fn attempts_only(attempts: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(ATTEMPTS_HEADER),
            HeaderValue::from(attempts),
        );
        headers
    }
}

/// A configured gRPC backend: its endpoints, retry policy and budget, and stats.
#[derive(Debug)]
pub struct Upstream {
    /// Name routes refer to.
    pub name: String,
    /// The first configured endpoint.
    authority: String,
    /// Endpoints now: one per configured entry, or per address its host name resolved to
    /// ([`resolve`] replaces the list; calls in flight keep the list they started with).
    endpoints: arc_swap::ArcSwap<Vec<Arc<Endpoint>>>,
    /// The config it was built from (resolved endpoints are built from it).
    config: UpstreamConfig,
    retry: RetryConfig,
    budget: RetryBudget,
    /// Counters of this upstream.
    pub stats: UpstreamStats,
    health_check: Option<HealthCheckConfig>,
    /// Set once health-check tasks run for this upstream.
    health_started: AtomicBool,
    /// Set once the DNS re-resolution task runs for this upstream.
    resolve_started: AtomicBool,
}

/// Releases a half-open probe slot when an attempt ends without an outcome (client went away).
struct ProbeGuard<'a>(Option<&'a Breaker>);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.0 {
            breaker.release_probe();
        }
    }
}

impl Upstream {
    /// Creates the backend's handle; no connection is made until the first call.
    pub fn new(config: &UpstreamConfig) -> Upstream {
        Upstream {
            name: config.name.clone(),
            authority: config.authority.clone(),
            endpoints: arc_swap::ArcSwap::from_pointee(
                config
                    .endpoints
                    .iter()
                    .map(|a| Arc::new(Endpoint::new(config, a)))
                    .collect(),
            ),
            config: config.clone(),
            budget: RetryBudget::new(&config.retry),
            retry: config.retry.clone(),
            stats: UpstreamStats::default(),
            health_check: config.health_check.clone(),
            health_started: AtomicBool::new(false),
            resolve_started: AtomicBool::new(false),
        }
    }

    /// The `host:port` of the first configured endpoint.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The endpoints now.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// The config this upstream was built from.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Largest response message accepted from this backend (`max_response_bytes`).
    pub fn max_response_bytes(&self) -> usize {
        self.config.max_response_bytes
    }

    /// Counters and gauges now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot(&self.endpoints())
    }

    fn note(&self, endpoint: &Endpoint, transition: Transition) {
        let events = &endpoint.events;
        let endpoint = &endpoint.authority;
        match transition {
            Transition::Opened => {
                bump(&events.opened);
                bump(&self.stats.breaker_opened);
                tracing::warn!(upstream = %self.name, %endpoint, "circuit breaker opened");
            }
            Transition::HalfOpened => {
                bump(&events.half_opened);
                bump(&self.stats.breaker_half_opened);
                tracing::info!(upstream = %self.name, %endpoint, "circuit breaker half-open: probing");
            }
            Transition::Closed => {
                bump(&events.closed);
                bump(&self.stats.breaker_closed);
                tracing::info!(upstream = %self.name, %endpoint, "circuit breaker closed");
            }
        }
    }

    /// Sends one request message to `grpc_path` (`/pkg.Service/Method`), retrying as `options`
    /// allow, and never past `options.deadline`.
    pub async fn call(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        options: &CallOptions<'_>,
    ) -> CallOutcome {
        self.call_with(options, |endpoint: Arc<Endpoint>, timeout| {
            let (message, metadata) = (message.clone(), metadata.clone());
            async move {
                endpoint
                    .attempt(grpc_path, message, metadata, timeout)
                    .await
            }
        })
        .await
    }

    /// The call loop, with the attempt itself given by the caller (the network in [`Upstream::call`];
    /// scripted outcomes in the paused-clock tests of the loop's timing).
    async fn call_with<F, Fut>(&self, options: &CallOptions<'_>, attempt: F) -> CallOutcome
    where
        F: Fn(Arc<Endpoint>, Duration) -> Fut,
        Fut: Future<Output = Result<GrpcReply, endpoint::AttemptError>>,
    {
        let started = Instant::now();
        let deadline_at = started + options.deadline;
        self.budget.record_request(started);
        bump(&self.stats.requests);
        let retry_codes = options.retry_on.unwrap_or(&self.retry.retryable_codes);
        let mut attempts = 0u32;
        let mut last: Option<Result<GrpcReply, UpstreamError>> = None;
        // The endpoint that just failed, avoided by the retry when another one exists.
        let mut avoid: Option<Arc<Endpoint>> = None;
        // The endpoint of the latest attempt, reported with the outcome (access log).
        let mut used: Option<Arc<Endpoint>> = None;
        loop {
            let now = Instant::now();
            // The first attempt starts the call: it gets the whole deadline, as sent by the client.
            let remaining = if attempts == 0 {
                options.deadline
            } else {
                deadline_at.saturating_duration_since(now)
            };
            if remaining.is_zero() {
                return CallOutcome {
                    endpoint: used,
                    ..self.deadline_exceeded(options, attempts)
                };
            }
            // Each attempt sees the endpoints now: one that DNS dropped takes no new attempts.
            let endpoints = self.endpoints();
            let avoid_index = avoid
                .as_ref()
                .and_then(|a| endpoints.iter().position(|e| Arc::ptr_eq(e, a)));
            let (index, probe) = match balancer::pick(&endpoints, avoid_index, now, |i, t| {
                self.note(&endpoints[i], t);
            }) {
                Pick::Endpoint { index, probe } => (index, probe),
                Pick::AllOpen { retry_after } => {
                    let result = last.unwrap_or_else(|| {
                        bump(&self.stats.rejected_open);
                        Err(UpstreamError::CircuitOpen {
                            upstream: self.name.clone(),
                            retry_after,
                        })
                    });
                    return CallOutcome {
                        result,
                        attempts,
                        endpoint: used,
                    };
                }
            };
            let endpoint = &endpoints[index];
            let try_timeout = options
                .per_try_timeout
                .map_or(remaining, |t| t.min(remaining));
            attempts += 1;
            used = Some(endpoint.clone());
            bump(&self.stats.attempts);
            let mut guard = ProbeGuard(probe.then_some(&endpoint.breaker));
            let result = attempt(endpoint.clone(), try_timeout).await;
            let outcome = match &result {
                Ok(reply) => AttemptOutcome::Status(reply.status.code),
                Err(e) => e.outcome,
            };
            let verdict = retry::classify(outcome, retry_codes);
            if outcome != AttemptOutcome::Backoff {
                guard.0 = None;
                let transition = if verdict.failure {
                    endpoint.breaker.on_failure(Instant::now())
                } else {
                    endpoint.breaker.on_success()
                };
                if let Some(t) = transition {
                    self.note(endpoint, t);
                }
            }
            drop(guard);
            if outcome == AttemptOutcome::TimedOut && Instant::now() >= deadline_at {
                return CallOutcome {
                    endpoint: used,
                    ..self.deadline_exceeded(options, attempts)
                };
            }
            // A fast refusal during reconnect backoff says less than the dial error before it.
            if outcome != AttemptOutcome::Backoff || last.is_none() {
                last = Some(result.map_err(|e| e.error));
            }
            let may_retry = match verdict.retry {
                Retry::Never => false,
                Retry::IfRetryable => options.retryable,
                Retry::Always => true,
            };
            if !may_retry || attempts > self.retry.max_retries {
                break;
            }
            let now = Instant::now();
            let wait = retry::backoff(&self.retry, attempts - 1, random_unit());
            if now + wait >= deadline_at {
                break;
            }
            if !self.budget.try_retry(now) {
                bump(&self.stats.budget_exhausted);
                tracing::debug!(upstream = %self.name, "retry budget spent; not retrying");
                break;
            }
            bump(&self.stats.retries);
            tokio::time::sleep(wait).await;
            avoid = Some(endpoints[index].clone());
        }
        CallOutcome {
            result: last.unwrap_or_else(|| self.deadline_exceeded(options, attempts).result),
            attempts,
            endpoint: used,
        }
    }

    fn deadline_exceeded(&self, options: &CallOptions<'_>, attempts: u32) -> CallOutcome {
        CallOutcome {
            result: Err(UpstreamError::DeadlineExceeded {
                upstream: self.name.clone(),
                timeout: options.deadline,
            }),
            attempts,
            endpoint: None,
        }
    }
}

/// A fast, process-wide pseudo-random number (splitmix64 over a randomly seeded counter): enough
/// for jitter and balancing choices, which need spread, not secrecy.
pub(crate) fn random_u64() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut seed = STATE.load(Ordering::Relaxed);
    if seed == 0 {
        seed = RandomState::new().hash_one(0u8) | 1;
        let _ = STATE.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pseudo-random number in `0..1`.
fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod call_tests;
