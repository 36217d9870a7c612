//! The admin server's endpoints (served only on `admin.address`, never on a public listener):
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process is alive |
//! | `GET /ready` | 200 once the config is loaded and listeners are bound; 503 while draining, or while the event spool is full; reports the event backlog when events are recorded |
//! | `GET /metrics` | Prometheus text exposition ([`crate::metrics`]), upstream state read at scrape time |
//! | `GET /config` | the effective config as JSON (`admin/config.rs`; secrets never included; auth, rate limits and the TLS listener from `admin/edge.rs`) |
//! | `GET /routes` | (`admin/routes.rs`) every HTTP method + template → gRPC method, route, upstream, timeout, retry policy, the upstream's endpoints with breaker and health state, auth policy and rate limits |
//! | `GET /reload` | the last reload's result; `POST /reload` reloads now and answers the same |
//! | `POST /cache/purge?tag=T` | drops the cached answers tagged `T` (e.g. `v1/policies`), or without `tag` all of them, here and in the shared tier; answers `{"purged": N, "tag": T}` |

mod config;
mod edge;
mod format;
pub mod probe;
mod routes;

pub use config::config_json;
pub use routes::routes_json;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::body::ResponseBody;
use crate::pipeline::Gateway;
use crate::reload::Reloader;
use crate::state::cache::normalized_tag;

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

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
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
            (&Method::GET, "/ready") => self.ready(),
            (&Method::GET, "/metrics") => {
                let mut text = self.gateway.metrics().render();
                let runtime = self.gateway.runtime();
                crate::metrics::render_upstreams(&mut text, &runtime.upstreams);
                crate::metrics::render_rate_limits(&mut text, &runtime.rate_limits);
                crate::metrics::render_cache_usage(&mut text, &runtime.cache);
                crate::metrics::render_shared(&mut text, self.gateway.shared());
                crate::metrics::render_process(&mut text);
                if let Some(events) = self.gateway.events() {
                    events.render_metrics(&mut text);
                }
                body(
                    StatusCode::OK,
                    text,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            }
            (&Method::GET, "/config") => json_value(&config_json(&self.gateway.runtime().config)),
            (&Method::GET, "/routes") => json_value(&routes_json(&self.gateway.runtime())),
            (&Method::GET, "/reload") => json_value(&json!(self.reloader.status())),
            (&Method::POST, "/cache/purge") => json_value(&self.purge(request.uri()).await),
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

impl Admin {
    /// `GET /ready`: the lifecycle's state, and with events the spool's backlog; a full spool
    /// (writes of `before_response` routes would be refused) is not ready either.
    fn ready(&self) -> Response<ResponseBody> {
        let (status, text) = self.lifecycle.state();
        let Some(events) = self.gateway.events() else {
            return json_text(status, text);
        };
        let backlog = events.backlog();
        let (status, state) = match (status, backlog.full) {
            (StatusCode::OK, true) => (StatusCode::SERVICE_UNAVAILABLE, "event spool full"),
            (StatusCode::OK, false) => (StatusCode::OK, "ready"),
            (status, _) if self.lifecycle.draining() => (status, "draining"),
            (status, _) => (status, "not ready"),
        };
        let value = json!({
            "status": state,
            "events": {
                "backlog_entries": backlog.entries,
                "backlog_bytes": backlog.bytes,
                "max_spool_bytes": backlog.max_bytes,
                "spool_full": backlog.full,
            }
        });
        body(status, value.to_string(), "application/json")
    }

    /// `POST /cache/purge[?tag=T]`: what was dropped from the response cache.
    async fn purge(&self, uri: &http::Uri) -> Value {
        let tag = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("tag="))
            .map(|t| normalized_tag(&t.replace('+', " ")))
            .filter(|t| !t.is_empty());
        let purged = self.gateway.runtime().cache.purge(tag.as_deref()).await;
        tracing::info!(?tag, purged, "response cache purged by the operator");
        json!({ "purged": purged, "tag": tag })
    }
}

/// A response of `text` with `content_type`.
fn body(status: StatusCode, text: String, content_type: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(text)).into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_text(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    body(status, text.to_owned(), "application/json")
}

fn json_value(value: &Value) -> Response<ResponseBody> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    body(StatusCode::OK, text, "application/json")
}
