//! Active health checks: every `interval`, each endpoint of an upstream with `health_check`
//! configured is asked `grpc.health.v1.Health/Check` for the configured service. After
//! `unhealthy_threshold` failed checks in a row (no answer, an error, or a status other than
//! `SERVING`) it leaves the rotation; after `healthy_threshold` passed checks in a row it returns.
//!
//! One task per endpoint, holding only `Weak` references: it ends when the upstream is dropped
//! (a config reload that no longer uses it) or the endpoint leaves it (DNS no longer names it).
//! [`start`] also starts the upstreams' DNS re-resolution, and has it check the endpoints it adds,
//! and the reload of their TLS certificate files.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::HeaderMap;
use http::uri::PathAndQuery;
use tokio::time::MissedTickBehavior;

use super::backend::Upstream;
use super::endpoint::Endpoint;
use super::resolve;
use super::stats::bump;
use crate::config::HealthCheckConfig;

/// The gRPC path of the check.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// `grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: i32 = 1;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// Starts the health-check tasks of every upstream that configures them, the DNS
/// re-resolution of upstreams with host-name endpoints, and the reload of TLS certificate files
/// (each once per upstream). Must be called inside a tokio runtime.
pub fn start(upstreams: &HashMap<String, Arc<Upstream>>) {
    for upstream in upstreams.values() {
        if let Some(tls) = &upstream.tls {
            tls.watch();
        }
        if upstream.health_check.is_some() && !upstream.health_started.swap(true, Ordering::SeqCst)
        {
            for endpoint in upstream.endpoints().iter() {
                spawn_check(upstream, endpoint);
            }
        }
        resolve::start(upstream, spawn_check);
    }
}

/// Starts checking `endpoint` if its upstream has health checks running.
fn spawn_check(upstream: &Arc<Upstream>, endpoint: &Arc<Endpoint>) {
    if let Some(config) = upstream.health_check.clone()
        && upstream.health_started.load(Ordering::SeqCst)
    {
        tokio::spawn(check_loop(
            Arc::downgrade(upstream),
            Arc::downgrade(endpoint),
            config,
        ));
    }
}

async fn check_loop(upstream: Weak<Upstream>, endpoint: Weak<Endpoint>, config: HealthCheckConfig) {
    let Ok(path) = PathAndQuery::try_from(CHECK_PATH) else {
        return;
    };
    let request = Bytes::from(prost::Message::encode_to_vec(&HealthCheckRequest {
        service: config.service.clone(),
    }));
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut streak = Streak::default();
    loop {
        ticks.tick().await;
        let (Some(upstream), Some(endpoint)) = (upstream.upgrade(), endpoint.upgrade()) else {
            return;
        };
        if !upstream
            .endpoints()
            .iter()
            .any(|e| Arc::ptr_eq(e, &endpoint))
        {
            return;
        }
        let passed = check(&endpoint, &path, &request, &config).await;
        if let Some(healthy) = streak.record(passed, &config) {
            set_health(&upstream, &endpoint, healthy);
        }
    }
}

/// One check: whether `endpoint` answered `SERVING` within the timeout.
async fn check(
    endpoint: &Endpoint,
    path: &PathAndQuery,
    request: &Bytes,
    config: &HealthCheckConfig,
) -> bool {
    match endpoint
        .attempt(path, request.clone(), HeaderMap::new(), config.timeout)
        .await
    {
        Ok(reply) => {
            reply.status.is_ok()
                && reply
                    .message
                    .and_then(|m| <HealthCheckResponse as prost::Message>::decode(m).ok())
                    .is_some_and(|r| r.status == SERVING)
        }
        Err(_) => false,
    }
}

/// Consecutive passed or failed checks of one endpoint.
#[derive(Debug, Default)]
struct Streak {
    passes: u32,
    fails: u32,
}

impl Streak {
    /// Counts one check; returns the verdict (healthy or not) while the streak reaches its
    /// threshold.
    fn record(&mut self, passed: bool, config: &HealthCheckConfig) -> Option<bool> {
        if passed {
            self.passes += 1;
            self.fails = 0;
            (self.passes >= config.healthy_threshold).then_some(true)
        } else {
            self.fails += 1;
            self.passes = 0;
            (self.fails >= config.unhealthy_threshold).then_some(false)
        }
    }
}

/// Puts `endpoint` in or out of rotation; counts and logs a change.
fn set_health(upstream: &Upstream, endpoint: &Endpoint, healthy: bool) {
    if !endpoint.set_healthy(healthy) {
        return;
    }
    let (name, authority) = (&upstream.name, &endpoint.authority);
    if healthy {
        bump(&upstream.stats.restored);
        bump(&endpoint.events.restored);
        tracing::info!(upstream = %name, endpoint = %authority, "endpoint passed its health checks: back in rotation");
    } else {
        bump(&upstream.stats.ejected);
        bump(&endpoint.events.ejected);
        tracing::warn!(upstream = %name, endpoint = %authority, "endpoint failed its health checks: out of rotation");
    }
}
