//! End-to-end tests: real stub backends, a real gateway, real sockets on 127.0.0.1.
//! One test binary with modules keeps link time down.

mod admin;
#[allow(dead_code)] // shared helpers; not every module uses every one
mod auth;
mod backend;
mod breaker_clients;
mod cache;
mod compression;
mod connections;
mod cors;
mod deploy;
mod docs_page;
mod edge_auth;
mod edge_config;
mod edge_credentials;
mod edge_http;
mod edge_jwks_https;
mod edge_ops;
mod edge_redaction;
mod edge_transcode;
mod errors;
mod event_consumers;
mod events;
mod exposition;
mod global_limits;
mod grpc_passthrough;
#[allow(dead_code)] // shared helpers; not every module uses every one
mod harness;
mod hostile;
mod json_mapping;
mod keep_alive;
mod logging;
mod openapi;
mod operations;
mod promtool;
mod query_params;
mod rate_limit;
mod redis_forms;
mod redis_server;
mod reflection;
mod reload;
mod requests;
mod resilience;
mod responses;
mod routing;
mod routing_config;
mod routing_precedence;
mod shared_state;
mod streaming;
mod streaming_requests;
mod tai_api;
mod tls;
mod traces;
mod upstream_metrics;
mod upstream_tls;
