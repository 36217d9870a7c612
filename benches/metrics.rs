//! What the metrics cost per request, hand-written families (`src/metrics/`) vs. the same families
//! in `prometheus-client` 0.26: recording one finished request (count, duration, request and
//! response sizes by route and statuses; upstream duration and attempts) as the pipeline's finish
//! does, and rendering a scrape of 50 routes × 3 statuses. Both record identical values into
//! identical buckets; the label set is built once outside the loop, as the pipeline hands it over.
//! Run: `cargo bench --bench metrics` (figures go to benches/RESULTS.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tai_gateway::metrics::{Metrics, RequestLabels, RequestRecord};

/// Bucket bounds of `src/metrics/request.rs`, so both sides do the same bucket search.
const SECONDS: [f64; 15] = [
    0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const BYTES: [f64; 9] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    response_code: u16,
    grpc_response_status: i32,
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The request and upstream families as prometheus-client registers them.
struct CrateMetrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    duration: Histograms<RouteLabels>,
    request_bytes: Histograms<RouteLabels>,
    response_bytes: Histograms<RouteLabels>,
    upstream_duration: Histograms<UpstreamLabels>,
    upstream_attempts: Family<UpstreamLabels, Counter>,
}

impl CrateMetrics {
    fn new() -> CrateMetrics {
        let seconds: fn() -> Histogram = || Histogram::new(SECONDS);
        let bytes: fn() -> Histogram = || Histogram::new(BYTES);
        let m = CrateMetrics {
            registry: Registry::with_prefix("tai_gateway"),
            requests: Family::default(),
            duration: Family::new_with_constructor(seconds),
            request_bytes: Family::new_with_constructor(bytes),
            response_bytes: Family::new_with_constructor(bytes),
            upstream_duration: Family::new_with_constructor(seconds),
            upstream_attempts: Family::default(),
        };
        let mut m = m;
        let r = &mut m.registry;
        r.register("requests", "Requests.", m.requests.clone());
        r.register("request_duration_seconds", "Time.", m.duration.clone());
        r.register("request_bytes", "Sizes.", m.request_bytes.clone());
        r.register("response_bytes", "Sizes.", m.response_bytes.clone());
        let upstream = m.upstream_duration.clone();
        r.register("upstream_request_duration_seconds", "Time.", upstream);
        let attempts = m.upstream_attempts.clone();
        r.register("upstream_attempts", "Attempts.", attempts);
        m
    }

    /// One request, as `Metrics::record_request` records it: a lookup per family.
    fn record(&self, labels: &RouteLabels, upstream: &UpstreamLabels, took: Duration) {
        self.requests.get_or_create(labels).inc();
        self.duration
            .get_or_create(labels)
            .observe(took.as_secs_f64());
        self.request_bytes.get_or_create(labels).observe(20.0);
        self.response_bytes.get_or_create(labels).observe(300.0);
        self.upstream_duration
            .get_or_create(upstream)
            .observe(took.as_secs_f64());
        self.upstream_attempts.get_or_create(upstream).inc();
    }
}

fn record_of(labels: RequestLabels, took: Duration) -> RequestRecord<'static> {
    RequestRecord {
        labels,
        duration: took,
        request_bytes: 20,
        response_bytes: 300,
        upstream: Some(("governor", took, 1)),
        transcode_error: None,
        upstream_failure: None,
        rate_limited: None,
        auth_failure: None,
        cache: None,
    }
}

fn labels(i: usize) -> (RequestLabels, RouteLabels) {
    let (route, code) = (format!("route-{}", i / 3), [200, 404, 503][i % 3]);
    let ours = RequestLabels {
        route: route.clone(),
        response_code: code,
        grpc_response_status: 0,
        listener: std::sync::Arc::from("http"),
    };
    let theirs = RouteLabels {
        route,
        response_code: code,
        grpc_response_status: 0,
        listener: "http".to_owned(),
    };
    (ours, theirs)
}

fn metrics(c: &mut Criterion) {
    let took = Duration::from_micros(2300);
    let ours = Metrics::new();
    let theirs = CrateMetrics::new();
    let upstream = UpstreamLabels {
        upstream: "governor".to_owned(),
    };
    // Both sides hold the same 150 series, as a gateway with 50 routes would.
    for i in 0..150 {
        let (a, b) = labels(i);
        ours.record_request(&record_of(a, took));
        theirs.record(&b, &upstream, took);
    }
    let (a, b) = labels(42);
    let record = record_of(a, took);
    let mut group = c.benchmark_group("record_request");
    group.bench_function("hand_written", |bench| {
        bench.iter(|| ours.record_request(black_box(&record)))
    });
    group.bench_function("prometheus_client", |bench| {
        bench.iter(|| theirs.record(black_box(&b), black_box(&upstream), black_box(took)))
    });
    group.finish();
    let mut group = c.benchmark_group("render_150_series");
    group.bench_function("hand_written", |bench| bench.iter(|| ours.render().len()));
    group.bench_function("prometheus_client", |bench| {
        bench.iter(|| {
            let mut out = String::with_capacity(4096);
            prometheus_client::encoding::text::encode(&mut out, &theirs.registry).expect("encode");
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
