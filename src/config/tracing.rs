//! The validated `tracing:` section: where spans are exported (OTLP), how many traces are
//! sampled, the service name. Keys left out are taken from the standard `OTEL_*` environment
//! variables when the gateway starts (`crate::trace::settings`).

/// `tracing:` settings; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TracingConfig {
    /// `otlp.endpoint`: the collector's `http://host:port` (HTTP: a full URL, or `/v1/traces`
    /// is appended to a bare one).
    pub endpoint: Option<String>,
    /// `otlp.protocol`: `grpc` or `http` (protobuf).
    pub protocol: Option<OtlpProtocol>,
    /// `sampling_ratio`: the share of new traces sampled (a caller's decision is followed).
    pub sampling_ratio: Option<SamplingRatio>,
    /// `service_name`: the `service.name` of exported spans.
    pub service_name: Option<String>,
}

/// How spans are sent to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

/// A ratio from 0 to 1 (never NaN, so it compares like a number).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingRatio(f64);

impl Eq for SamplingRatio {}

impl SamplingRatio {
    /// `ratio` when it is within 0 to 1.
    pub fn new(ratio: f64) -> Option<SamplingRatio> {
        (0.0..=1.0).contains(&ratio).then_some(SamplingRatio(ratio))
    }

    /// The ratio.
    pub fn get(self) -> f64 {
        self.0
    }
}
