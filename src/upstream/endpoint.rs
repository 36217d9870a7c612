//! One endpoint of an upstream (one `host:port`, or one address a host name resolved to): its
//! HTTP/2 connections, its circuit breaker, its in-flight count (for least-request balancing),
//! whether health checks keep it in rotation, and counts of its state changes. What one attempt
//! on it does is in `attempt.rs`; its connections in `connection.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use http::uri::Authority;
use tokio::time::Instant;

use std::sync::Arc;

use http::uri::Scheme;

use super::breaker::Breaker;
use super::connection::{Connections, TlsTarget};
pub use super::reply::AttemptError;
use super::tls::UpstreamTls;
use crate::config::UpstreamConfig;

/// One `host:port` of an upstream (or one address a host name resolved to).
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port` as configured, or the resolved `ip:port` (the endpoint's name in logs and
    /// metrics).
    pub authority: String,
    /// The configured entry this endpoint comes from (equal to `authority` unless resolved).
    pub target: String,
    /// The address dialed, when resolved from a host name; otherwise `authority` is dialed.
    pub address: Option<SocketAddr>,
    /// The upstream's name (errors and logs).
    pub(super) upstream: String,
    /// `:authority` of requests: the configured entry (`None` when it is not a valid one).
    pub(super) uri_authority: Option<Authority>,
    /// `:scheme` of requests: `https` over TLS, else `http`.
    pub(super) scheme: Scheme,
    /// Largest response accepted from this endpoint.
    pub(super) max_response_bytes: usize,
    /// Request messages of at least this many bytes go gzip-compressed (`send_compressed`).
    pub(super) send_gzip_from: Option<usize>,
    /// Its HTTP/2 connections.
    pub(super) connections: Connections,
    /// This endpoint's circuit breaker.
    pub breaker: Breaker,
    in_flight: AtomicUsize,
    /// False while active health checks keep it out of rotation.
    healthy: AtomicBool,
    /// This endpoint's state-change counters.
    pub events: EndpointEvents,
}

/// Monotonic counts of one endpoint's state changes (exported per endpoint by the metrics).
#[derive(Debug, Default)]
pub struct EndpointEvents {
    /// Breaker transitions to open.
    pub opened: AtomicU64,
    /// Breaker transitions to half-open.
    pub half_opened: AtomicU64,
    /// Breaker transitions to closed.
    pub closed: AtomicU64,
    /// Times health checks took it out of rotation.
    pub ejected: AtomicU64,
    /// Times health checks put it back.
    pub restored: AtomicU64,
}

/// Counts an attempt as in flight until dropped, however the attempt ends.
pub(super) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Endpoint {
    /// An endpoint of `config` at `authority`, over `tls` when given; nothing is dialed yet.
    pub fn new(
        config: &UpstreamConfig,
        authority: &str,
        tls: Option<&Arc<UpstreamTls>>,
    ) -> Endpoint {
        Endpoint::with_address(config, authority, (authority.to_owned(), None), tls)
    }

    /// An endpoint of `config` at `address`, which the configured entry `target` (a host name)
    /// resolved to; requests still name `target` as their `:authority` (and TLS verifies it).
    pub fn resolved(
        config: &UpstreamConfig,
        target: &str,
        address: SocketAddr,
        tls: Option<&Arc<UpstreamTls>>,
    ) -> Endpoint {
        Endpoint::with_address(config, target, (address.to_string(), Some(address)), tls)
    }

    fn with_address(
        config: &UpstreamConfig,
        target: &str,
        (authority, address): (String, Option<SocketAddr>),
        tls: Option<&Arc<UpstreamTls>>,
    ) -> Endpoint {
        Endpoint {
            connections: Connections::new(
                &config.name,
                (&authority, address),
                config.connect_timeout,
                tls.map(|tls| TlsTarget::new(tls, target)),
            ),
            scheme: if tls.is_some() {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            },
            authority,
            target: target.to_owned(),
            address,
            upstream: config.name.clone(),
            uri_authority: Authority::try_from(target).ok(),
            max_response_bytes: config.max_response_bytes,
            send_gzip_from: config.send_gzip_from,
            breaker: Breaker::new(config.circuit_breaker.clone()),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            events: EndpointEvents::default(),
        }
    }

    /// Largest response accepted from this endpoint.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Calls in progress on this endpoint.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one more call in flight until the guard drops.
    pub(super) fn track(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Pretends `n` more calls are in flight (balancer tests).
    #[cfg(test)]
    pub(crate) fn add_in_flight(&self, n: usize) {
        self.in_flight.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether health checks keep it in rotation.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Sets the health-check verdict; returns whether it changed.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed) != healthy
    }

    /// Whether a failed dial's backoff is still running at `now`.
    pub fn reconnecting(&self, now: Instant) -> bool {
        self.connections.reconnecting(now)
    }
}
