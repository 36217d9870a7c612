//! Validated resilience settings of an upstream (retries, circuit breaker, health checks) and of a
//! route (which calls may be retried, per-try timeout). Defaults are the TAI design's numbers.

use std::time::Duration;

/// A fraction between 0 and 1 (`0.2` = 20 %), comparable so configs can be compared on reload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl Eq for Ratio {}

/// `upstreams.<name>.retry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt (3: at most 4 attempts).
    pub max_retries: u32,
    /// Backoff before the first retry; doubles for each further one.
    pub base_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Fraction of each backoff that is randomised (0: none, 1: anywhere in `0..=backoff`).
    pub jitter: Ratio,
    /// Retries allowed per request sent to the upstream (the retry budget).
    pub budget_ratio: Ratio,
    /// Retries always allowed per budget window, so a quiet upstream can still retry.
    pub budget_min_retries: u32,
    /// gRPC codes a retryable route retries (`UNAVAILABLE`).
    pub retryable_codes: Vec<i32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 3,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
            jitter: Ratio(0.5),
            budget_ratio: Ratio(0.2),
            budget_min_retries: 10,
            retryable_codes: vec![14],
        }
    }
}

/// Largest `circuit_breaker.distinct_clients`: a breaker holds at most this many client hashes.
pub const MAX_DISTINCT_CLIENTS: u32 = 16;

/// `upstreams.<name>.circuit_breaker`: one breaker per endpoint.
///
/// What counts as a failure: transport failures (refused or reset connections, answers that are
/// not gRPC, the gateway's own timeouts) always; `failure_codes` from any client; and
/// `distinct_client_codes` only while the current run of failures comes from at least
/// `distinct_clients` clients, because a backend answers one caller's bad input with them too.
/// Every other code is an answer, not a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub consecutive_failures: u32,
    /// How long an open breaker refuses traffic before letting a probe through.
    pub open_for: Duration,
    /// Consecutive probe successes that close it again.
    pub half_open_successes: u32,
    /// gRPC codes that are failures whoever called (`UNAVAILABLE`, `DEADLINE_EXCEEDED`).
    pub failure_codes: Vec<i32>,
    /// gRPC codes that are failures only when several clients get them (`INTERNAL`, `UNKNOWN`,
    /// `DATA_LOSS`); a `DEADLINE_EXCEEDED` under a deadline the client shortened is one too.
    pub distinct_client_codes: Vec<i32>,
    /// Distinct clients a run of failures must come from before `distinct_client_codes` count.
    pub distinct_clients: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            open_for: Duration::from_secs(30),
            half_open_successes: 2,
            failure_codes: vec![14, 4],
            distinct_client_codes: vec![13, 2, 15],
            distinct_clients: 3,
        }
    }
}

/// `upstreams.<name>.health_check`: present = active checks on, with these defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Time between two checks of one endpoint.
    pub interval: Duration,
    /// Deadline of one check.
    pub timeout: Duration,
    /// Consecutive failed checks that take an endpoint out of rotation.
    pub unhealthy_threshold: u32,
    /// Consecutive passed checks that put it back.
    pub healthy_threshold: u32,
    /// The `service` asked about (`""`: the whole server).
    pub service: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            unhealthy_threshold: 2,
            healthy_threshold: 1,
            service: String::new(),
        }
    }
}

/// Per-route retry settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteRetryConfig {
    /// Whether failed calls that reached the backend may be retried; `None`: GET bindings only.
    pub retryable: Option<bool>,
    /// Codes retried on this route instead of the upstream's `retryable_codes`.
    pub retry_on: Option<Vec<i32>>,
    /// Deadline of one attempt (the whole call stays bounded by the route's `timeout`).
    pub per_try_timeout: Option<Duration>,
}

/// gRPC code names (`google/rpc/code.proto`), in code order.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of a gRPC status code (`14` → `UNAVAILABLE`).
pub fn code_name(code: i32) -> Option<&'static str> {
    usize::try_from(code)
        .ok()
        .and_then(|i| CODE_NAMES.get(i))
        .copied()
}

/// The code of a gRPC status name (any case), or of its number.
pub fn parse_code(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..17).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    CODE_NAMES
        .iter()
        .position(|n| *n == upper)
        .filter(|i| *i != 0)
        .and_then(|i| i32::try_from(i).ok())
}
