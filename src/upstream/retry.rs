//! When a failed attempt is tried again, and how long to wait first.
//!
//! - [`classify`]: what one attempt's outcome means — is it the endpoint's fault (it feeds the
//!   breaker), and may it be retried always (the request never left: refused connection), only on
//!   routes marked retryable (it reached the backend: `UNAVAILABLE`, reset, per-try timeout), or never.
//! - [`backoff`]: exponential from `base_backoff`, capped at `max_backoff`, with `jitter` of it
//!   randomised; the call loop never sleeps past the deadline.
//! - [`RetryBudget`]: retries of an upstream stay below `budget_ratio` of its requests (plus
//!   `budget_min_retries`) over a sliding 10 s window, so retries cannot multiply an outage.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RetryConfig;

/// The length of one retry-budget window.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// gRPC codes that count as the endpoint failing (UNKNOWN, DEADLINE_EXCEEDED, INTERNAL,
/// UNAVAILABLE). Client-side codes (INVALID_ARGUMENT, NOT_FOUND, ...) are answers, not failures.
const FAILURE_CODES: [i32; 4] = [2, 4, 13, 14];

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
    /// The endpoint failed (counts toward opening its breaker).
    pub failure: bool,
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
}

/// Classifies one attempt; `retry_codes` are the codes the route retries.
pub fn classify(outcome: AttemptOutcome, retry_codes: &[i32]) -> Verdict {
    match outcome {
        AttemptOutcome::Status(0) => Verdict {
            failure: false,
            retry: Retry::Never,
        },
        AttemptOutcome::Status(code) => Verdict {
            failure: FAILURE_CODES.contains(&code),
            retry: if retry_codes.contains(&code) {
                Retry::IfRetryable
            } else {
                Retry::Never
            },
        },
        AttemptOutcome::NotSent => Verdict {
            failure: true,
            retry: Retry::Always,
        },
        AttemptOutcome::Backoff => Verdict {
            failure: false,
            retry: Retry::Always,
        },
        AttemptOutcome::Reset | AttemptOutcome::TimedOut => Verdict {
            failure: true,
            retry: Retry::IfRetryable,
        },
        AttemptOutcome::Invalid => Verdict {
            failure: true,
            retry: Retry::Never,
        },
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

    #[test]
    fn refused_connections_always_retry_and_answers_do_not() {
        let codes = [14];
        let v = classify(AttemptOutcome::NotSent, &codes);
        assert_eq!((v.failure, v.retry), (true, Retry::Always));
        let v = classify(AttemptOutcome::Status(14), &codes);
        assert_eq!((v.failure, v.retry), (true, Retry::IfRetryable));
        let v = classify(AttemptOutcome::Status(13), &codes);
        assert_eq!((v.failure, v.retry), (true, Retry::Never));
        let v = classify(AttemptOutcome::Status(5), &codes);
        assert_eq!((v.failure, v.retry), (false, Retry::Never));
        let v = classify(AttemptOutcome::Status(3), &codes);
        assert!(!v.failure);
        let v = classify(AttemptOutcome::Reset, &codes);
        assert_eq!((v.failure, v.retry), (true, Retry::IfRetryable));
        let v = classify(AttemptOutcome::Invalid, &codes);
        assert_eq!((v.failure, v.retry), (true, Retry::Never));
        let v = classify(AttemptOutcome::Status(0), &codes);
        assert_eq!((v.failure, v.retry), (false, Retry::Never));
    }

    #[test]
    fn configured_codes_are_retried_without_becoming_failures() {
        let v = classify(AttemptOutcome::Status(8), &[8, 14]);
        assert_eq!((v.failure, v.retry), (false, Retry::IfRetryable));
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
