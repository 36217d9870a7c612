//! The YAML shape of the operational sections: `limits`, `reload`, `access_log`, `shutdown`,
//! `tracing`.

use serde::Deserialize;

use super::At;

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
    #[serde(default)]
    pub(crate) write_timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_connections: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_connections_per_ip: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_concurrent_streams: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_buffered_response_bytes: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_buffered_response_bytes_per_connection: Option<At<String>>,
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

/// `tracing:` trace export and sampling.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTracing {
    #[serde(default)]
    pub(crate) otlp: Option<RawOtlp>,
    #[serde(default)]
    pub(crate) sampling_ratio: Option<At<f64>>,
    #[serde(default)]
    pub(crate) service_name: Option<At<String>>,
}

/// `tracing.otlp:` the collector spans are sent to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOtlp {
    #[serde(default)]
    pub(crate) endpoint: Option<At<String>>,
    #[serde(default)]
    pub(crate) protocol: Option<At<String>>,
}
