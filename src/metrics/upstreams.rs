//! Upstream resilience state, read from the runtime's upstreams at scrape time (nothing is
//! counted twice: the upstream code keeps the atomics, this only formats them). Label values are
//! upstream names from the config and endpoint addresses from the config or its DNS answers.
//!
//! Counters of an upstream restart from zero when a reload rebuilds it (its config changed) and
//! those of an endpoint when DNS drops its address; Prometheus' `rate()` handles such resets.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::text::{header, label_text};
use crate::upstream::Upstream;
use crate::upstream::breaker::BreakerState;
use crate::upstream::endpoint::Endpoint;

/// An upstream with the endpoints it had when the scrape began.
type Scraped = (Arc<Upstream>, Arc<Vec<Arc<Endpoint>>>);

/// The `state` label values of the breaker gauge, in the order they are written.
const BREAKER_STATES: [(BreakerState, &str); 3] = [
    (BreakerState::Closed, "closed"),
    (BreakerState::Open, "open"),
    (BreakerState::HalfOpen, "half_open"),
];

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn endpoint_labels(upstream: &str, endpoint: &Endpoint) -> Vec<(&'static str, String)> {
    vec![
        ("upstream", upstream.to_owned()),
        ("endpoint", endpoint.authority.clone()),
    ]
}

