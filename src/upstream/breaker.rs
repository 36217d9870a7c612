//! The circuit breaker of one endpoint: Healthy (closed) → `consecutive_failures` failures in a row
//! → Open (no traffic) → after `open_for` → HalfOpen (one probe at a time) → `half_open_successes`
//! successes in a row → Healthy; a failed probe reopens it.
//!
//! Time is `tokio::time::Instant`, passed in by the caller, so the state machine is tested on
//! tokio's paused clock with the real 30 s numbers.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::BreakerConfig;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows; counting consecutive failures.
    Closed,
    /// No traffic until the open interval ends.
    Open,
    /// Probes flow, one at a time, until enough succeed or one fails.
    HalfOpen,
}

/// A state change, returned so the caller can log it once and count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed or HalfOpen → Open.
    Opened,
    /// Open → HalfOpen.
    HalfOpened,
    /// HalfOpen → Closed.
    Closed,
}

/// Whether a call may go to the endpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes; `probe` when this call is the half-open probe (it must report its outcome or
    /// [`Breaker::release_probe`]).
    Allowed {
        /// The call is the one half-open probe.
        probe: bool,
    },
    /// No: open (or probing) for at least this long still.
    Rejected {
        /// Time until a probe may be let through.
        retry_after: Duration,
    },
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { successes: u32, probing: bool },
}

/// One endpoint's breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state (an open breaker whose interval has passed reads as HalfOpen).
    pub fn state(&self, now: Instant) -> BreakerState {
        match &*self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now < *until => BreakerState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether the breaker would admit a call now, without taking the probe slot.
    pub fn would_admit(&self, now: Instant) -> bool {
        match &*self.lock() {
            Inner::Closed { .. } => true,
            Inner::Open { until } => now >= *until,
            Inner::HalfOpen { probing, .. } => !probing,
        }
    }

    /// Admits a call or refuses it; an expired open interval turns HalfOpen here.
    pub fn admit(&self, now: Instant) -> (Admission, Option<Transition>) {
        let mut inner = self.lock();
        let mut transition = None;
        if let Inner::Open { until } = *inner {
            if now < until {
                return (
                    Admission::Rejected {
                        retry_after: until - now,
                    },
                    None,
                );
            }
            *inner = Inner::HalfOpen {
                successes: 0,
                probing: false,
            };
            transition = Some(Transition::HalfOpened);
        }
        let admission = match &mut *inner {
            Inner::Closed { .. } => Admission::Allowed { probe: false },
            Inner::HalfOpen { probing, .. } if !*probing => {
                *probing = true;
                Admission::Allowed { probe: true }
            }
            // A probe is out: the next one can go as soon as it comes back.
            _ => Admission::Rejected {
                retry_after: Duration::ZERO,
            },
        };
        (admission, transition)
    }

    /// Time until an open breaker lets a probe through (zero when it would now).
    pub fn retry_after(&self, now: Instant) -> Duration {
        match &*self.lock() {
            Inner::Open { until } => until.saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }

    /// A call that was admitted succeeded (or failed in a way that is not the endpoint's fault).
    pub fn on_success(&self) -> Option<Transition> {
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed { failures } => {
                *failures = 0;
                None
            }
            Inner::HalfOpen { successes, probing } => {
                *successes += 1;
                *probing = false;
                if *successes >= self.config.half_open_successes {
                    *inner = Inner::Closed { failures: 0 };
                    Some(Transition::Closed)
                } else {
                    None
                }
            }
            Inner::Open { .. } => None,
        }
    }

    /// A call that was admitted failed (UNAVAILABLE, INTERNAL, UNKNOWN, deadline, refused/reset).
    pub fn on_failure(&self, now: Instant) -> Option<Transition> {
        let mut inner = self.lock();
        let open = match &mut *inner {
            Inner::Closed { failures } => {
                *failures += 1;
                *failures >= self.config.consecutive_failures
            }
            Inner::HalfOpen { .. } => true,
            Inner::Open { .. } => false,
        };
        if open {
            *inner = Inner::Open {
                until: now + self.config.open_for,
            };
            Some(Transition::Opened)
        } else {
            None
        }
    }

    /// A probe ended without an outcome (the caller went away): let the next one through.
    pub fn release_probe(&self) {
        if let Inner::HalfOpen { probing, .. } = &mut *self.lock() {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig::default())
    }

    fn allowed(b: &Breaker) -> bool {
        matches!(b.admit(Instant::now()).0, Admission::Allowed { .. })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_breaker_after_five_consecutive_failures() {
        let b = breaker();
        for _ in 0..4 {
            assert!(allowed(&b));
            assert_eq!(b.on_failure(Instant::now()), None);
        }
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
        assert_eq!(b.on_failure(Instant::now()), Some(Transition::Opened));
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        assert_eq!(
            b.admit(Instant::now()).0,
            Admission::Rejected {
                retry_after: Duration::from_secs(30)
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let b = breaker();
        for _ in 0..4 {
            b.on_failure(Instant::now());
        }
        b.on_success();
        for _ in 0..4 {
            assert_eq!(b.on_failure(Instant::now()), None);
        }
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn full_cycle_open_half_open_closed_on_the_real_numbers() {
        let b = breaker();
        for _ in 0..5 {
            b.on_failure(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(b.retry_after(Instant::now()), Duration::from_secs(1));
        assert!(!allowed(&b));
        tokio::time::advance(Duration::from_secs(1)).await;
        let (admission, transition) = b.admit(Instant::now());
        assert_eq!(admission, Admission::Allowed { probe: true });
        assert_eq!(transition, Some(Transition::HalfOpened));
        // One probe at a time.
        assert!(!allowed(&b));
        assert_eq!(b.on_success(), None);
        assert_eq!(
            b.admit(Instant::now()).0,
            Admission::Allowed { probe: true }
        );
        assert_eq!(b.on_success(), Some(Transition::Closed));
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
        assert_eq!(
            b.admit(Instant::now()).0,
            Admission::Allowed { probe: false }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_a_full_interval() {
        let b = breaker();
        for _ in 0..5 {
            b.on_failure(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(allowed(&b));
        assert_eq!(b.on_failure(Instant::now()), Some(Transition::Opened));
        assert_eq!(b.retry_after(Instant::now()), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_probe_lets_the_next_one_through() {
        let b = breaker();
        for _ in 0..5 {
            b.on_failure(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(allowed(&b));
        assert!(!allowed(&b));
        b.release_probe();
        assert!(allowed(&b));
    }
}
