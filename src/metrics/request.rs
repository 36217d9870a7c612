//! What one request contributes to the metrics: its labels ([`RequestLabels`]), the series it
//! is recorded in ([`RequestSeries`], [`UpstreamSeries`]), and the record the pipeline's finish
//! hands over ([`RequestRecord`]).

use std::sync::Arc;
use std::time::Duration;

use super::family::Labels;
use super::series::{Counter, Histogram};

/// Request and upstream durations, in seconds (Prometheus' base unit; Istio's default bucket
/// bounds, trimmed, from 0.5 ms to a minute).
const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
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

/// Labels of the per-request families.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestLabels {
    /// Route name, or [`UNMATCHED_ROUTE`].
    pub route: String,
    /// HTTP status.
    pub response_code: u16,
    /// gRPC status code (the backend's, or the one the gateway's error maps to).
    pub grpc_response_status: i32,
    /// The listener the request came in on (empty for a request that came in on none).
    pub listener: Arc<str>,
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
            ("listener", self.listener.to_string()),
        ]
    }
}

/// The four per-request series of one label set, found with one map lookup per request.
#[derive(Debug)]
pub struct RequestSeries {
    /// Requests.
    pub(super) count: Counter,
    /// Time from arrival to response, in seconds.
    pub(super) duration: Histogram,
    /// Request body sizes.
    pub(super) request_bytes: Histogram,
    /// Response body sizes.
    pub(super) response_bytes: Histogram,
}

impl RequestSeries {
    /// Empty series.
    pub(super) fn new() -> RequestSeries {
        RequestSeries {
            count: Counter::default(),
            duration: Histogram::new(DURATION_BUCKETS_SECONDS),
            request_bytes: Histogram::new(BYTES_BUCKETS),
            response_bytes: Histogram::new(BYTES_BUCKETS),
        }
    }
}

/// The per-upstream call series, found with one map lookup per call.
#[derive(Debug)]
pub struct UpstreamSeries {
    /// Call durations (all attempts), in seconds.
    pub(super) duration: Histogram,
    /// Attempts made.
    pub(super) attempts: Counter,
}

impl UpstreamSeries {
    /// Empty series.
    pub(super) fn new() -> UpstreamSeries {
        UpstreamSeries {
            duration: Histogram::new(DURATION_BUCKETS_SECONDS),
            attempts: Counter::default(),
        }
    }
}

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
    /// How the response cache served it (`hit`, `miss`, `stale`, `bypass`, `collapsed`), on
    /// routes that cache.
    pub cache: Option<&'static str>,
}
