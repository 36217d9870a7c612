//! When a failed attempt is tried again, and how long to wait first.
//!
//! - [`classify`]: what one attempt's outcome means — what it says about the endpoint
//!   ([`Evidence`], fed to its breaker), and may it be retried always (the request never left:
//!   refused connection), only on routes marked retryable (it reached the backend: `UNAVAILABLE`,
//!   reset, per-try timeout), or never.
//! - [`backoff`]: exponential from `base_backoff`, capped at `max_backoff`, with `jitter` of it
//!   randomised; the call loop never sleeps past the deadline.
//! - [`RetryBudget`]: retries of an upstream stay below `budget_ratio` of its requests (plus
//!   `budget_min_retries`) over a sliding 10 s window, so retries cannot multiply an outage.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{BreakerConfig, RetryConfig};

/// The length of one retry-budget window.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// `CANCELLED` (`google/rpc/code.proto`).
pub(super) const CANCELLED: i32 = 1;

/// `DEADLINE_EXCEEDED` (`google/rpc/code.proto`).
const DEADLINE_EXCEEDED: i32 = 4;

/// What one attempt says about the endpoint's health: what its breaker is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The endpoint answered (an error code a client's request explains, such as
    /// `INVALID_ARGUMENT` or `NOT_FOUND`, is an answer too): ends a run of failures.
    Healthy,
    /// The endpoint failed whoever called: a transport failure, an answer that is not gRPC, the
    /// gateway's own timeout, or one of `failure_codes`.
    Failure,
    /// A failure one client's request can cause: one of `distinct_client_codes`, or a deadline the
    /// client shortened passing. Counts only when the run of failures comes from
    /// `distinct_clients` clients.
    ClientFailure,
    /// Nothing learnt: the attempt was refused during reconnect backoff, or the client's own
    /// request body broke off.
    None,
}

/// May this outcome be retried?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// No: a final answer.
    Never,
    /// Only on routes whose calls are safe to repeat (the request may have been processed).
    IfRetryable,
    /// Yes: the request never reached the backend.
    Always,
}

/// What one attempt's outcome means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// What it says about the endpoint (fed to its breaker).
    pub evidence: Evidence,
    /// Whether to try again.
    pub retry: Retry,
}

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The backend answered with this gRPC code.
    Status(i32),
    /// No connection: refused, connect timeout, HTTP/2 handshake failed, or refused stream.
    NotSent,
    /// Not tried: the endpoint is waiting out its reconnect backoff (not a new failure).
    Backoff,
    /// The connection broke after the request may have been sent.
    Reset,
    /// The per-try timeout passed.
    TimedOut,
    /// The backend answered with something that is not gRPC.
    Invalid,
    /// The client's streamed request body broke off (its connection failed, or an element of
    /// its stream was malformed), which reset the call: the client's doing, not the endpoint's.
    RequestAborted,
    /// The attempt's timeout passed while the client was still sending its streamed request body.
    RequestStalled,
}

/// Classifies one attempt: `retry_codes` are the codes the route retries, `breaker` says which
/// codes are failures, and `client_deadline` is set when the attempt was bounded by a deadline
/// the client shortened (its `grpc-timeout`), not by the route's own timeouts.
pub fn classify(
    outcome: AttemptOutcome,
    retry_codes: &[i32],
    breaker: &BreakerConfig,
    client_deadline: bool,
) -> Verdict {
    let retry = match outcome {
        AttemptOutcome::Status(0) | AttemptOutcome::Invalid | AttemptOutcome::RequestAborted => {
            Retry::Never
        }
        AttemptOutcome::Status(code) if retry_codes.contains(&code) => Retry::IfRetryable,
        AttemptOutcome::Status(_) => Retry::Never,
        AttemptOutcome::NotSent | AttemptOutcome::Backoff => Retry::Always,
        AttemptOutcome::Reset | AttemptOutcome::TimedOut => Retry::IfRetryable,
        AttemptOutcome::RequestStalled => Retry::Never,
    };
    Verdict {
        evidence: evidence(outcome, breaker, client_deadline),
        retry,
    }
}

