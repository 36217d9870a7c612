//! The circuit breaker of one endpoint: Healthy (closed) → `consecutive_failures` failures in a row
//! → Open (no traffic) → after `open_for` → HalfOpen (one probe at a time) → `half_open_successes`
//! successes in a row → Healthy; a failed probe reopens it.
//!
//! Failures come in two kinds ([`crate::upstream::retry::Evidence`]): failures of the endpoint
//! whoever called (refused or reset connections, `UNAVAILABLE`, ...), and failures one client's
//! request can cause (`INTERNAL` on malformed input, its own short deadline). A run of failures
//! opens the breaker when it has `consecutive_failures` of the first kind, or that many of both
//! kinds together coming from at least `distinct_clients` clients. The clients of the run are
//! kept as a small bounded set of hashes ([`ClientSet`]), cleared by any success, so one client
//! can never open a breaker on its own, however often it sends bad input. Likewise a half-open
//! probe that ends with a client's failure reopens the breaker only once `distinct_clients`
//! clients' probes did; until then it only frees the probe slot.
//!
//! Time is `tokio::time::Instant`, passed in by the caller, so the state machine is tested on
//! tokio's paused clock with the real 30 s numbers.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::client::{ClientId, ClientSet};
use super::retry::Evidence;
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
    Closed(Run),
    Open {
        until: Instant,
    },
    HalfOpen {
        successes: u32,
        probing: bool,
        /// Clients whose probes ended with a client's failure since the last success.
        clients: ClientSet,
    },
}

/// The current run of consecutive failures of a closed breaker.
#[derive(Debug, Default)]
struct Run {
    /// Failures of the endpoint whoever called.
    failures: u32,
    /// Failures one client's request can cause.
    client_failures: u32,
    /// The clients the run's failures came from.
    clients: ClientSet,
}

impl Run {
    /// Whether the run opens the breaker.
    fn opens(&self, config: &BreakerConfig) -> bool {
        let all = self.failures.saturating_add(self.client_failures);
        self.failures >= config.consecutive_failures
            || (all >= config.consecutive_failures && self.clients.len() >= config.distinct_clients)
    }
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
            inner: Mutex::new(Inner::Closed(Run::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state (an open breaker whose interval has passed reads as HalfOpen).
    pub fn state(&self, now: Instant) -> BreakerState {
        match &*self.lock() {
            Inner::Closed(_) => BreakerState::Closed,
            Inner::Open { until } if now < *until => BreakerState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether the breaker would admit a call now, without taking the probe slot.
    pub fn would_admit(&self, now: Instant) -> bool {
        match &*self.lock() {
            Inner::Closed(_) => true,
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
                clients: ClientSet::new(),
            };
            transition = Some(Transition::HalfOpened);
        }
        let admission = match &mut *inner {
            Inner::Closed(_) => Admission::Allowed { probe: false },
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

    /// Feeds an admitted call's outcome: what it says about the endpoint, and who called.
    pub fn record(&self, evidence: Evidence, client: ClientId, now: Instant) -> Option<Transition> {
        match evidence {
            Evidence::Healthy => self.on_success(),
            Evidence::Failure => self.on_failure(now, client),
            Evidence::ClientFailure => self.on_client_failure(now, client),
            Evidence::None => {
                self.release_probe();
                None
            }
        }
    }

    /// A call that was admitted succeeded (or failed in a way that is not the endpoint's fault).
    pub fn on_success(&self) -> Option<Transition> {
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed(run) => {
                *run = Run::default();
                None
            }
            Inner::HalfOpen {
                successes,
                probing,
                clients,
            } => {
                *successes += 1;
                *probing = false;
                *clients = ClientSet::new();
                if *successes >= self.config.half_open_successes {
                    *inner = Inner::Closed(Run::default());
                    Some(Transition::Closed)
                } else {
                    None
                }
            }
            Inner::Open { .. } => None,
        }
    }

    /// A call from `client` that was admitted failed whoever called (UNAVAILABLE, deadline,
    /// refused/reset connection, ...).
    pub fn on_failure(&self, now: Instant, client: ClientId) -> Option<Transition> {
        let mut inner = self.lock();
        let open = match &mut *inner {
            Inner::Closed(run) => {
                run.failures = run.failures.saturating_add(1);
                run.clients.insert(client);
                run.opens(&self.config)
            }
            Inner::HalfOpen { .. } => true,
            Inner::Open { .. } => false,
        };
        self.open_if(&mut inner, open, now)
    }

    /// A call from `client` that was admitted failed in a way its own request can cause
    /// (INTERNAL, UNKNOWN, ...): counted once the run's failures come from enough clients.
    pub fn on_client_failure(&self, now: Instant, client: ClientId) -> Option<Transition> {
        let mut inner = self.lock();
        let open = match &mut *inner {
            Inner::Closed(run) => {
                run.client_failures = run.client_failures.saturating_add(1);
                run.clients.insert(client);
                run.opens(&self.config)
            }
            Inner::HalfOpen {
                probing, clients, ..
            } => {
                *probing = false;
                clients.insert(client);
                clients.len() >= self.config.distinct_clients
            }
            Inner::Open { .. } => false,
        };
        self.open_if(&mut inner, open, now)
    }

    /// Opens the breaker for `open_for` from `now` when `open`.
    fn open_if(&self, inner: &mut Inner, open: bool, now: Instant) -> Option<Transition> {
        if !open {
            return None;
        }
        *inner = Inner::Open {
            until: now + self.config.open_for,
        };
        Some(Transition::Opened)
    }

    /// A probe ended without an outcome (the caller went away): let the next one through.
    pub fn release_probe(&self) {
        if let Inner::HalfOpen { probing, .. } = &mut *self.lock() {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests;
