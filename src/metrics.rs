//! Prometheus metrics: defined and registered once at start ([`Metrics::new`]), recorded in one
//! place per request (the pipeline's finish, [`Metrics::record_request`]), rendered as the
//! Prometheus text exposition format by the admin server.
//!
//! Names and labels follow Istio's standard metrics (`istio_requests_total`,
//! `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes`) with a
//! `tai_gateway_` prefix. Label values come from bounded sets only: route names from the config,
//! upstream names, status codes, fixed kinds. Never raw paths, client addresses or ids.
//!
//! Hand-written instead of `prometheus-client`: five families of counters and histograms need
//! ~250 lines, no new dependency, and the request path costs one read-locked map lookup. Another
//! component adds a family by adding a [`CounterFamily`]/[`HistogramFamily`] field and one line
//! in [`Metrics::render`].

mod edge;
mod upstreams;

pub use edge::render_rate_limit_keys;
pub use upstreams::render_upstreams;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Request and upstream durations, in milliseconds (Istio's default buckets, trimmed).
const DURATION_BUCKETS_MS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0,
];
/// Request and response sizes, in bytes (Istio's `istio_request_bytes` buckets).
const BYTES_BUCKETS: &[f64] = &[
    1.0,
    10.0,
    100.0,
    1000.0,
    10000.0,
    100000.0,
    1000000.0,
    10000000.0,
    100000000.0,
];

/// Route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A fixed-bucket histogram.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per-bucket (not cumulative) counts; the last is `+Inf`.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        let index = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Label names and values of one series.
pub trait Labels: Eq + Hash + Clone + Ord {
    /// `name="value"` pairs, in order.
    fn pairs(&self) -> Vec<(&'static str, String)>;
}

/// Two labels: `(name, value)` twice.
pub type LabelPair = ((&'static str, String), (&'static str, String));

impl Labels for LabelPair {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![(self.0.0, self.0.1.clone()), (self.1.0, self.1.1.clone())]
    }
}

impl Labels for (&'static str, String) {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![(self.0, self.1.clone())]
    }
}

/// Labels of the per-request families.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestLabels {
    /// Route name, or [`UNMATCHED_ROUTE`].
    pub route: String,
    /// HTTP status.
    pub response_code: u16,
    /// gRPC status code (the backend's, or the one the gateway's error maps to).
    pub grpc_response_status: i32,
}

impl Labels for RequestLabels {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("route", self.route.clone()),
            ("response_code", self.response_code.to_string()),
            (
                "grpc_response_status",
                self.grpc_response_status.to_string(),
            ),
        ]
    }
}

/// The four per-request series of one label set, found with one map lookup per request.
#[derive(Debug)]
pub struct RequestSeries {
    count: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl RequestSeries {
    fn new() -> RequestSeries {
        RequestSeries {
            count: Counter::default(),
            duration: Histogram::new(DURATION_BUCKETS_MS),
            request_bytes: Histogram::new(BYTES_BUCKETS),
            response_bytes: Histogram::new(BYTES_BUCKETS),
        }
    }
}

/// The per-upstream call series, found with one map lookup per call.
#[derive(Debug)]
pub struct UpstreamSeries {
    duration: Histogram,
    attempts: Counter,
}

impl UpstreamSeries {
    fn new() -> UpstreamSeries {
        UpstreamSeries {
            duration: Histogram::new(DURATION_BUCKETS_MS),
            attempts: Counter::default(),
        }
    }
}

/// Series keyed by labels, created on first use.
#[derive(Debug)]
pub struct Family<K, V> {
    series: RwLock<HashMap<K, Arc<V>>>,
    make: fn() -> V,
}

impl<K: Labels, V> Family<K, V> {
    fn new(make: fn() -> V) -> Family<K, V> {
        Family {
            series: RwLock::new(HashMap::new()),
            make,
        }
    }

    /// The series for `labels`.
    pub fn get(&self, labels: &K) -> Arc<V> {
        if let Some(v) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            return v.clone();
        }
        let mut map = self.series.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(labels.clone())
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    /// Runs `record` on the series for `labels` (created on first use) under the read lock,
    /// without touching the series' reference count (shared by every worker thread).
    pub fn with<R>(&self, labels: &K, record: impl FnOnce(&V) -> R) -> R {
        {
            let map = self.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = map.get(labels) {
                return record(v);
            }
        }
        record(&self.get(labels))
    }

