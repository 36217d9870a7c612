//! The validated form of one `upstreams.<name>` entry, and of its `tls:` section.

use std::path::PathBuf;
use std::time::Duration;

use super::error::Located;
use super::resilience::{BreakerConfig, HealthCheckConfig, RetryConfig};

/// One gRPC backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Name routes refer to.
    pub name: String,
    /// `host:port` of the first endpoint.
    pub authority: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Largest gRPC response body accepted; bigger answers are a 502.
    pub max_response_bytes: usize,
    /// Every `host:port` of the upstream (`authority` is the first).
    pub endpoints: Vec<String>,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Circuit breaker of each endpoint.
    pub circuit_breaker: BreakerConfig,
    /// Active health checks, when configured.
    pub health_check: Option<HealthCheckConfig>,
    /// How often endpoints given as host names are resolved again (each address is an endpoint).
    pub resolve_interval: Duration,
    /// TLS to the backend (HTTP/2 over TLS, ALPN `h2`); `None` = h2c.
    pub tls: Option<UpstreamTlsConfig>,
    /// The descriptors of the services routed to it come from its gRPC server reflection.
    pub reflection: bool,
    /// `send_compressed: gzip`: request messages of transcoded calls of at least this many
    /// bytes are sent gzip-compressed (`grpc-encoding: gzip`); `None`: sent as they are.
    pub send_gzip_from: Option<usize>,
}

/// `upstreams.<name>.tls`: how the gateway verifies the backend and who it says it is.
///
/// Paths are only resolved here; the files are read when the runtime is built (so `validate`
/// reports an unreadable or mismatched one at its setting), and again every `reload_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTlsConfig {
    /// PEM bundle of the CAs the backend's certificate must chain to; `None` = the webpki
    /// (Mozilla) roots compiled in.
    pub ca: Option<Located<PathBuf>>,
    /// PEM client certificate chain (mutual TLS), with `client_key`; both or neither.
    pub client_cert: Option<Located<PathBuf>>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<Located<PathBuf>>,
    /// The name the backend's certificate must carry (and SNI, for a DNS name); `None` = the
    /// host of each endpoint as configured.
    pub server_name: Option<String>,
    /// How often the CA and client certificate files are checked for changes.
    pub reload_interval: Duration,
}
