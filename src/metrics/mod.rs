//! Prometheus metrics: defined and registered once at start ([`Metrics::new`]), recorded in one
//! place per request (the pipeline's finish, [`Metrics::record_request`]), rendered as the
//! Prometheus text exposition format by the admin server.
//!
//! Names and labels follow Istio's standard metrics (`istio_requests_total`,
//! `istio_request_bytes`, `istio_response_bytes`) with a `tai_gateway_` prefix, and Prometheus'
//! conventions: durations in seconds (`_duration_seconds`), counters end in `_total`, sizes in
//! `_bytes`. Label values come from bounded sets only: route names from the config,
//! upstream names, status codes, fixed kinds. Never raw paths, client addresses or ids.
//!
//! Hand-written instead of `prometheus-client`: the request path costs one read-locked map lookup
//! for the four per-request series, where the crate needs one per family — 80–110 ns more per
//! request in `benches/metrics.rs` (benches/RESULTS.md); `promtool check metrics` passes on the
//! output (tests/e2e/promtool.rs). Another component adds a family by adding a
//! [`CounterFamily`]/[`HistogramFamily`] field and one line in [`Metrics::render`].
//!
//! Layout, each module using only those listed before it (and this file only naming them):
//! `series` (counter, gauge, histogram values), `family` (series keyed by labels), `request`
//! (what one request records), `text` (the exposition format), `upstreams`, `edge`, `cache` and
//! `consumers` (state other components keep, formatted at scrape time).

mod cache;
mod consumers;
mod edge;
mod event_stream;
mod family;
mod process;
mod request;
mod series;
mod shared;
mod text;
mod upstreams;

pub use cache::render_cache_usage;
pub use consumers::render_consumer;
pub use edge::render_rate_limits;
pub use event_stream::{BacklogFigures, EventStreamMetrics};
pub use family::{CounterFamily, Family, GaugeFamily, HistogramFamily, LabelPair, Labels};
pub use process::render_process;
pub use request::{RequestLabels, RequestRecord, RequestSeries, UNMATCHED_ROUTE, UpstreamSeries};
pub use series::{Counter, Gauge, Histogram};
pub use shared::render_shared;
pub use text::{counters, gauges, histograms};
pub use upstreams::render_upstreams;

use std::sync::Arc;

use text::{histograms_of, samples};