    fn sorted(&self) -> Vec<(K, Arc<V>)> {
        let map = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<(K, Arc<V>)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Counters by labels.
pub type CounterFamily<K> = Family<K, Counter>;
/// Gauges by labels.
pub type GaugeFamily<K> = Family<K, Gauge>;
/// Histograms by labels.
pub type HistogramFamily<K> = Family<K, Histogram>;

/// What one finished request contributes to the metrics.
#[derive(Debug)]
pub struct RequestRecord<'a> {
    /// The request's labels.
    pub labels: RequestLabels,
    /// Time from arrival to response.
    pub duration: Duration,
    /// Request body bytes read.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// The upstream called, with the call's duration and attempts, if a call was made.
    pub upstream: Option<(&'a str, Duration, u32)>,
    /// The transcoding failure, if one happened (`request_json`, `response`, ...).
    pub transcode_error: Option<&'static str>,
    /// Why the upstream call produced no gRPC answer, if it did not (`unavailable`, ...).
    pub upstream_failure: Option<&'static str>,
    /// The rate limit that refused the request, if one did.
    pub rate_limited: Option<&'a str>,
    /// Why authentication refused the request (a bounded set: `missing`, `expired`, ...).
    pub auth_failure: Option<&'static str>,
}

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
        }
    }

