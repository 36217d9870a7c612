//! The validated form of one `upstreams.<name>` entry.

use std::time::Duration;

use super::resilience::{BreakerConfig, HealthCheckConfig, RetryConfig};

/// One gRPC backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Name routes refer to.
    pub name: String,
    /// `host:port` (h2c).
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
}
