//! The admin server's endpoints (served only on `admin.address`, never on a public listener):
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process is alive |
//! | `GET /ready` | 200 once the config is loaded and listeners are bound; 503 while draining |
//! | `GET /metrics` | Prometheus text exposition ([`crate::metrics`]), upstream state read at scrape time |
//! | `GET /config` | the effective config as JSON (secrets never included; auth, rate limits and the TLS listener from `admin/edge.rs`) |
//! | `GET /routes` | every HTTP method + template → gRPC method, route, upstream, timeout, retry policy, the upstream's endpoints with breaker and health state, auth policy and rate limits |
//! | `GET /reload` | the last reload's result; `POST /reload` reloads now and answers the same |

mod edge;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::config::{AccessLogTarget, Config, Located, MethodSelector};
use crate::pipeline::{Gateway, ResponseBody};
use crate::reload::Reloader;
use crate::runtime::Runtime;
use crate::upstream::breaker::BreakerState;
use std::time::Duration;

/// Whether the gateway should get traffic: set once listeners are bound, cleared on shutdown.
#[derive(Debug, Default)]
pub struct Lifecycle {
    ready: AtomicBool,
    draining: AtomicBool,
}

impl Lifecycle {
    /// Marks the config loaded and listeners bound.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Marks the start of shutdown: `/ready` answers 503 from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn state(&self) -> (StatusCode, &'static str) {
        if self.draining.load(Ordering::SeqCst) {
            (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
        } else if self.ready.load(Ordering::SeqCst) {
            (StatusCode::OK, r#"{"status":"ready"}"#)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not ready"}"#)
        }
    }
}

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The gateway (runtime snapshot, metrics).
    pub gateway: Arc<Gateway>,
    /// Reloads and their last result.
    pub reloader: Arc<Reloader>,
    /// Readiness.
    pub lifecycle: Arc<Lifecycle>,
}

impl Admin {
    /// Answers one admin request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => json_text(StatusCode::OK, r#"{"status":"ok"}"#),
            (&Method::GET, "/ready") => {
                let (status, body) = self.lifecycle.state();
                json_text(status, body)
            }
            (&Method::GET, "/metrics") => {
                let mut text = self.gateway.metrics().render();
                let runtime = self.gateway.runtime();
                crate::metrics::render_upstreams(&mut text, &runtime.upstreams);
                crate::metrics::render_rate_limit_keys(&mut text, &runtime.rate_limits);
                let mut response = body(StatusCode::OK, text);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            (&Method::GET, "/config") => json_value(&config_json(&self.gateway.runtime().config)),
            (&Method::GET, "/routes") => json_value(&routes_json(&self.gateway.runtime())),
            (&Method::GET, "/reload") => json_value(&json!(self.reloader.status())),
            (&Method::POST, "/reload") => {
                let status = self.reloader.reload("admin").await;
                json_value(&json!(status))
            }
            _ => json_text(
                StatusCode::NOT_FOUND,
                r#"{"code":5,"message":"no such admin endpoint","details":[]}"#,
            ),
        }
    }
}

fn body(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(text)).into());
    *response.status_mut() = status;
    response
}