/// What `outcome` says about the endpoint (see [`classify`]).
fn evidence(outcome: AttemptOutcome, breaker: &BreakerConfig, client_deadline: bool) -> Evidence {
    match outcome {
        AttemptOutcome::Status(0) => Evidence::Healthy,
        AttemptOutcome::Status(code) if breaker.failure_codes.contains(&code) => {
            if code == DEADLINE_EXCEEDED && client_deadline {
                Evidence::ClientFailure
            } else {
                Evidence::Failure
            }
        }
        AttemptOutcome::Status(code) if breaker.distinct_client_codes.contains(&code) => {
            Evidence::ClientFailure
        }
        AttemptOutcome::Status(_) => Evidence::Healthy,
        AttemptOutcome::TimedOut if client_deadline => Evidence::ClientFailure,
        AttemptOutcome::RequestStalled => Evidence::ClientFailure,
        AttemptOutcome::NotSent
        | AttemptOutcome::Reset
        | AttemptOutcome::TimedOut
        | AttemptOutcome::Invalid => Evidence::Failure,
        AttemptOutcome::Backoff | AttemptOutcome::RequestAborted => Evidence::None,
    }
}

/// The wait before retry number `retry` (0 = the first retry): `base · 2^retry`, at most `cap`,
/// of which the `jitter` fraction is scaled by `random` (in `0..1`).
pub fn backoff(config: &RetryConfig, retry: u32, random: f64) -> Duration {
    let exp = config
        .base_backoff
        .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
        .min(config.max_backoff);
    let keep = 1.0 - config.jitter.0 * random.clamp(0.0, 1.0);
    exp.mul_f64(keep.clamp(0.0, 1.0))
}

/// Counts of one budget window.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    retries: u64,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    current: Counts,
    previous: Counts,
}

/// The retry budget of one upstream.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_retries: u32,
    window: Mutex<Window>,
}

impl RetryBudget {
    /// An empty budget starting now.
    pub fn new(config: &RetryConfig) -> RetryBudget {
        RetryBudget {
            ratio: config.budget_ratio.0,
            min_retries: config.budget_min_retries,
            window: Mutex::new(Window {
                started: Instant::now(),
                current: Counts::default(),
                previous: Counts::default(),
            }),
        }
    }

    fn with_window<T>(&self, now: Instant, f: impl FnOnce(&mut Window) -> T) -> T {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed >= BUDGET_WINDOW * 2 {
            w.previous = Counts::default();
            w.current = Counts::default();
            w.started = now;
        } else if elapsed >= BUDGET_WINDOW {
            w.previous = w.current;
            w.current = Counts::default();
            w.started += BUDGET_WINDOW;
        }
        f(&mut w)
    }

