//! tai-gateway: an edge API gateway that lets HTTP/JSON clients call gRPC services, transcoding
//! with the services' own `google.api.http` rules, loaded from descriptors at run time.
//!
//! # Layout
//! - [`config`]: `gateway.yaml` → validated [`config::Config`] (every problem with file and line).
//! - [`descriptors`]: `.proto` files (compiled in-process) and descriptor sets → one pool.
//! - [`runtime`]: the immutable snapshot requests use: route table, upstreams, options.
//! - [`server`]: listeners (public HTTP/1.1 + h2c, admin) and connection handling.
//! - [`tls`]: TLS termination for the HTTPS listener: SNI, ALPN, mTLS, certificate reload.
//! - [`pipeline`]: one request, top to bottom: route → ip rate limit → auth → subject rate limit →
//!   deadline → body → transcode → upstream → answer.
//! - [`transcode`]: PURE transcoding: templates, routing, JSON ⇄ protobuf, query binding.
//! - [`upstream`]: gRPC calls to backends: endpoints, balancing, circuit breakers, retries, health checks.
//! - [`error`]: every failure and the one table mapping it to HTTP status + JSON body.
//! - [`metrics`]: Prometheus families, registered once, recorded once per request.
//! - [`access_log`]: one JSON line per request, written off the request path.
//! - [`reload`]: watches the config and descriptors, rebuilds the runtime, swaps it in.
//! - [`admin`]: the operator-only server (`/healthz`, `/ready`, `/metrics`, `/config`, ...).

pub mod access_log;
pub mod admin;
pub mod config;
pub mod descriptors;
pub mod error;
mod idle;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod transcode;
pub mod upstream;
pub mod workers;
