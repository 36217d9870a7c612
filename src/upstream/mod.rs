//! Calls to gRPC backends: one [`Upstream`] per configured backend, with one or more endpoints;
//! [`Upstream::call`] runs the call loop — pick an endpoint, attempt with a per-try timeout,
//! classify the outcome, feed the endpoint's breaker, and retry with backoff while the deadline,
//! the retry policy and the retry budget allow.
//!
//! Layout:
//! - [`codec`] frames and unframes gRPC messages and reads status trailers;
//! - [`endpoint`]: one HTTP/2 connection per endpoint, reconnect backoff, one attempt;
//! - [`balancer`]: power-of-two-choices least-request over the endpoints that take traffic;
//! - [`breaker`]: the per-endpoint circuit breaker state machine;
//! - [`retry`]: outcome classification, backoff, retry budget;
//! - [`health`]: active `grpc.health.v1` checks;
//! - [`stats`]: counters and gauges for the operations side.

pub mod balancer;
pub mod breaker;
pub mod codec;
pub mod endpoint;
pub mod health;
pub mod retry;
pub mod stats;

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
}

impl CallOutcome {
    /// The attempt-count header for the response.
    pub fn attempts_header(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(ATTEMPTS_HEADER),
            HeaderValue::from(self.attempts),
        );
        headers
    }
}