    /// A new request (not a retry) to the upstream.
    pub fn record_request(&self, now: Instant) {
        self.with_window(now, |w| w.current.requests += 1);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_retry(&self, now: Instant) -> bool {
        self.with_window(now, |w| {
            let requests = (w.current.requests + w.previous.requests) as f64;
            let retries = (w.current.retries + w.previous.retries) as f64;
            let allowed = f64::from(self.min_retries) + self.ratio * requests;
            if retries + 1.0 <= allowed {
                w.current.retries += 1;
                true
            } else {
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ratio;

    fn config() -> RetryConfig {
        RetryConfig::default()
    }

    fn verdict(outcome: AttemptOutcome, retry_codes: &[i32]) -> (Evidence, Retry) {
        let v = classify(outcome, retry_codes, &BreakerConfig::default(), false);
        (v.evidence, v.retry)
    }

    #[test]
    fn refused_connections_always_retry_and_answers_do_not() {
        use AttemptOutcome::*;
        use Evidence::*;
        let codes = [14];
        assert_eq!(verdict(NotSent, &codes), (Failure, Retry::Always));
        assert_eq!(verdict(Status(14), &codes), (Failure, Retry::IfRetryable));
        assert_eq!(verdict(Status(13), &codes), (ClientFailure, Retry::Never));
        assert_eq!(verdict(Status(5), &codes), (Healthy, Retry::Never));
        assert_eq!(verdict(Status(3), &codes).0, Healthy);
        assert_eq!(verdict(Reset, &codes), (Failure, Retry::IfRetryable));
        assert_eq!(verdict(TimedOut, &codes), (Failure, Retry::IfRetryable));
        assert_eq!(verdict(Invalid, &codes), (Failure, Retry::Never));
        assert_eq!(verdict(Status(0), &codes), (Healthy, Retry::Never));
        assert_eq!(verdict(Backoff, &codes), (Evidence::None, Retry::Always));
        assert_eq!(
            verdict(RequestAborted, &codes),
            (Evidence::None, Retry::Never)
        );
        assert_eq!(
            verdict(RequestStalled, &codes),
            (ClientFailure, Retry::Never)
        );
    }

    #[test]
    fn every_code_feeds_the_breaker_as_the_default_lists_say() {
        // google/rpc/code.proto: UNKNOWN 2, DEADLINE_EXCEEDED 4, INTERNAL 13, UNAVAILABLE 14,
        // DATA_LOSS 15.
        for code in 1..=16 {
            let expected = match code {
                4 | 14 => Evidence::Failure,
                2 | 13 | 15 => Evidence::ClientFailure,
                _ => Evidence::Healthy,
            };
            assert_eq!(
                verdict(AttemptOutcome::Status(code), &[]).0,
                expected,
                "{code}"
            );
        }
    }

    #[test]
    fn a_deadline_the_client_shortened_is_only_its_own_failure() {
        let b = BreakerConfig::default();
        for outcome in [AttemptOutcome::TimedOut, AttemptOutcome::Status(4)] {
            assert_eq!(
                classify(outcome, &[], &b, false).evidence,
                Evidence::Failure
            );
            assert_eq!(
                classify(outcome, &[], &b, true).evidence,
                Evidence::ClientFailure
            );
        }
        let v = classify(AttemptOutcome::Status(14), &[], &b, true);
        assert_eq!(
            v.evidence,
            Evidence::Failure,
            "UNAVAILABLE is never the client's"
        );
    }

    #[test]
    fn configured_code_lists_replace_the_defaults() {
        let b = BreakerConfig {
            failure_codes: vec![13],
            distinct_client_codes: vec![8],
            ..BreakerConfig::default()
        };
        let evidence = |code| classify(AttemptOutcome::Status(code), &[], &b, false).evidence;
        assert_eq!(evidence(13), Evidence::Failure);
        assert_eq!(evidence(8), Evidence::ClientFailure);
        assert_eq!(evidence(14), Evidence::Healthy);
        assert_eq!(
            classify(AttemptOutcome::Reset, &[], &b, false).evidence,
            Evidence::Failure,
            "transport failures always count"
        );
    }

    #[test]
    fn configured_codes_are_retried_without_becoming_failures() {
        let v = classify(
            AttemptOutcome::Status(8),
            &[8, 14],
            &BreakerConfig::default(),
            false,
        );
        assert_eq!(
            (v.evidence, v.retry),
            (Evidence::Healthy, Retry::IfRetryable)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut c = config();
        c.jitter = Ratio(0.0);
        let waits: Vec<u128> = (0..6).map(|i| backoff(&c, i, 0.7).as_millis()).collect();
        assert_eq!(waits, [25, 50, 100, 200, 250, 250]);
        assert_eq!(backoff(&c, 40, 0.0), c.max_backoff);
    }

    #[test]
    fn jitter_takes_at_most_its_fraction_off() {
        let c = config();
        assert_eq!(backoff(&c, 1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(&c, 1, 1.0), Duration::from_millis(25));
        assert_eq!(backoff(&c, 1, 0.5), Duration::from_micros(37_500));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_allows_the_minimum_then_the_ratio_of_requests() {
        let mut c = config();
        c.budget_min_retries = 2;
        let budget = RetryBudget::new(&c);
        let now = Instant::now();
        assert!(budget.try_retry(now));
        assert!(budget.try_retry(now));
        assert!(!budget.try_retry(now));
        for _ in 0..10 {
            budget.record_request(now);
        }
        // 2 + 20 % of 10 = 4 retries in all.
        assert!(budget.try_retry(now));
        assert!(budget.try_retry(now));
        assert!(!budget.try_retry(now));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_refills_as_windows_pass() {
        let mut c = config();
        c.budget_min_retries = 1;
        let budget = RetryBudget::new(&c);
        assert!(budget.try_retry(Instant::now()));
        assert!(!budget.try_retry(Instant::now()));
        tokio::time::advance(BUDGET_WINDOW).await;
        // The spent retry still counts in the previous window.
        assert!(!budget.try_retry(Instant::now()));
        tokio::time::advance(BUDGET_WINDOW).await;
        assert!(budget.try_retry(Instant::now()));
    }
}
