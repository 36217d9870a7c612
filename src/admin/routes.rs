//! `GET /routes`: every HTTP binding of the runtime with its gRPC method, route, upstream,
//! timeout, effective retry policy, and the upstream's endpoints as they are now.

use std::time::Duration;

use serde_json::{Value, json};

use super::edge;
use super::format::{code_names, duration};
use crate::runtime::{Binding, Runtime};
use crate::upstream::breaker::BreakerState;
use crate::upstream::{CallOptions, Caller, Upstream};

/// Every HTTP binding of the runtime, in the router's order.
pub fn routes_json(runtime: &Runtime) -> Value {
    let routes: Vec<Value> = runtime
        .router
        .routes()
        .map(|(method, _, binding)| {
            let mut entry = json!({
                "http_method": method,
                "template": binding.template,
                "grpc_method": binding.method.full_name,
                "route": binding.method.options.name,
                "upstream": binding.method.upstream.name,
                "timeout": duration(binding.method.options.timeout),
                "origin": binding.origin,
                "retry": route_retry_json(binding),
                "upstream_endpoints": endpoints_json(&binding.method.upstream),
            });
            edge::extend_route(&mut entry, binding);
            entry
        })
        .collect();
    Value::Array(routes)
}

/// The retry policy a binding's calls get: the route's settings over its upstream's.
fn route_retry_json(binding: &Binding) -> Value {
    let route = &binding.method.options.retry;
    let upstream = &binding.method.upstream.config().retry;
    let call = CallOptions::for_route(route, &binding.http_method, Duration::ZERO, Caller::UNKNOWN);
    json!({
        "retryable": call.retryable,
        "retry_on": code_names(route.retry_on.as_deref().unwrap_or(&upstream.retryable_codes)),
        "per_try_timeout": route.per_try_timeout.map(duration),
        "max_retries": upstream.max_retries,
        "base_backoff": duration(upstream.base_backoff),
        "max_backoff": duration(upstream.max_backoff),
        "budget_ratio": upstream.budget_ratio.0,
    })
}

/// An upstream's endpoints now, with their breaker and health state.
fn endpoints_json(upstream: &Upstream) -> Value {
    let now = tokio::time::Instant::now();
    let endpoints: Vec<Value> = upstream
        .endpoints()
        .iter()
        .map(|e| {
            json!({
                "endpoint": e.authority,
                "target": e.target,
                "circuit_breaker": match e.breaker.state(now) {
                    BreakerState::Closed => "closed",
                    BreakerState::Open => "open",
                    BreakerState::HalfOpen => "half_open",
                },
                "healthy": e.is_healthy(),
                "in_flight": e.in_flight(),
            })
        })
        .collect();
    Value::Array(endpoints)
}