    /// Records one finished request: called once per request, by the pipeline's finish.
    pub fn record_request(&self, r: &RequestRecord<'_>) {
        self.requests.with(&r.labels, |series| {
            series.count.add(1);
            series.duration.observe(r.duration.as_secs_f64() * 1000.0);
            series.request_bytes.observe(r.request_bytes as f64);
            series.response_bytes.observe(r.response_bytes as f64);
        });
        if let Some((upstream, took, attempts)) = r.upstream {
            let key = ("upstream", upstream.to_owned());
            self.upstream_calls.with(&key, |calls| {
                calls.duration.observe(took.as_secs_f64() * 1000.0);
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
    }

    /// Counts one TLS handshake on `listener` by result (`ok`, `failed`, `timeout`).
    pub fn record_tls_handshake(&self, listener: &'static str, result: &'static str) {
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
    pub fn connection_opened(&self, listener: &'static str) -> ConnectionGuard {
        let key = ("listener", listener.to_owned());
        self.connections.get(&key).add(1);
        let open = self.connections_open.get(&key);
        open.add(1);
        ConnectionGuard(open)
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let requests = self.requests.sorted();
        samples(
            &mut out,
            "tai_gateway_requests_total",
            "Requests by route, HTTP status and gRPC status.",
            "counter",
            &requests,
            |s| s.count.get(),
        );
        histograms_of(
            &mut out,
            "tai_gateway_request_duration_milliseconds",
            "Time from request arrival to response.",
            &requests,
            |s| &s.duration,
        );
        histograms_of(
            &mut out,
            "tai_gateway_request_bytes",
            "Request body sizes.",
            &requests,
            |s| &s.request_bytes,
        );
        histograms_of(
            &mut out,
            "tai_gateway_response_bytes",
            "Response body sizes.",
            &requests,
            |s| &s.response_bytes,
        );
        let calls = self.upstream_calls.sorted();
        histograms_of(
            &mut out,
            "tai_gateway_upstream_request_duration_milliseconds",
            "Duration of gRPC calls to upstreams (all attempts).",
            &calls,
            |s| &s.duration,
        );
        samples(
            &mut out,
            "tai_gateway_upstream_attempts_total",
            "gRPC call attempts sent to upstreams.",
            "counter",
            &calls,
            |s| s.attempts.get(),
        );
        counters(
            &mut out,
            "tai_gateway_upstream_failures_total",
            "Upstream calls that produced no gRPC answer, by upstream and reason.",
            &self.upstream_failures,
        );
        counters(
            &mut out,
            "tai_gateway_transcoding_errors_total",
            "Requests or responses that could not be transcoded, by kind.",
            &self.transcode_errors,
        );
        counters(
            &mut out,
            "tai_gateway_config_reloads_total",
            "Config reload attempts by result.",
            &self.reloads,
        );
        gauges(
            &mut out,
            "tai_gateway_connections_open",
            "Open client connections by listener.",
            &self.connections_open,
        );
        counters(
            &mut out,
            "tai_gateway_connections_total",
            "Client connections accepted by listener.",
            &self.connections,
        );
        counters(
            &mut out,
            "tai_gateway_rate_limited_total",
            "Requests refused with 429, by rate limit name.",
            &self.rate_limited,
        );
        counters(
            &mut out,
            "tai_gateway_auth_failures_total",
            "Requests refused by authentication (401) or authorisation (403), by reason.",
            &self.auth_failures,
        );
        counters(
            &mut out,
            "tai_gateway_tls_handshakes_total",
            "TLS handshakes by listener and result (ok, failed, timeout).",
            &self.tls_handshakes,
        );
        out
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

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `{a="1",b="2"}` (empty when there are no labels), values escaped per the exposition format.
fn label_text(pairs: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a counter family.
pub fn counters<K: Labels>(out: &mut String, name: &str, help: &str, family: &CounterFamily<K>) {
    samples(out, name, help, "counter", &family.sorted(), Counter::get);
}

/// Writes a gauge family.
pub fn gauges<K: Labels>(out: &mut String, name: &str, help: &str, family: &GaugeFamily<K>) {
    samples(out, name, help, "gauge", &family.sorted(), Gauge::get);
}

/// Writes one sample per series of a family, the value `read` takes from it, as a metric of
/// type `kind`.
fn samples<K: Labels, V, N: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    series: &[(K, Arc<V>)],
    read: impl Fn(&V) -> N,
) {
    header(out, name, help, kind);
    for (labels, value) in series {
        let _ = writeln!(
            out,
            "{name}{} {}",
            label_text(&labels.pairs(), None),
            read(value)
        );
    }
}

/// Writes a histogram family (cumulative buckets, `+Inf`, `_sum`, `_count`).
pub fn histograms<K: Labels>(
    out: &mut String,
    name: &str,
    help: &str,
    family: &HistogramFamily<K>,
) {
    histograms_of(out, name, help, &family.sorted(), |h| h);
}

/// Writes the histogram `pick` selects from each series of a family.
fn histograms_of<K: Labels, V>(
    out: &mut String,
    name: &str,
    help: &str,
    series: &[(K, Arc<V>)],
    pick: fn(&V) -> &Histogram,
) {
    header(out, name, help, "histogram");
    for (labels, value) in series {
        let h = pick(value);
        let pairs = labels.pairs();
        let mut cumulative = 0;
        for (i, bucket) in h.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = h.bounds.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{} {cumulative}",
                label_text(&pairs, Some(("le", &le)))
            );
        }
        let plain = label_text(&pairs, None);
        let sum = f64::from_bits(h.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{plain} {sum}");
        let _ = writeln!(out, "{name}_count{plain} {}", h.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(metrics: &Metrics, route: &str, status: u16, grpc: i32, ms: u64) {
        metrics.record_request(&RequestRecord {
            labels: RequestLabels {
                route: route.to_owned(),
                response_code: status,
                grpc_response_status: grpc,
            },
            duration: Duration::from_millis(ms),
            request_bytes: 20,
            response_bytes: 300,
            upstream: Some(("governor", Duration::from_millis(ms), 1)),
            transcode_error: None,
            upstream_failure: (status == 504).then_some("deadline_exceeded"),
            rate_limited: None,
            auth_failure: None,
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
            "tai_gateway_requests_total{route=\"governor\",response_code=\"200\",grpc_response_status=\"0\"} 2\n"
        ), "{text}");
        assert!(text.contains("route=\"gov\\\"ernor\""), "{text}");
        assert!(text.contains("# TYPE tai_gateway_request_duration_milliseconds histogram\n"));
        assert!(text.contains(
            "tai_gateway_upstream_request_duration_milliseconds_count{upstream=\"governor\"} 4\n"
        ), "{text}");
        assert!(text.contains(
            "tai_gateway_upstream_failures_total{upstream=\"governor\",reason=\"deadline_exceeded\"} 1\n"
        ), "{text}");
        assert!(text.contains("tai_gateway_upstream_attempts_total{upstream=\"governor\"} 4\n"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        let metrics = Metrics::new();
        record(&metrics, "r", 200, 0, 3);
        record(&metrics, "r", 200, 0, 70_000);
        let text = metrics.render();
        let labels = "route=\"r\",response_code=\"200\",grpc_response_status=\"0\"";
        for (le, n) in [("1", 0), ("5", 1), ("60000", 1), ("+Inf", 2)] {
            let line = format!(
                "tai_gateway_request_duration_milliseconds_bucket{{{labels},le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "missing {line} in {text}");
        }
        assert!(text.contains(&format!(
            "tai_gateway_request_duration_milliseconds_sum{{{labels}}} 70003\n"
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
