//! Calls to gRPC backends: one [`Upstream`] per configured backend, with one or more endpoints;
//! [`Upstream::call`] runs the call loop — pick an endpoint, attempt with a per-try timeout,
//! classify the outcome, feed the endpoint's breaker, and retry with backoff while the deadline,
//! the retry policy and the retry budget allow.
//!
//! Layout, each module using only those listed before it (and this file only naming them):
//! - [`codec`] frames and unframes gRPC messages and reads status trailers;
//! - [`client`]: who a call is for, as breakers tell clients apart;
//! - `reply`: what a call ends with ([`GrpcReply`], [`UpstreamError`]);
//! - [`retry`]: outcome classification, backoff, retry budget;
//! - [`breaker`]: the per-endpoint circuit breaker state machine (which failures count, from
//!   how many clients);
//! - `body`: request bodies and the response read as a stream of messages;
//! - [`tls`]: TLS to a backend (client config from `tls:`, reloaded; the handshake, ALPN `h2`);
//! - `connection`: one HTTP/2 connection per worker thread (h2c or TLS), dialed lazily,
//!   reconnect backoff;
//! - [`endpoint`]: one `host:port` — its connections, breaker, in-flight count, health flag;
//! - `attempt`: one attempt on one endpoint (unary, first item of a stream, pass-through head);
//! - [`stats`]: counters and gauges for the operations side;
//! - [`balancer`]: power-of-two-choices least-request over the endpoints that take traffic;
//! - `options`: what a call may do ([`CallOptions`]) and what it ended with ([`CallOutcome`]);
//! - `backend`: the [`Upstream`] handle itself;
//! - `call`: the call loop (attempt → classification → retry decision);
//! - [`stream`]: server-streaming and pass-through calls through the same loop;
//! - [`resolve`]: periodic DNS re-resolution of host-name endpoints (one endpoint per address);
//! - [`health`]: active `grpc.health.v1` checks, and the start of the background tasks (checks,
//!   DNS re-resolution, certificate reload).

mod attempt;
mod backend;
pub mod balancer;
mod body;
pub mod breaker;
mod call;
pub mod client;
pub mod codec;
mod connection;
pub mod endpoint;
pub mod health;
mod options;
pub(crate) mod random;
mod reply;
pub mod resolve;
pub mod retry;
pub mod stats;
pub mod stream;
pub mod tls;

pub use backend::Upstream;
pub use client::ClientId;
pub use codec::{GrpcStatus, encode_timeout, parse_timeout};
pub use options::{ATTEMPTS_HEADER, CallOptions, CallOutcome, Caller, Try};
pub use reply::{GrpcReply, UpstreamError, retry_after_secs};
