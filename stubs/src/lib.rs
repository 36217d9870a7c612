//! In-memory gRPC stub servers for `tai.Governor` and `tai.Coordinator`, with deterministic
//! fault injection, for the gateway's tests and its `run --with-stubs` mode.
//!
//! # Layout
//! - [`proto`]: the generated messages, servers and clients (`tai`, `google.api`,
//!   `google.rpc`, `grpc.health.v1`).
//! - `server`: [`serve_governor`] / [`serve_coordinator`] on a bound listener, and
//!   [`StubServers`], both on port 0 for tests; h2c or TLS ([`StubListener`]).
//! - `tls`: the TLS mode ([`StubTls`]): server certificate, required client certificates,
//!   the ALPN protocols offered; a rustls acceptor in front of the tonic server.
//! - `store`: [`Store`], the policies and counters both services of one process share.
//! - `registry`: the policy operations themselves, synchronous and lock-protected.
//! - `governor`, `coordinator`: the RPC handlers, thin translations onto the registry.
//! - `fault`: the `x-stub-*` metadata every TAI call passes through first.
//! - `health`: `grpc.health.v1.Health` and [`HealthControl`].
//! - `trailer`: adds the `x-stub-trailer: done` trailer to TAI responses.
//! - `status`: `google.rpc` rich errors (`BadRequest` in `grpc-status-details-bin`).
//! - `otlp`: [`TraceCollector`], an OTLP trace collector (`TraceService/Export`) that keeps the
//!   spans it receives, for tests of the gateway's span export.
//!
//! # Fault injection
//! Every `tai.*` RPC reads these request metadata keys before its handler runs. A malformed
//! value is answered with `INVALID_ARGUMENT` naming the key, so a typo cannot silently
//! disable a fault.
//!
//! | key | effect |
//! |---|---|
//! | `x-stub-delay-ms: N` | sleep N ms first; if the client goes away the call is dropped with it |
//! | `x-stub-fail-code: C` | fail with status C, a number (`14`) or a name (`UNAVAILABLE`, any case); `OK` is refused |
//! | `x-stub-fail-message: M` | the message of an injected failure (default `injected failure`) |
//! | `x-stub-fail-first: N` + `x-stub-fail-key: K` | the first N calls carrying key K fail (with `x-stub-fail-code`, default `UNAVAILABLE`), later ones run normally; counted per key in the [`Store`], so tests using different keys do not interfere |
//! | `x-stub-reply-header: name=value` | add a response header; repeat the key or separate pairs with commas |
//! | `x-stub-fail-after: N` | streaming RPCs only: after N messages (sent, or received for `ProposePolicies`) fail with `x-stub-fail-code` (default `UNAVAILABLE`) instead of failing at the start |
//!
//! The order is: count the call ([`Store::calls`]), sleep, fail if asked, run the handler.
//!
//! # What every TAI response carries
//! - header `x-stub-service: governor` or `coordinator` (on errors too), plus any requested
//!   reply headers;
//! - on unary calls, header `x-stub-peer: ip:port`, the caller's side of the connection that
//!   carried the call, and header `x-stub-traceparent` echoing the `traceparent` the call
//!   carried, if any;
//! - header `x-stub-request-encoding`: the request's `grpc-encoding` (`identity` without one);
//!   request messages compressed with gzip are accepted;
//! - trailer `x-stub-trailer: done` when the response has a trailers frame, which is every
//!   success; errors are sent trailers-only by tonic, so their metadata is all in headers.

mod coordinator;
mod events;
mod fault;
mod governor;
mod health;
mod inbound;
mod otlp;
mod registry;
mod server;
mod status;
mod store;
mod tls;
mod trailer;
mod watch;

/// Generated protobuf messages, tonic servers and tonic clients.
///
/// Clients have no generated `connect`: build them from a `tonic::transport::Channel`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/proto.rs"));

    /// Every compiled file as an encoded `FileDescriptorSet`, options (google.api.http) kept:
    /// what the stubs serve by gRPC server reflection.
    pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
}

pub use fault::{
    DELAY_MS, FAIL_AFTER, FAIL_CODE, FAIL_FIRST, FAIL_KEY, FAIL_MESSAGE, PEER_HEADER, REPLY_HEADER,
    SERVICE_HEADER, TRACEPARENT_HEADER,
};
pub use health::{HealthControl, ServingStatus};
pub use otlp::TraceCollector;
pub use server::{StubListener, StubServers, serve_coordinator, serve_governor, serve_reflection};
pub use store::Store;
pub use tls::StubTls;
pub use trailer::{REQUEST_ENCODING_HEADER, TRAILER_NAME};