/// Name, help text and type of one family.
type Described = (&'static str, &'static str, &'static str);

const BREAKER_STATE: Described = (
    "tai_gateway_upstream_circuit_breaker_state",
    "Circuit breaker state by endpoint: 1 for the current state (closed, open, half_open), 0 for the others.",
    "gauge",
);
const BREAKER_TRANSITIONS: Described = (
    "tai_gateway_upstream_circuit_breaker_transitions_total",
    "Circuit breaker state changes by endpoint and state entered.",
    "counter",
);
const ENDPOINT_HEALTHY: Described = (
    "tai_gateway_upstream_endpoint_healthy",
    "1 while health checks keep the endpoint in rotation, 0 while they eject it (a boolean, so no state label).",
    "gauge",
);
const ENDPOINT_EJECTIONS: Described = (
    "tai_gateway_upstream_endpoint_ejections_total",
    "Endpoints taken out of rotation by failed health checks.",
    "counter",
);
const ENDPOINT_RESTORATIONS: Described = (
    "tai_gateway_upstream_endpoint_restorations_total",
    "Endpoints put back into rotation by passed health checks.",
    "counter",
);
const ENDPOINTS: Described = (
    "tai_gateway_upstream_endpoints",
    "Endpoints of the upstream (configured, or resolved from host names).",
    "gauge",
);
const IN_FLIGHT: Described = (
    "tai_gateway_upstream_requests_in_flight",
    "Calls in progress to the upstream, over all its endpoints.",
    "gauge",
);
const REQUESTS: Described = (
    "tai_gateway_upstream_requests_total",
    "Calls made through the upstream (one per client request, retries not counted).",
    "counter",
);
const RETRIES: Described = (
    "tai_gateway_upstream_retries_total",
    "Retries made to the upstream.",
    "counter",
);
const BUDGET_EXHAUSTED: Described = (
    "tai_gateway_upstream_retry_budget_exhausted_total",
    "Retries not made because the upstream's retry budget was spent.",
    "counter",
);

/// Appends the upstream families to `out` (Prometheus text), upstreams sorted by name.
pub fn render_upstreams(out: &mut String, upstreams: &HashMap<String, Arc<Upstream>>) {
    let mut all: Vec<Scraped> = upstreams
        .values()
        .map(|u| (u.clone(), u.endpoints()))
        .collect();
    all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    breaker_states(out, &all, Instant::now());
    breaker_transitions(out, &all);
    per_endpoint(out, &all, ENDPOINT_HEALTHY, |e| u64::from(e.is_healthy()));
    per_endpoint(out, &all, ENDPOINT_EJECTIONS, |e| read(&e.events.ejected));
    per_endpoint(out, &all, ENDPOINT_RESTORATIONS, |e| {
        read(&e.events.restored)
    });
    per_upstream(out, &all, ENDPOINTS, |_, endpoints| endpoints.len() as u64);
    per_upstream(out, &all, IN_FLIGHT, |_, endpoints| {
        endpoints.iter().map(|e| e.in_flight() as u64).sum()
    });
    per_upstream(out, &all, REQUESTS, |u, _| read(&u.stats.requests));
    per_upstream(out, &all, RETRIES, |u, _| read(&u.stats.retries));
    per_upstream(out, &all, BUDGET_EXHAUSTED, |u, _| {
        read(&u.stats.budget_exhausted)
    });
}

/// Writes one family with one value per endpoint.
fn per_endpoint(
    out: &mut String,
    all: &[Scraped],
    (name, help, kind): Described,
    value: impl Fn(&Endpoint) -> u64,
) {
    header(out, name, help, kind);
    for (upstream, endpoints) in all {
        for endpoint in endpoints.iter() {
            let labels = label_text(&endpoint_labels(&upstream.name, endpoint), None);
            let _ = writeln!(out, "{name}{labels} {}", value(endpoint));
        }
    }
}

/// Writes one family with one value per upstream.
fn per_upstream(
    out: &mut String,
    all: &[Scraped],
    (name, help, kind): Described,
    value: impl Fn(&Upstream, &[Arc<Endpoint>]) -> u64,
) {
    header(out, name, help, kind);
    for (upstream, endpoints) in all {
        let labels = label_text(&[("upstream", upstream.name.clone())], None);
        let _ = writeln!(out, "{name}{labels} {}", value(upstream, endpoints));
    }
}

/// Writes the breaker state gauge: three series per endpoint, 1 for the state it is in now.
fn breaker_states(out: &mut String, all: &[Scraped], now: Instant) {
    let (name, help, kind) = BREAKER_STATE;
    header(out, name, help, kind);
    for (upstream, endpoints) in all {
        for endpoint in endpoints.iter() {
            let current = endpoint.breaker.state(now);
            for (state, label) in BREAKER_STATES {
                let mut pairs = endpoint_labels(&upstream.name, endpoint);
                pairs.push(("state", label.to_owned()));
                let value = u8::from(state == current);
                let _ = writeln!(out, "{name}{} {value}", label_text(&pairs, None));
            }
        }
    }
}

/// Writes the breaker transition counters: three per endpoint, by state entered.
fn breaker_transitions(out: &mut String, all: &[Scraped]) {
    let (name, help, kind) = BREAKER_TRANSITIONS;
    header(out, name, help, kind);
    for (upstream, endpoints) in all {
        for endpoint in endpoints.iter() {
            let events = &endpoint.events;
            for (to_state, counter) in [
                ("closed", &events.closed),
                ("half_open", &events.half_opened),
                ("open", &events.opened),
            ] {
                let mut pairs = endpoint_labels(&upstream.name, endpoint);
                pairs.push(("to_state", to_state.to_owned()));
                let _ = writeln!(out, "{name}{} {}", label_text(&pairs, None), read(counter));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{BreakerConfig, RetryConfig, UpstreamConfig};

    fn upstream(name: &str, endpoints: &[&str]) -> Arc<Upstream> {
        Arc::new(
            Upstream::new(&UpstreamConfig {
                name: name.to_owned(),
                authority: endpoints[0].to_owned(),
                connect_timeout: Duration::from_secs(1),
                max_response_bytes: 1024,
                endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
                retry: RetryConfig::default(),
                circuit_breaker: BreakerConfig {
                    consecutive_failures: 1,
                    ..BreakerConfig::default()
                },
                health_check: None,
                resolve_interval: Duration::from_secs(30),
                send_gzip_from: None,
                tls: None,
                reflection: false,
            })
            .expect("upstream"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn state_is_read_per_endpoint_and_upstreams_are_sorted() {
        let b = upstream("b", &["10.0.0.1:1", "10.0.0.2:1"]);
        let a = upstream("a", &["10.0.0.3:1"]);
        b.endpoints()[1]
            .breaker
            .on_failure(Instant::now(), crate::upstream::ClientId::UNKNOWN);
        b.endpoints()[0].set_healthy(false);
        let upstreams = HashMap::from([("b".to_owned(), b), ("a".to_owned(), a)]);
        let mut text = String::new();
        render_upstreams(&mut text, &upstreams);
        let state: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tai_gateway_upstream_circuit_breaker_state{"))
            .collect();
        let series = |ep: &str, state: &str, value: u8| {
            format!("tai_gateway_upstream_circuit_breaker_state{{{ep},state=\"{state}\"}} {value}")
        };
        let (a3, b1, b2) = (
            r#"upstream="a",endpoint="10.0.0.3:1""#,
            r#"upstream="b",endpoint="10.0.0.1:1""#,
            r#"upstream="b",endpoint="10.0.0.2:1""#,
        );
        assert_eq!(
            state,
            [
                series(a3, "closed", 1),
                series(a3, "open", 0),
                series(a3, "half_open", 0),
                series(b1, "closed", 1),
                series(b1, "open", 0),
                series(b1, "half_open", 0),
                series(b2, "closed", 0),
                series(b2, "open", 1),
                series(b2, "half_open", 0),
            ]
        );
        for line in [
            "# TYPE tai_gateway_upstream_circuit_breaker_state gauge",
            "# TYPE tai_gateway_upstream_circuit_breaker_transitions_total counter",
            r#"tai_gateway_upstream_circuit_breaker_transitions_total{upstream="b",endpoint="10.0.0.2:1",to_state="open"} 0"#,
            r#"tai_gateway_upstream_endpoint_healthy{upstream="b",endpoint="10.0.0.1:1"} 0"#,
            r#"tai_gateway_upstream_endpoints{upstream="b"} 2"#,
            r#"tai_gateway_upstream_requests_in_flight{upstream="a"} 0"#,
            r#"tai_gateway_upstream_retry_budget_exhausted_total{upstream="a"} 0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }
}
