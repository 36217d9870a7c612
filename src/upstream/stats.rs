//! Counters and gauges of one upstream's resilience machinery, kept as plain atomics; the
//! operations side reads [`UpstreamStats::snapshot`] and exports it however it likes.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::breaker::BreakerState;
use super::endpoint::Endpoint;

/// Event counters of one upstream (monotonic).
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Calls made through the upstream (one per client request).
    pub requests: AtomicU64,
    /// Attempts sent (or tried) to endpoints, first tries and retries.
    pub attempts: AtomicU64,
    /// Retries made.
    pub retries: AtomicU64,
    /// Retries refused because the retry budget was spent.
    pub budget_exhausted: AtomicU64,
    /// Calls answered 503 at once because every endpoint's breaker was open.
    pub rejected_open: AtomicU64,
    /// Breakers that opened.
    pub breaker_opened: AtomicU64,
    /// Breakers that went half-open.
    pub breaker_half_opened: AtomicU64,
    /// Breakers that closed again.
    pub breaker_closed: AtomicU64,
    /// Endpoints taken out of rotation by health checks.
    pub ejected: AtomicU64,
    /// Endpoints put back by health checks.
    pub restored: AtomicU64,
}

/// A point-in-time copy of an upstream's counters plus its gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`UpstreamStats::requests`].
    pub requests: u64,
    /// See [`UpstreamStats::attempts`].
    pub attempts: u64,
    /// See [`UpstreamStats::retries`].
    pub retries: u64,
    /// See [`UpstreamStats::budget_exhausted`].
    pub budget_exhausted: u64,
    /// See [`UpstreamStats::rejected_open`].
    pub rejected_open: u64,
    /// See [`UpstreamStats::breaker_opened`].
    pub breaker_opened: u64,
    /// See [`UpstreamStats::breaker_half_opened`].
    pub breaker_half_opened: u64,
    /// See [`UpstreamStats::breaker_closed`].
    pub breaker_closed: u64,
    /// See [`UpstreamStats::ejected`].
    pub ejected: u64,
    /// See [`UpstreamStats::restored`].
    pub restored: u64,
    /// Gauge: endpoints configured.
    pub endpoints: usize,
    /// Gauge: endpoints whose breaker is open.
    pub endpoints_open: usize,
    /// Gauge: endpoints whose breaker is half-open.
    pub endpoints_half_open: usize,
    /// Gauge: endpoints out of rotation by health checks.
    pub endpoints_unhealthy: usize,
    /// Gauge: calls in flight over all endpoints.
    pub in_flight: usize,
}

/// Adds one to a counter.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl UpstreamStats {
    /// Counters now, with gauges read from `endpoints`.
    pub fn snapshot(&self, endpoints: &[std::sync::Arc<Endpoint>]) -> StatsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let now = Instant::now();
        let states: Vec<BreakerState> = endpoints.iter().map(|e| e.breaker.state(now)).collect();
        StatsSnapshot {
            requests: read(&self.requests),
            attempts: read(&self.attempts),
            retries: read(&self.retries),
            budget_exhausted: read(&self.budget_exhausted),
            rejected_open: read(&self.rejected_open),
            breaker_opened: read(&self.breaker_opened),
            breaker_half_opened: read(&self.breaker_half_opened),
            breaker_closed: read(&self.breaker_closed),
            ejected: read(&self.ejected),
            restored: read(&self.restored),
            endpoints: endpoints.len(),
            endpoints_open: states.iter().filter(|s| **s == BreakerState::Open).count(),
            endpoints_half_open: states
                .iter()
                .filter(|s| **s == BreakerState::HalfOpen)
                .count(),
            endpoints_unhealthy: endpoints.iter().filter(|e| !e.is_healthy()).count(),
            in_flight: endpoints.iter().map(|e| e.in_flight()).sum(),
        }
    }
}