/// Every metric family of the gateway.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, RequestSeries>,
    upstream_calls: Family<(&'static str, String), UpstreamSeries>,
    upstream_failures: CounterFamily<LabelPair>,
    transcode_errors: CounterFamily<(&'static str, String)>,
    reloads: CounterFamily<(&'static str, String)>,
    connections_open: GaugeFamily<(&'static str, String)>,
    connections: CounterFamily<(&'static str, String)>,
    rate_limited: CounterFamily<(&'static str, String)>,
    auth_failures: CounterFamily<(&'static str, String)>,
    tls_handshakes: CounterFamily<LabelPair>,
    cache_lookups: CounterFamily<LabelPair>,
    spans_dropped: CounterFamily<(&'static str, String)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family, empty.
    pub fn new() -> Metrics {
        Metrics {
            requests: Family::new(RequestSeries::new),
            upstream_calls: Family::new(UpstreamSeries::new),
            upstream_failures: Family::new(Counter::default),
            transcode_errors: Family::new(Counter::default),
            reloads: Family::new(Counter::default),
            connections_open: Family::new(Gauge::default),
            connections: Family::new(Counter::default),
            rate_limited: Family::new(Counter::default),
            auth_failures: Family::new(Counter::default),
            tls_handshakes: Family::new(Counter::default),
            cache_lookups: Family::new(Counter::default),
            spans_dropped: Family::new(Counter::default),
        }
    }

    /// Records one finished request: called once per request, by the pipeline's finish.
    pub fn record_request(&self, r: &RequestRecord<'_>) {
        self.requests.with(&r.labels, |series| {
            series.count.add(1);
            series.duration.observe(r.duration.as_secs_f64());
            series.request_bytes.observe(r.request_bytes as f64);
            series.response_bytes.observe(r.response_bytes as f64);
        });
        if let Some((upstream, took, attempts)) = r.upstream {
            let key = ("upstream", upstream.to_owned());
            self.upstream_calls.with(&key, |calls| {
                calls.duration.observe(took.as_secs_f64());
                calls.attempts.add(u64::from(attempts));
            });
            if let Some(reason) = r.upstream_failure {
                self.upstream_failures
                    .get(&(key, ("reason", reason.to_owned())))
                    .add(1);
            }
        }
        if let Some(kind) = r.transcode_error {
            self.transcode_errors.get(&("kind", kind.to_owned())).add(1);
        }
        if let Some(limit) = r.rate_limited {
            self.rate_limited.get(&("limit", limit.to_owned())).add(1);
        }
        if let Some(reason) = r.auth_failure {
            self.auth_failures
                .get(&("reason", reason.to_owned()))
                .add(1);
        }
        if let Some(result) = r.cache {
            let route = ("route", r.labels.route.clone());
            self.cache_lookups
                .get(&(route, ("result", result.to_owned())))
                .add(1);
        }
    }

    /// Counts one TLS handshake on `listener` by result (`ok`, `failed`, `timeout`).
    pub fn record_tls_handshake(&self, listener: &str, result: &'static str) {
        self.tls_handshakes
            .get(&(
                ("listener", listener.to_owned()),
                ("result", result.to_owned()),
            ))
            .add(1);
    }

    /// Counts a reload attempt by result (`ok`, `error`, `unchanged`).
    pub fn record_reload(&self, result: &'static str) {
        self.reloads.get(&("result", result.to_owned())).add(1);
    }

    /// Reloads so far with this result.
    pub fn reloads(&self, result: &'static str) -> u64 {
        self.reloads.get(&("result", result.to_owned())).get()
    }

    /// Counts a connection accepted on `listener`; the open gauge drops when the guard does.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGuard {
        let key = ("listener", listener.to_owned());
        self.connections.get(&key).add(1);
        let open = self.connections_open.get(&key);
        open.add(1);
        ConnectionGuard(open)
    }

    /// Counts `n` trace spans dropped instead of exported, by `reason` (`queue_full`,
    /// `export_failed`, `exporter_gone`).
    pub fn spans_dropped(&self, reason: &'static str, n: u64) {
        self.spans_dropped
            .get(&("reason", reason.to_owned()))
            .add(n);
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_requests(&mut out);
        self.render_upstream_calls(&mut out);
        self.render_events(&mut out);
        counters(
            &mut out,
            "tai_gateway_cache_lookups_total",
            "Response cache lookups of caching routes by result (hit, collapsed, miss, stale, bypass).",
            &self.cache_lookups,
        );
        counters(
            &mut out,
            "tai_gateway_spans_dropped_total",
            "Trace spans dropped instead of exported, by reason (queue_full, export_failed).",
            &self.spans_dropped,
        );
        out
    }

    /// The per-request families: count, duration, request and response sizes.
    fn render_requests(&self, out: &mut String) {
        let requests = self.requests.sorted();
        samples(
            out,
            "tai_gateway_requests_total",
            "Requests by route, HTTP status and gRPC status.",
            "counter",
            &requests,
            |s| s.count.get(),
        );
        histograms_of(
            out,
            "tai_gateway_request_duration_seconds",
            "Time from request arrival to response.",
            &requests,
            |s| &s.duration,
        );
        histograms_of(
            out,
            "tai_gateway_request_bytes",
            "Request body sizes.",
            &requests,
            |s| &s.request_bytes,
        );
        histograms_of(
            out,
            "tai_gateway_response_bytes",
            "Response body sizes.",
            &requests,
            |s| &s.response_bytes,
        );
    }

    /// The per-upstream call families: duration and attempts.
    fn render_upstream_calls(&self, out: &mut String) {
        let calls = self.upstream_calls.sorted();
        histograms_of(
            out,
            "tai_gateway_upstream_request_duration_seconds",
            "Duration of gRPC calls to upstreams (all attempts).",
            &calls,
            |s| &s.duration,
        );
        samples(
            out,
            "tai_gateway_upstream_attempts_total",
            "gRPC call attempts sent to upstreams.",
            "counter",
            &calls,
            |s| s.attempts.get(),
        );
    }

    /// The event counters (and the open-connections gauge), in registration order.
    fn render_events(&self, out: &mut String) {
        counters(
            out,
            "tai_gateway_upstream_failures_total",
            "Upstream calls that produced no gRPC answer, by upstream and reason.",
            &self.upstream_failures,
        );
        counters(
            out,
            "tai_gateway_transcoding_errors_total",
            "Requests or responses that could not be transcoded, by kind.",
            &self.transcode_errors,
        );
        counters(
            out,
            "tai_gateway_config_reloads_total",
            "Config reload attempts by result.",
            &self.reloads,
        );
        gauges(
            out,
            "tai_gateway_connections_open",
            "Open client connections by listener.",
            &self.connections_open,
        );
        counters(
            out,
            "tai_gateway_connections_total",
            "Client connections accepted by listener.",
            &self.connections,
        );
        counters(
            out,
            "tai_gateway_rate_limited_total",
            "Requests refused with 429, by rate limit name.",
            &self.rate_limited,
        );
        counters(
            out,
            "tai_gateway_auth_failures_total",
            "Requests refused by authentication (401) or authorisation (403), by reason.",
            &self.auth_failures,
        );
        counters(
            out,
            "tai_gateway_tls_handshakes_total",
            "TLS handshakes by listener and result (ok, failed, timeout).",
            &self.tls_handshakes,
        );
    }
}

/// Keeps a connection counted as open until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Gauge>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(metrics: &Metrics, route: &str, status: u16, grpc: i32, ms: u64) {
        metrics.record_request(&RequestRecord {
            labels: RequestLabels {
                route: route.to_owned(),
                response_code: status,
                grpc_response_status: grpc,
                listener: Arc::from("public"),
            },
            duration: Duration::from_millis(ms),
            request_bytes: 20,
            response_bytes: 300,
            upstream: Some(("governor", Duration::from_millis(ms), 1)),
            transcode_error: None,
            upstream_failure: (status == 504).then_some("deadline_exceeded"),
            rate_limited: None,
            auth_failure: None,
            cache: (status == 200).then_some("hit"),
        });
    }

    #[test]
    fn request_counters_are_labelled_by_route_and_statuses() {
        let metrics = Metrics::new();
        record(&metrics, "governor", 200, 0, 3);
        record(&metrics, "governor", 200, 0, 7);
        record(&metrics, "gov\"ernor", 404, 5, 1);
        record(&metrics, "governor", 504, 4, 9);
        let text = metrics.render();
        assert!(text.contains(
            "tai_gateway_requests_total{route=\"governor\",response_code=\"200\",grpc_response_status=\"0\",listener=\"public\"} 2\n"
        ), "{text}");
        assert!(text.contains("route=\"gov\\\"ernor\""), "{text}");
        assert!(text.contains("# TYPE tai_gateway_request_duration_seconds histogram\n"));
        assert!(
            text.contains(
                "tai_gateway_upstream_request_duration_seconds_count{upstream=\"governor\"} 4\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "tai_gateway_upstream_failures_total{upstream=\"governor\",reason=\"deadline_exceeded\"} 1\n"
        ), "{text}");
        assert!(text.contains("tai_gateway_upstream_attempts_total{upstream=\"governor\"} 4\n"));
        assert!(
            text.contains("tai_gateway_cache_lookups_total{route=\"governor\",result=\"hit\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        let metrics = Metrics::new();
        record(&metrics, "r", 200, 0, 3);
        record(&metrics, "r", 200, 0, 70_000);
        let text = metrics.render();
        let labels =
            "route=\"r\",response_code=\"200\",grpc_response_status=\"0\",listener=\"public\"";
        for (le, n) in [("0.001", 0), ("0.005", 1), ("60", 1), ("+Inf", 2)] {
            let line = format!(
                "tai_gateway_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "missing {line} in {text}");
        }
        assert!(text.contains(&format!(
            "tai_gateway_request_duration_seconds_sum{{{labels}}} 70.003\n"
        )));
    }

    #[test]
    fn connection_gauge_falls_when_the_guard_drops() {
        let metrics = Metrics::new();
        let a = metrics.connection_opened("http");
        let b = metrics.connection_opened("http");
        drop(a);
        let text = metrics.render();
        assert!(text.contains("tai_gateway_connections_open{listener=\"http\"} 1\n"));
        assert!(text.contains("tai_gateway_connections_total{listener=\"http\"} 2\n"));
        drop(b);
        assert!(
            metrics
                .render()
                .contains("tai_gateway_connections_open{listener=\"http\"} 0\n")
        );
    }
}
