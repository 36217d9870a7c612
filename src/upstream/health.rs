//! Active health checks: every `interval`, each endpoint of an upstream with `health_check`
//! configured is asked `grpc.health.v1.Health/Check` for the configured service. After
//! `unhealthy_threshold` failed checks in a row (no answer, an error, or a status other than
//! `SERVING`) it leaves the rotation; after `healthy_threshold` passed checks in a row it returns.
//!
//! One task per endpoint, holding only a `Weak` reference: it ends when the upstream is dropped
//! (a config reload that no longer uses it).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::HeaderMap;
use http::uri::PathAndQuery;
use tokio::time::MissedTickBehavior;

use super::Upstream;
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

/// Starts the health-check tasks of every upstream that configures them (once per upstream).
/// Must be called inside a tokio runtime.
pub fn start(upstreams: &HashMap<String, Arc<Upstream>>) {
    for upstream in upstreams.values() {
        let Some(config) = upstream.health_check.clone() else {
            continue;
        };
        if upstream.health_started.swap(true, Ordering::SeqCst) {
            continue;
        }
        for index in 0..upstream.endpoints.len() {
            tokio::spawn(check_loop(Arc::downgrade(upstream), index, config.clone()));
        }
    }
}

async fn check_loop(upstream: Weak<Upstream>, index: usize, config: HealthCheckConfig) {
    let Ok(path) = PathAndQuery::try_from(CHECK_PATH) else {
        return;
    };
    let request = Bytes::from(prost::Message::encode_to_vec(&HealthCheckRequest {
        service: config.service.clone(),
    }));
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut passes, mut fails) = (0u32, 0u32);
    loop {
        ticks.tick().await;
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        let endpoint = &upstream.endpoints[index];
        let passed = match endpoint
            .attempt(&path, request.clone(), HeaderMap::new(), config.timeout)
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
        };
        if passed {
            passes += 1;
            fails = 0;
            if passes >= config.healthy_threshold && endpoint.set_healthy(true) {
                bump(&upstream.stats.restored);
                tracing::info!(upstream = %upstream.name, endpoint = %endpoint.authority, "endpoint passed its health checks: back in rotation");
            }
        } else {
            fails += 1;
            passes = 0;
            if fails >= config.unhealthy_threshold && endpoint.set_healthy(false) {
                bump(&upstream.stats.ejected);
                tracing::warn!(upstream = %upstream.name, endpoint = %endpoint.authority, "endpoint failed its health checks: out of rotation");
            }
        }
    }
}