/// A configured gRPC backend: its endpoints, retry policy and budget, and stats.
#[derive(Debug)]
pub struct Upstream {
    /// Name routes refer to.
    pub name: String,
    /// Endpoints, in config order.
    pub endpoints: Vec<Arc<Endpoint>>,
    retry: RetryConfig,
    budget: RetryBudget,
    /// Counters of this upstream.
    pub stats: UpstreamStats,
    health_check: Option<HealthCheckConfig>,
    /// Set once health-check tasks run for this upstream.
    health_started: AtomicBool,
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
            endpoints: config
                .endpoints
                .iter()
                .map(|a| Arc::new(Endpoint::new(config, a)))
                .collect(),
            budget: RetryBudget::new(&config.retry),
            retry: config.retry.clone(),
            stats: UpstreamStats::default(),
            health_check: config.health_check.clone(),
            health_started: AtomicBool::new(false),
        }
    }

    /// The `host:port` of the first endpoint.
    pub fn authority(&self) -> &str {
        self.endpoints
            .first()
            .map(|e| e.authority.as_str())
            .unwrap_or_default()
    }

    /// Counters and gauges now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot(&self.endpoints)
    }

    fn note(&self, index: usize, transition: Transition) {
        let endpoint = &self.endpoints[index].authority;
        match transition {
            Transition::Opened => {
                bump(&self.stats.breaker_opened);
                tracing::warn!(upstream = %self.name, %endpoint, "circuit breaker opened");
            }
            Transition::HalfOpened => {
                bump(&self.stats.breaker_half_opened);
                tracing::info!(upstream = %self.name, %endpoint, "circuit breaker half-open: probing");
            }
            Transition::Closed => {
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
        let mut avoid = None;
        loop {
            let now = Instant::now();
            // The first attempt starts the call: it gets the whole deadline, as sent by the client.
            let remaining = if attempts == 0 {
                options.deadline
            } else {
                deadline_at.saturating_duration_since(now)
            };
            if remaining.is_zero() {
                return self.deadline_exceeded(options, attempts);
            }
            let (index, probe) = match balancer::pick(&self.endpoints, avoid, now, |i, t| {
                self.note(i, t);
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
                    return CallOutcome { result, attempts };
                }
            };
            let endpoint = &self.endpoints[index];
            let try_timeout = options
                .per_try_timeout
                .map_or(remaining, |t| t.min(remaining));
            attempts += 1;
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
                    self.note(index, t);
                }
            }
            drop(guard);
            if outcome == AttemptOutcome::TimedOut && Instant::now() >= deadline_at {
                return self.deadline_exceeded(options, attempts);
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
            avoid = Some(index);
        }
        CallOutcome {
            result: last.unwrap_or_else(|| self.deadline_exceeded(options, attempts).result),
            attempts,
        }
    }

    fn deadline_exceeded(&self, options: &CallOptions<'_>, attempts: u32) -> CallOutcome {
        CallOutcome {
            result: Err(UpstreamError::DeadlineExceeded {
                upstream: self.name.clone(),
                timeout: options.deadline,
            }),
            attempts,
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
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(300)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::from_millis(29_001)), 30);
    }

    #[test]
    fn get_routes_are_retryable_by_default_and_others_only_when_configured() {
        let deadline = Duration::from_secs(10);
        let default = RouteRetryConfig::default();
        assert!(CallOptions::for_route(&default, "GET", deadline).retryable);
        assert!(!CallOptions::for_route(&default, "POST", deadline).retryable);
        let on = RouteRetryConfig {
            retryable: Some(true),
            ..RouteRetryConfig::default()
        };
        assert!(CallOptions::for_route(&on, "POST", deadline).retryable);
        let off = RouteRetryConfig {
            retryable: Some(false),
            ..RouteRetryConfig::default()
        };
        assert!(!CallOptions::for_route(&off, "GET", deadline).retryable);
    }

    use crate::config::{BreakerConfig, Ratio};
    use endpoint::AttemptError;

    fn upstream(retry: RetryConfig) -> Upstream {
        Upstream::new(&UpstreamConfig {
            name: "u".to_owned(),
            authority: "127.0.0.1:1".to_owned(),
            connect_timeout: Duration::from_secs(1),
            max_response_bytes: 1024,
            endpoints: vec!["127.0.0.1:1".to_owned()],
            retry: RetryConfig {
                jitter: Ratio(0.0),
                ..retry
            },
            circuit_breaker: BreakerConfig::default(),
            health_check: None,
        })
    }

    fn options(deadline_ms: u64, per_try_ms: Option<u64>, retryable: bool) -> CallOptions<'static> {
        CallOptions {
            deadline: Duration::from_millis(deadline_ms),
            per_try_timeout: per_try_ms.map(Duration::from_millis),
            retryable,
            retry_on: None,
        }
    }

    fn reply(code: i32) -> Result<GrpcReply, AttemptError> {
        Ok(GrpcReply {
            status: GrpcStatus {
                code,
                message: String::new(),
                details: None,
            },
            message: None,
            metadata: HeaderMap::new(),
        })
    }

    fn code(outcome: &CallOutcome) -> Option<i32> {
        outcome.result.as_ref().ok().map(|r| r.status.code)
    }

    /// An attempt that takes its whole timeout and times out.
    async fn hang(timeout: Duration) -> Result<GrpcReply, AttemptError> {
        tokio::time::sleep(timeout).await;
        Err(AttemptError {
            error: UpstreamError::DeadlineExceeded {
                upstream: "u".to_owned(),
                timeout,
            },
            outcome: AttemptOutcome::TimedOut,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_exponentially_then_return_the_last_answer() {
        let u = upstream(RetryConfig::default());
        let started = Instant::now();
        let outcome = u
            .call_with(&options(10_000, None, true), |_, _| async { reply(14) })
            .await;
        assert_eq!((outcome.attempts, code(&outcome)), (4, Some(14)));
        assert_eq!(started.elapsed(), Duration::from_millis(25 + 50 + 100));
        assert_eq!(u.stats().retries, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn no_backoff_waits_past_the_deadline() {
        let u = upstream(RetryConfig::default());
        let started = Instant::now();
        let outcome = u
            .call_with(&options(100, None, true), |_, _| async { reply(14) })
            .await;
        // Tries at 0, 25 and 75 ms; the next wait (100 ms) would end past the deadline.
        assert_eq!((outcome.attempts, code(&outcome)), (3, Some(14)));
        assert_eq!(started.elapsed(), Duration::from_millis(75));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_a_slow_attempt_exactly() {
        let u = upstream(RetryConfig::default());
        let started = Instant::now();
        let outcome = u
            .call_with(&options(250, None, true), |_, timeout| hang(timeout))
            .await;
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert_eq!(outcome.attempts, 1);
        assert!(matches!(
            outcome.result,
            Err(UpstreamError::DeadlineExceeded { timeout, .. }) if timeout == Duration::from_millis(250)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn per_try_timeouts_retry_within_the_deadline() {
        let u = upstream(RetryConfig::default());
        let started = Instant::now();
        let outcome = u
            .call_with(&options(250, Some(100), true), |_, timeout| hang(timeout))
            .await;
        // 100 ms try, 25 ms wait, 100 ms try; a 50 ms wait would end past 250 ms.
        assert_eq!(outcome.attempts, 2);
        assert_eq!(started.elapsed(), Duration::from_millis(225));
        assert!(matches!(
            outcome.result,
            Err(UpstreamError::DeadlineExceeded { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_calls_are_retried_only_when_the_request_never_left() {
        let u = upstream(RetryConfig::default());
        let outcome = u
            .call_with(&options(10_000, None, false), |_, _| async { reply(14) })
            .await;
        assert_eq!((outcome.attempts, code(&outcome)), (1, Some(14)));
        let tries = std::sync::atomic::AtomicU32::new(0);
        let outcome = u
            .call_with(&options(10_000, None, false), |_, _| {
                let first = tries.fetch_add(1, Ordering::Relaxed) == 0;
                async move {
                    if first {
                        Err(AttemptError {
                            error: UpstreamError::Unavailable {
                                upstream: "u".to_owned(),
                                reason: "connect failed".to_owned(),
                            },
                            outcome: AttemptOutcome::NotSent,
                        })
                    } else {
                        reply(0)
                    }
                }
            })
            .await;
        assert_eq!((outcome.attempts, code(&outcome)), (2, Some(0)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_fails_fast_until_the_probe() {
        let u = upstream(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        });
        let call = async || {
            u.call_with(&options(10_000, None, true), |_, _| async { reply(13) })
                .await
        };
        for _ in 0..5 {
            assert_eq!(call().await.attempts, 1);
        }
        let fast = call().await;
        assert_eq!(fast.attempts, 0);
        assert!(matches!(
            fast.result,
            Err(UpstreamError::CircuitOpen { retry_after, .. }) if retry_after == Duration::from_secs(30)
        ));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(call().await.attempts, 1, "the half-open probe goes through");
        assert_eq!(u.stats().endpoints_open, 1, "the failed probe reopened it");
    }

    #[test]
    fn random_numbers_stay_in_range_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
