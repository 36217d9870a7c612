//! [`Upstream`]: one configured gRPC backend — its endpoints (replaced as DNS answers change),
//! its retry policy and budget, its counters, and whether its background tasks run. The call
//! loop that uses it is in `call.rs`; its background tasks in `health.rs` and `resolve.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::endpoint::Endpoint;
use super::retry::RetryBudget;
use super::stats::{StatsSnapshot, UpstreamStats};
use super::tls::UpstreamTls;
use crate::certs::TlsError;
use crate::config::{HealthCheckConfig, RetryConfig, UpstreamConfig};

/// A configured gRPC backend: its endpoints, retry policy and budget, and stats.
#[derive(Debug)]
pub struct Upstream {
    /// Name routes refer to.
    pub name: String,
    /// The first configured endpoint.
    authority: String,
    /// Endpoints now: one per configured entry, or per address its host name resolved to
    /// (DNS re-resolution replaces the list; calls in flight keep the list they started with).
    pub(super) endpoints: arc_swap::ArcSwap<Vec<Arc<Endpoint>>>,
    /// The config it was built from (resolved endpoints are built from it).
    pub(super) config: UpstreamConfig,
    /// How failed attempts are retried.
    pub(super) retry: RetryConfig,
    /// Keeps retries a fraction of requests.
    pub(super) budget: RetryBudget,
    /// Counters of this upstream.
    pub stats: UpstreamStats,
    /// Active health checks, when configured.
    pub(super) health_check: Option<HealthCheckConfig>,
    /// Set once health-check tasks run for this upstream.
    pub(super) health_started: AtomicBool,
    /// Set once the DNS re-resolution task runs for this upstream.
    pub(super) resolve_started: AtomicBool,
    /// TLS to the backend, shared by every endpoint; `None` = h2c.
    pub(super) tls: Option<Arc<UpstreamTls>>,
}

impl Upstream {
    /// Creates the backend's handle; no connection is made until the first call. With `tls:`,
    /// its certificate files are read now: the error names the first bad one.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream, TlsError> {
        let tls = match &config.tls {
            Some(tls) => Some(Arc::new(UpstreamTls::load(&config.name, tls)?)),
            None => None,
        };
        Ok(Upstream::with_tls(config, tls))
    }

    /// Creates the backend's handle with `tls` already loaded (`None`: h2c, whatever `config`
    /// says).
    pub fn with_tls(config: &UpstreamConfig, tls: Option<Arc<UpstreamTls>>) -> Upstream {
        Upstream {
            name: config.name.clone(),
            authority: config.authority.clone(),
            endpoints: arc_swap::ArcSwap::from_pointee(
                config
                    .endpoints
                    .iter()
                    .map(|a| Arc::new(Endpoint::new(config, a, tls.as_ref())))
                    .collect(),
            ),
            config: config.clone(),
            budget: RetryBudget::new(&config.retry),
            retry: config.retry.clone(),
            stats: UpstreamStats::default(),
            health_check: config.health_check.clone(),
            health_started: AtomicBool::new(false),
            resolve_started: AtomicBool::new(false),
            tls,
        }
    }

    /// TLS to the backend, when configured.
    pub fn tls(&self) -> Option<&Arc<UpstreamTls>> {
        self.tls.as_ref()
    }

    /// The `host:port` of the first configured endpoint.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The endpoints now.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// The config this upstream was built from.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Largest response message accepted from this backend (`max_response_bytes`).
    pub fn max_response_bytes(&self) -> usize {
        self.config.max_response_bytes
    }

    /// Counters and gauges now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot(&self.endpoints())
    }
}
