//! `upstreams.<name>:` the YAML shape of one gRPC backend and its resilience keys.

use serde::Deserialize;

use super::At;

/// `upstreams.<name>:` one gRPC backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    /// One-endpoint shorthand for `endpoints: [address]`.
    #[serde(default)]
    pub(crate) address: Option<At<String>>,
    #[serde(default)]
    pub(crate) connect_timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_response_bytes: Option<At<String>>,
    #[serde(default)]
    pub(crate) endpoints: Option<Vec<At<String>>>,
    #[serde(default)]
    pub(crate) retry: Option<RawRetry>,
    #[serde(default)]
    pub(crate) circuit_breaker: Option<RawCircuitBreaker>,
    #[serde(default)]
    pub(crate) health_check: Option<RawHealthCheck>,
    /// How often endpoints given as host names are resolved again.
    #[serde(default)]
    pub(crate) resolve_interval: Option<At<String>>,
    /// TLS to the backend.
    #[serde(default)]
    pub(crate) tls: Option<RawUpstreamTls>,
    /// The backend's services are described by its gRPC server reflection.
    #[serde(default)]
    pub(crate) reflection: Option<At<bool>>,
    /// How request messages are compressed: `gzip` or `identity`.
    #[serde(default)]
    pub(crate) send_compressed: Option<At<String>>,
    /// Smallest request message compressed.
    #[serde(default)]
    pub(crate) send_compressed_min_size: Option<At<String>>,
}

/// `upstreams.<name>.tls:` HTTP/2 over TLS to the backend (`tls: {}`: system roots).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    pub(crate) ca: Option<At<String>>,
    pub(crate) client_cert: Option<At<String>>,
    pub(crate) client_key: Option<At<String>>,
    pub(crate) server_name: Option<At<String>>,
    pub(crate) reload_interval: Option<At<String>>,
}

/// `upstreams.<name>.retry:` how failed calls are retried.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub(crate) max_retries: Option<At<u32>>,
    pub(crate) base_backoff: Option<At<String>>,
    pub(crate) max_backoff: Option<At<String>>,
    pub(crate) jitter: Option<At<f64>>,
    pub(crate) budget_ratio: Option<At<f64>>,
    pub(crate) budget_min_retries: Option<At<u32>>,
    pub(crate) retryable_codes: Option<Vec<At<String>>>,
}

/// `upstreams.<name>.circuit_breaker:` when an endpoint stops taking traffic.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCircuitBreaker {
    pub(crate) consecutive_failures: Option<At<u32>>,
    pub(crate) open_for: Option<At<String>>,
    pub(crate) half_open_successes: Option<At<u32>>,
    /// gRPC codes that are failures whoever called.
    pub(crate) failure_codes: Option<Vec<At<String>>>,
    /// gRPC codes that are failures only when `distinct_clients` clients get them.
    pub(crate) distinct_client_codes: Option<Vec<At<String>>>,
    pub(crate) distinct_clients: Option<At<u32>>,
}

/// `upstreams.<name>.health_check:` active `grpc.health.v1.Health/Check` probes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthCheck {
    pub(crate) interval: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) unhealthy_threshold: Option<At<u32>>,
    pub(crate) healthy_threshold: Option<At<u32>>,
    pub(crate) service: Option<At<String>>,
}
