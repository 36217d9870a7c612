//! Which endpoint takes the next attempt: power-of-two-choices least-request.
//!
//! Why P2C least-request rather than round robin: gRPC calls share one HTTP/2 connection per
//! endpoint, so an endpoint that slows down (GC pause, overloaded host, injected delay) does not
//! push back by refusing connections — it just accumulates in-flight calls. Round robin keeps
//! handing it 1/N of the traffic; comparing the in-flight counts of two random candidates steers
//! new calls away from it within a few requests, in O(1), without every gateway thread piling
//! onto the single least-loaded endpoint (which "pick the global minimum" would do).
//!
//! Candidates are endpoints whose breaker admits traffic, that health checks keep in rotation, and
//! that are not waiting out a reconnect backoff; a retry avoids the endpoint that just failed when
//! another candidate exists. When health checks have ejected every endpoint they are all used
//! anyway (a health check that is wrong everywhere must not take the upstream down alone).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{Admission, Transition};
use super::endpoint::Endpoint;
use super::random::random_u64;

/// The balancer's choice.
#[derive(Debug)]
pub enum Pick {
    /// Send the attempt to `endpoints[index]`.
    Endpoint {
        /// Index into the upstream's endpoints.
        index: usize,
        /// The attempt is its breaker's half-open probe.
        probe: bool,
    },
    /// Every endpoint's breaker is open; the earliest probe is this far away.
    AllOpen {
        /// Time until some endpoint lets a probe through.
        retry_after: Duration,
    },
}

/// Chooses an endpoint for one attempt, taking its breaker admission (state changes made by
/// admission, e.g. Open → HalfOpen, are reported through `on_transition`).
pub fn pick(
    endpoints: &[Arc<Endpoint>],
    avoid: Option<usize>,
    now: Instant,
    mut on_transition: impl FnMut(usize, Transition),
) -> Pick {
    let any_healthy = endpoints.iter().any(|e| e.is_healthy());
    let admissible = |e: &Endpoint| (e.is_healthy() || !any_healthy) && e.breaker.would_admit(now);
    let mut candidates: Vec<usize> = (0..endpoints.len())
        .filter(|&i| admissible(&endpoints[i]) && !endpoints[i].reconnecting(now))
        .collect();
    if candidates.is_empty() {
        // Every admissible endpoint is between dials: try one anyway (it answers at once).
        candidates = (0..endpoints.len())
            .filter(|&i| admissible(&endpoints[i]))
            .collect();
    }
    if let Some(avoid) = avoid
        && candidates.len() > 1
    {
        candidates.retain(|&i| i != avoid);
    }
    while !candidates.is_empty() {
        let at = choose(&candidates, endpoints);
        let index = candidates[at];
        let (admission, transition) = endpoints[index].breaker.admit(now);
        if let Some(t) = transition {
            on_transition(index, t);
        }
        match admission {
            Admission::Allowed { probe } => return Pick::Endpoint { index, probe },
            // Another call took the half-open probe in the meantime.
            Admission::Rejected { .. } => {
                candidates.swap_remove(at);
            }
        }
    }
    let retry_after = endpoints
        .iter()
        .map(|e| e.breaker.retry_after(now))
        .min()
        .unwrap_or_default();
    Pick::AllOpen { retry_after }
}

/// Power of two choices: two distinct random candidates, the one with fewer calls in flight.
/// Returns a position in `candidates`.
fn choose(candidates: &[usize], endpoints: &[Arc<Endpoint>]) -> usize {
    let n = candidates.len();
    if n == 1 {
        return 0;
    }
    let r = random_u64();
    let a = (r % n as u64) as usize;
    let b = (a + 1 + ((r >> 32) % (n as u64 - 1)) as usize) % n;
    if endpoints[candidates[b]].in_flight() < endpoints[candidates[a]].in_flight() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BreakerConfig, HealthCheckConfig, RetryConfig, UpstreamConfig};

    fn endpoints(n: usize) -> Vec<Arc<Endpoint>> {
        let config = UpstreamConfig {
            name: "u".to_owned(),
            authority: "127.0.0.1:1".to_owned(),
            connect_timeout: Duration::from_secs(1),
            max_response_bytes: 1024,
            endpoints: Vec::new(),
            retry: RetryConfig::default(),
            circuit_breaker: BreakerConfig::default(),
            health_check: Some(HealthCheckConfig::default()),
            resolve_interval: Duration::from_secs(30),
            send_gzip_from: None,
            tls: None,
            reflection: false,
        };
        (0..n)
            .map(|i| {
                Arc::new(Endpoint::new(
                    &config,
                    &format!("127.0.0.1:{}", i + 1),
                    None,
                ))
            })
            .collect()
    }

    fn picked(endpoints: &[Arc<Endpoint>], avoid: Option<usize>) -> Option<usize> {
        match pick(endpoints, avoid, Instant::now(), |_, _| {}) {
            Pick::Endpoint { index, .. } => Some(index),
            Pick::AllOpen { .. } => None,
        }
    }

    fn open(endpoint: &Endpoint) {
        for _ in 0..5 {
            endpoint
                .breaker
                .on_failure(Instant::now(), crate::upstream::ClientId::UNKNOWN);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_breakers_take_no_traffic() {
        let e = endpoints(3);
        open(&e[0]);
        open(&e[2]);
        for _ in 0..50 {
            assert_eq!(picked(&e, None), Some(1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_breaker_open_reports_the_nearest_probe() {
        let e = endpoints(2);
        open(&e[0]);
        tokio::time::advance(Duration::from_secs(10)).await;
        open(&e[1]);
        match pick(&e, None, Instant::now(), |_, _| {}) {
            Pick::AllOpen { retry_after } => assert_eq!(retry_after, Duration::from_secs(20)),
            other => panic!("expected AllOpen, got {other:?}"),
        }
        tokio::time::advance(Duration::from_secs(20)).await;
        let mut transitions = Vec::new();
        let pick = pick(&e, None, Instant::now(), |i, t| transitions.push((i, t)));
        assert!(
            matches!(
                pick,
                Pick::Endpoint {
                    index: 0,
                    probe: true
                }
            ),
            "{pick:?}"
        );
        assert_eq!(transitions, [(0, Transition::HalfOpened)]);
    }

    #[tokio::test(start_paused = true)]
    async fn fewer_calls_in_flight_wins() {
        let e = endpoints(2);
        e[0].add_in_flight(5);
        for _ in 0..50 {
            assert_eq!(picked(&e, None), Some(1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_avoids_the_endpoint_that_just_failed() {
        let e = endpoints(3);
        for _ in 0..50 {
            assert_ne!(picked(&e, Some(1)), Some(1));
        }
        let single = endpoints(1);
        assert_eq!(picked(&single, Some(0)), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn ejected_endpoints_are_skipped_unless_all_are_ejected() {
        let e = endpoints(2);
        e[0].set_healthy(false);
        for _ in 0..50 {
            assert_eq!(picked(&e, None), Some(1));
        }
        e[1].set_healthy(false);
        assert!(picked(&e, None).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn random_choices_spread_over_idle_endpoints() {
        let e = endpoints(4);
        let mut seen = [0u32; 4];
        for _ in 0..400 {
            if let Some(i) = picked(&e, None) {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
    }
}