fn json_text(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut response = body(status, text.to_owned());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_value(value: &Value) -> Response<ResponseBody> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut response = body(StatusCode::OK, text);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn paths(list: &[Located<std::path::PathBuf>]) -> Vec<String> {
    list.iter().map(|p| p.value.display().to_string()).collect()
}

fn duration(d: std::time::Duration) -> String {
    format!("{d:?}")
}

/// The effective config. Built field by field (not by serialising `Config`), so a field is only
/// shown once someone decides it is safe to: secrets added later stay out by default.
pub fn config_json(config: &Config) -> Value {
    let upstreams: Vec<Value> = config
        .upstreams
        .iter()
        .map(|u| {
            json!({
                "name": u.name,
                "address": u.authority,
                "connect_timeout": duration(u.connect_timeout),
                "max_response_bytes": u.max_response_bytes,
                "endpoints": u.endpoints,
                "resolve_interval": duration(u.resolve_interval),
                "retry": retry_json(&u.retry),
                "circuit_breaker": {
                    "consecutive_failures": u.circuit_breaker.consecutive_failures,
                    "open_for": duration(u.circuit_breaker.open_for),
                    "half_open_successes": u.circuit_breaker.half_open_successes,
                },
                "health_check": u.health_check.as_ref().map(|h| json!({
                    "interval": duration(h.interval),
                    "timeout": duration(h.timeout),
                    "unhealthy_threshold": h.unhealthy_threshold,
                    "healthy_threshold": h.healthy_threshold,
                    "service": h.service,
                })),
            })
        })
        .collect();
    let routes: Vec<Value> = config
        .routes
        .iter()
        .map(|r| {
            let (service, methods) = match &r.selector {
                MethodSelector::Service(s) => (Some(s.clone()), None),
                MethodSelector::Methods(m) => (
                    None,
                    Some(m.iter().map(|m| m.value.clone()).collect::<Vec<_>>()),
                ),
            };
            let t = &r.transcoding;
            json!({
                "name": r.name,
                "service": service,
                "methods": methods,
                "upstream": config.upstreams.get(r.upstream).map(|u| u.name.as_str()),
                "timeout": duration(r.timeout),
                "retry": {
                    "retryable": r.retry.retryable,
                    "retry_on": r.retry.retry_on.as_deref().map(code_names),
                    "per_try_timeout": r.retry.per_try_timeout.map(duration),
                },
                "auto_mapping": r.auto_mapping,
                "http_rules": r.http_rules.iter().map(|h| json!({
                    "method": h.method.value,
                    "http_method": h.http_method,
                    "template": h.template.value,
                    "body": h.body,
                    "response_body": h.response_body,
                })).collect::<Vec<_>>(),
                "transcoding": {
                    "ignore_unknown_fields": t.ignore_unknown_fields,
                    "ignore_unknown_query_parameters": t.ignore_unknown_query_parameters,
                    "ignored_query_parameters": t.ignored_query_parameters,
                    "query_unescape_plus": t.query_unescape_plus,
                    "emit_defaults": t.emit_defaults,
                    "proto_field_names": t.proto_field_names,
                    "enums_as_ints": t.enums_as_ints,
                    "max_json_depth": t.max_json_depth,
                    "max_request_bytes": t.max_request_bytes,
                },
                "headers": {
                    "request_to_metadata": r.headers.request_to_metadata,
                    "metadata_to_response": r.headers.metadata_to_response,
                },
            })
        })
        .collect();
    let d = &config.descriptors;
    let ops = &config.ops;
    let mut value = json!({
        "source": config.source.display().to_string(),
        "listeners": { "http": config.http_listener.map(|a| a.to_string()) },
        "admin": config.admin.map(|a| a.to_string()),
        "descriptors": {
            "proto_dirs": paths(&d.proto_dirs),
            "proto_files": paths(&d.proto_files),
            "include_paths": paths(&d.include_paths),
            "descriptor_sets": paths(&d.descriptor_sets),
        },
        "upstreams": upstreams,
        "routes": routes,
        "limits": {
            "max_header_bytes": config.limits.max_header_bytes,
            "header_read_timeout": duration(config.limits.header_read_timeout),
        },
        "workers": config.workers.threads(crate::workers::available()),
        "path_unescape": format!("{:?}", config.path_unescape),
        "reload": { "watch": ops.watch, "poll_interval": duration(ops.poll_interval) },
        "access_log": match &ops.access_log {
            None => json!({ "enabled": false }),
            Some(AccessLogTarget::Stdout) => json!({ "enabled": true, "path": "stdout" }),
            Some(AccessLogTarget::File(p)) => {
                json!({ "enabled": true, "path": p.display().to_string() })
            }
        },
        "log_level": ops.log_level,
        "shutdown": { "drain_timeout": duration(ops.drain_timeout) },
    });
    edge::extend_config(&mut value, config);
    value
}

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

fn code_names(codes: &[i32]) -> Vec<String> {
    codes
        .iter()
        .map(|c| crate::config::code_name(*c).map_or_else(|| c.to_string(), str::to_owned))
        .collect()
}

fn retry_json(r: &crate::config::RetryConfig) -> Value {
    json!({
        "max_retries": r.max_retries,
        "base_backoff": duration(r.base_backoff),
        "max_backoff": duration(r.max_backoff),
        "jitter": r.jitter.0,
        "budget_ratio": r.budget_ratio.0,
        "budget_min_retries": r.budget_min_retries,
        "retryable_codes": code_names(&r.retryable_codes),
    })
}

/// The retry policy a binding's calls get: the route's settings over its upstream's.
fn route_retry_json(binding: &crate::runtime::Binding) -> Value {
    let route = &binding.method.options.retry;
    let upstream = &binding.method.upstream.config().retry;
    let call = crate::upstream::CallOptions::for_route(route, &binding.http_method, Duration::ZERO);
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
fn endpoints_json(upstream: &crate::upstream::Upstream) -> Value {
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
