//! The YAML shape of `gateway.yaml`, exactly as an operator writes it.
//!
//! Every struct denies unknown keys so a typo is an error with a line number, never a silently ignored
//! setting. Values that later checks must point at are wrapped in [`Spanned`] to keep their location.
//! Nothing here is interpreted: `validate.rs` turns this into [`super::Config`].

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A YAML value together with where it was written.
pub(crate) type At<T> = Spanned<T>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) listeners: RawListeners,
    #[serde(default)]
    pub(crate) admin: Option<RawAdmin>,
    pub(crate) descriptors: RawDescriptors,
    pub(crate) upstreams: BTreeMap<String, RawUpstream>,
    pub(crate) routes: Vec<RawRoute>,
    #[serde(default)]
    pub(crate) transcoding: RawTranscoding,
    #[serde(default)]
    pub(crate) headers: RawHeaders,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    #[serde(default)]
    pub(crate) workers: Option<At<String>>,
    #[serde(default)]
    pub(crate) reload: RawReload,
    #[serde(default)]
    pub(crate) access_log: RawAccessLog,
    #[serde(default)]
    pub(crate) log_level: Option<At<String>>,
    #[serde(default)]
    pub(crate) shutdown: RawShutdown,
    pub(crate) auth: Option<super::edge::RawAuth>,
    #[serde(default)]
    pub(crate) rate_limits: Option<super::edge::RawRateLimits>,
}

/// `listeners:` the public sockets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListeners {
    pub(crate) http: Option<RawHttpListener>,
    #[serde(default)]
    pub(crate) tls: Option<super::tls::RawTlsListener>,
}

/// `listeners.http:` plain HTTP/1.1 + h2c.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpListener {
    pub(crate) address: At<String>,
}

/// `admin:` the operator-only server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) address: At<String>,
}

/// `descriptors:` where protobuf schemas come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDescriptors {
    #[serde(default)]
    pub(crate) proto_dirs: Vec<At<String>>,
    #[serde(default)]
    pub(crate) proto_files: Vec<At<String>>,
    #[serde(default)]
    pub(crate) include_paths: Vec<At<String>>,
    #[serde(default)]
    pub(crate) descriptor_sets: Vec<At<String>>,
}

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
}

/// `routes[]:` exposes a service (or one method) through an upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    #[serde(default)]
    pub(crate) name: Option<At<String>>,
    #[serde(default)]
    pub(crate) service: Option<At<String>>,
    #[serde(default)]
    pub(crate) methods: Option<Vec<At<String>>>,
    pub(crate) upstream: At<String>,
    #[serde(default)]
    pub(crate) timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) auto_mapping: Option<bool>,
    #[serde(default)]
    pub(crate) http_rules: Vec<RawHttpRule>,
    #[serde(default)]
    pub(crate) transcoding: RawTranscoding,
    #[serde(default)]
    pub(crate) headers: Option<RawHeaders>,
    #[serde(default)]
    pub(crate) retryable: Option<bool>,
    #[serde(default)]
    pub(crate) retry_on: Option<Vec<At<String>>>,
    #[serde(default)]
    pub(crate) per_try_timeout: Option<At<String>>,
    pub(crate) auth: Option<super::edge::RawRouteAuth>,
    #[serde(default)]
    pub(crate) rate_limits: Vec<At<String>>,
    #[serde(default)]
    pub(crate) cors: Option<RawCors>,
}

/// `routes[].cors:` browser origins allowed to call the route over gRPC-Web.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCors {
    pub(crate) allow_origins: Vec<String>,
    #[serde(default)]
    pub(crate) allow_headers: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) expose_headers: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) max_age: Option<At<String>>,
}

/// `routes[].http_rules[]:` an HttpRule given in config, overriding or adding to the proto's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpRule {
    pub(crate) method: At<String>,
    #[serde(default)]
    pub(crate) get: Option<At<String>>,
    #[serde(default)]
    pub(crate) put: Option<At<String>>,
    #[serde(default)]
    pub(crate) post: Option<At<String>>,
    #[serde(default)]
    pub(crate) delete: Option<At<String>>,
    #[serde(default)]
    pub(crate) patch: Option<At<String>>,
    #[serde(default)]
    pub(crate) custom: Option<RawCustomPattern>,
    #[serde(default)]
    pub(crate) body: Option<At<String>>,
    #[serde(default)]
    pub(crate) response_body: Option<At<String>>,
}

/// `custom:` an HTTP method outside the five standard ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCustomPattern {
    pub(crate) kind: At<String>,
    pub(crate) path: At<String>,
}

/// `transcoding:` JSON mapping options (top level = defaults, per route = overrides).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTranscoding {
    pub(crate) ignore_unknown_fields: Option<bool>,
    pub(crate) ignore_unknown_query_parameters: Option<bool>,
    pub(crate) ignored_query_parameters: Option<Vec<String>>,
    pub(crate) query_unescape_plus: Option<bool>,
    pub(crate) path_unescape: Option<At<String>>,
    pub(crate) emit_defaults: Option<bool>,
    pub(crate) proto_field_names: Option<bool>,
    pub(crate) enums_as_ints: Option<bool>,
    pub(crate) max_json_depth: Option<At<u32>>,
    pub(crate) max_request_bytes: Option<At<String>>,
    pub(crate) stream_format: Option<At<String>>,
}

/// `headers:` which HTTP headers cross into gRPC metadata and back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaders {
    #[serde(default)]
    pub(crate) request_to_metadata: Vec<At<String>>,
    #[serde(default)]
    pub(crate) metadata_to_response: Vec<At<String>>,
}

/// `limits:` protocol-level bounds of the public listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_header_bytes: Option<At<String>>,
    pub(crate) header_read_timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) body_read_timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) idle_timeout: Option<At<String>>,
}

/// `reload:` how config and descriptor changes are picked up while running.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReload {
    pub(crate) watch: Option<bool>,
    pub(crate) poll_interval: Option<At<String>>,
}

/// `access_log:` one JSON line per request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    pub(crate) enabled: Option<bool>,
    pub(crate) path: Option<At<String>>,
}

/// `shutdown:` what happens on SIGTERM / SIGINT.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShutdown {
    pub(crate) drain_timeout: Option<At<String>>,
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
