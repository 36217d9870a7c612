//! tai-gateway: an edge API gateway that lets HTTP/JSON clients call gRPC services, transcoding
//! with the services' own `google.api.http` rules, loaded from descriptors at run time.
//!
//! # The request path
//! A connection enters through a [`listener`], each request goes through the [`pipeline`]
//! ([`pipeline::Gateway::handle`]), whose phases are, in order:
//! find the route → [`edge::admit`] (rate limits before auth → authenticate → rate limits after
//! auth → deadline → forwarded metadata) → call (unary | server stream | client/bidi stream |
//! gRPC pass-through) → respond (failures through the one table in [`error`]) → finish (metrics
//! and the access log, exactly once).
//!
//! # Layout
//! - [`listener`]: accept loops (cleartext, TLS), the HTTP/1.1 + HTTP/2 server, idle handling,
//!   rustls (SNI, mTLS, certificate reload).
//! - [`edge`]: admission — JWT auth, rate limits, CORS, headers to metadata, the deadline.
//! - [`pipeline`]: the request path and its call kinds.
//! - [`transcode`]: PURE transcoding: templates, routing, JSON ⇄ protobuf, query binding.
//! - [`upstream`]: gRPC calls to backends: endpoints, balancing, circuit breakers, retries,
//!   health checks.
//! - [`events`]: the event stream of writes (outbox, Redis Streams or a local file, consumers).
//! - [`error`]: every failure and the one table mapping it to an HTTP or gRPC response.
//! - [`body`]: the response body type every answer uses.
//! - [`certs`]: certificate, key and CA files (PEM) and their reload, for both TLS sides.
//! - [`config`]: `gateway.yaml` → validated [`config::Config`] (every problem with file and line).
//! - [`descriptors`]: `.proto` files (compiled in-process) and descriptor sets → one pool.
//! - [`runtime`]: the immutable snapshot requests use: route table, upstreams, options.
//! - [`state`]: what replicas share through Redis (the client, the fleet's size).
//! - [`server`]: the running gateway: binds the listeners, wires pipeline, admin and reload.
//! - [`workers`]: the worker threads connections are served on.
//! - [`state`]: what outlives a request and replicas share: the response cache.
//! - [`admin`]: the operator-only server (`/healthz`, `/ready`, `/metrics`, `/config`, ...).
//! - [`openapi`]: the OpenAPI 3.1 document of the live route table (`GET /openapi.json`) and
//!   the docs page that reads it (`GET /docs`).
//! - [`metrics`]: Prometheus families, registered once, recorded once per request.
//! - [`access_log`]: one JSON line per request, written off the request path.
//! - [`reflection`]: gRPC server reflection: descriptors fetched from backends (`reflection:
//!   true`) and kept current; the gateway's own reflection service for native gRPC clients.
//! - [`trace`]: W3C trace context (`traceparent` in, a span per upstream attempt out) and the
//!   OTLP span export.
//! - [`reload`]: watches the config and descriptors, rebuilds the runtime, swaps it in.

pub mod access_log;
pub mod admin;
pub mod body;
pub mod certs;
pub mod compression;
pub mod config;
pub mod descriptors;
pub mod edge;
pub mod error;
pub mod events;
#[cfg(test)]
mod fuzz;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod reflection;
pub mod reload;
pub mod runtime;
pub mod server;
pub mod state;
pub mod trace;
pub mod transcode;
pub mod upstream;
pub mod workers;
