//! Per-request context: what is known the moment a request arrives (its id, peer, start time,
//! protocol), stamped on its response exactly once.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderValue, Request, Response, header};
use tokio::time::Instant;

use super::protocol::Protocol;
use super::route::Served;
use crate::compression::accept::accepts_gzip;
use crate::edge::metadata::REQUEST_ID;
use crate::listener::connection::Connection;
use crate::trace::context::Hex;
use crate::trace::{RequestTrace, Tracer};

/// Longest client-supplied request id that is propagated; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Generates unique request ids: a per-process random prefix plus a counter, so ids never repeat
/// within a process and are unlikely to collide across processes.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> RequestIds {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        hasher.write_u32(std::process::id());
        RequestIds {
            prefix: hasher.finish(),
            counter: AtomicU64::new(1),
        }
    }

    fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0; 16];
        id[..8].copy_from_slice(&self.prefix.to_be_bytes());
        id[8..].copy_from_slice(&n.to_be_bytes());
        HeaderValue::from_str(Hex::<32>::of(&id).as_str()).unwrap_or(HeaderValue::from_static("0"))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

/// What the pipeline knows about one request besides the request itself.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The client's `x-request-id` if usable, else a generated one.
    pub request_id: HeaderValue,
    /// The socket peer.
    pub peer: SocketAddr,
    /// When the request arrived.
    pub started: Instant,
    /// Request method, for logs.
    pub method: http::Method,
    /// Request URI (cheap to clone: it shares the request's bytes), for logs.
    pub uri: http::Uri,
    /// The protocol the request speaks, which its answer (errors included) speaks too.
    pub protocol: Protocol,
    /// The request's `Origin`, for the CORS grant on its answer.
    pub origin: Option<HeaderValue>,
    /// A JSON client whose `Accept-Encoding` takes gzip.
    pub accepts_gzip: bool,
    /// The connection it came on (absent when the pipeline is called directly), which delivers
    /// the answer.
    pub connection: Option<Arc<Connection>>,
    /// The listener it came in on and the routes that one serves (absent when the pipeline is
    /// called directly).
    pub served: Option<Arc<Served>>,
    /// Its place in its W3C trace (the caller's trace continued, or a new one).
    pub trace: RequestTrace,
}

impl RequestCtx {
    /// Context for a request that just arrived, traced by `tracer`.
    pub fn new<B>(
        request: &Request<B>,
        peer: SocketAddr,
        ids: &RequestIds,
        tracer: &Tracer,
    ) -> RequestCtx {
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.to_str().is_ok())
            .cloned()
            .unwrap_or_else(|| ids.next());
        let protocol = Protocol::of(request.method(), request.headers());
        RequestCtx {
            request_id,
            peer,
            started: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            protocol,
            origin: request.headers().get(header::ORIGIN).cloned(),
            accepts_gzip: !protocol.is_grpc() && accepts_gzip(request.headers()),
            connection: request.extensions().get::<Arc<Connection>>().cloned(),
            served: request.extensions().get::<Arc<Served>>().cloned(),
            trace: tracer.start(request.headers()),
        }
    }

    /// Stamps the response with the request id and logs the outcome.
    pub fn stamp<B>(&self, response: &mut Response<B>) {
        response
            .headers_mut()
            .insert(REQUEST_ID, self.request_id.clone());
        tracing::debug!(
            request_id = ?self.request_id,
            peer = %self.peer,
            method = %self.method,
            path = self.uri.path(),
            status = response.status().as_u16(),
            micros = self.started.elapsed().as_micros() as u64,
            "request done"
        );
    }
}
