//! Calls to gRPC backends: one [`Upstream`] per configured backend, holding a pooled HTTP/2 (h2c)
//! client; [`Upstream::unary`] sends one framed message and returns the decoded gRPC outcome.
//!
//! Layout: [`codec`] frames and unframes gRPC messages and reads status trailers; this file owns the
//! connection pool and the call (deadline, classification of failures).

pub mod codec;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

pub use codec::{GrpcStatus, encode_timeout, parse_timeout};

use crate::config::UpstreamConfig;

/// Why a backend call produced no gRPC answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be made or broke before an answer (maps to 503).
    #[error("upstream `{upstream}` is unreachable: {reason}")]
    Unavailable {
        /// Upstream name.
        upstream: String,
        /// What the transport said.
        reason: String,
    },
    /// The deadline passed before the answer was complete (maps to 504).
    #[error("upstream `{upstream}` did not answer within {timeout:?}")]
    DeadlineExceeded {
        /// Upstream name.
        upstream: String,
        /// The deadline that was applied.
        timeout: Duration,
    },
    /// The backend answered with something that is not a valid gRPC response (maps to 502).
    #[error("upstream `{upstream}` sent an invalid gRPC response: {reason}")]
    InvalidResponse {
        /// Upstream name.
        upstream: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// The outcome of a unary call that reached the backend and got a well-formed gRPC answer.
#[derive(Debug)]
pub struct GrpcReply {
    /// `grpc-status` and friends (OK or an error the backend chose).
    pub status: GrpcStatus,
    /// The response message bytes (unframed), when status is OK.
    pub message: Option<Bytes>,
    /// Response headers, then trailers, as the backend sent them.
    pub metadata: HeaderMap,
}

/// A configured gRPC backend with its connection.
///
/// gRPC multiplexes every call over one long-lived HTTP/2 connection, so the upstream keeps a
/// single `SendRequest` handle (cheap to clone per call) instead of a general-purpose pool, and
/// dials again only when that connection has closed.
#[derive(Debug)]
pub struct Upstream {
    /// Name routes refer to.
    pub name: String,
    authority: String,
    /// `authority` parsed once for request URIs (`None` only if config validation let a bad one by).
    uri_authority: Option<Authority>,
    connect_timeout: Duration,
    max_response_bytes: usize,
    /// The live connection, if any.
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
    /// Held while dialing so a burst of calls on a dead connection makes one new connection.
    dialing: tokio::sync::Mutex<()>,
}

impl Upstream {
    /// Creates the backend's handle; no connection is made until the first call.
    pub fn new(config: &UpstreamConfig) -> Upstream {
        Upstream {
            name: config.name.clone(),
            authority: config.authority.clone(),
            uri_authority: Authority::try_from(config.authority.as_str()).ok(),
            connect_timeout: config.connect_timeout,
            max_response_bytes: config.max_response_bytes,
            sender: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    fn live_sender(&self) -> Option<SendRequest<Full<Bytes>>> {
        let guard = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// A handle on a live HTTP/2 connection, dialing one if there is none.
    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, UpstreamError> {
        if let Some(sender) = self.live_sender() {
            return Ok(sender);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(sender) = self.live_sender() {
            return Ok(sender);
        }
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| {
            self.unavailable_reason(format!(
                "connect timed out after {:?}",
                self.connect_timeout
            ))
        })?
        .map_err(|e| self.unavailable_reason(format!("connect failed: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unavailable_reason(format!("HTTP/2 handshake failed: {e}")))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(upstream = %name, error = %e, "upstream connection closed");
            }
        });
        *self.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    /// The `host:port` this upstream connects to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends one request message to `grpc_path` (`/pkg.Service/Method`) and waits for the answer,
    /// at most `timeout` in all (connect, send, headers, body, trailers).
    pub async fn unary(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<GrpcReply, UpstreamError> {
        match tokio::time::timeout(
            timeout,
            self.unary_inner(grpc_path, message, metadata, timeout),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::DeadlineExceeded {
                upstream: self.name.clone(),
                timeout,
            }),
        }
    }

    async fn unary_inner(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<GrpcReply, UpstreamError> {
        let authority = self.uri_authority.clone().ok_or_else(|| {
            self.invalid(format!("`{}` is not a valid authority", self.authority))
        })?;
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority)
            .path_and_query(grpc_path.clone())
            .build()
            .map_err(|e| self.invalid(format!("cannot build request URI: {e}")))?;
        let mut request = Request::post(uri)
            .body(Full::new(codec::frame(&message)))
            .map_err(|e| self.invalid(format!("cannot build request: {e}")))?;
        let headers = request.headers_mut();
        headers.extend(metadata);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("tai-gateway/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert("grpc-timeout", encode_timeout(timeout));

        let mut sender = self.connection().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unavailable(&e))?;
        let (parts, body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(self.invalid(format!("HTTP status {}", parts.status)));
        }
        let is_grpc = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if !is_grpc {
            return Err(self.invalid("content-type is not application/grpc".to_owned()));
        }
        let mut metadata = parts.headers;
        // Trailers-only: the status is in the headers and the body is empty.
        if let Some(status) = GrpcStatus::from_headers(&metadata) {
            return Ok(GrpcReply {
                status,
                message: None,
                metadata,
            });
        }
        let collected = Limited::new(body, self.max_response_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    self.invalid(format!(
                        "response larger than {} bytes",
                        self.max_response_bytes
                    ))
                } else {
                    self.unavailable_reason(format!("response body failed: {e}"))
                }
            })?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = collected.to_bytes();
        let status = GrpcStatus::from_headers(&trailers)
            .ok_or_else(|| self.invalid("no grpc-status in trailers".to_owned()))?;
        metadata.extend(trailers);
        let message = if status.is_ok() {
            Some(codec::unframe_single(data).map_err(|reason| self.invalid(reason))?)
        } else {
            None
        };
        Ok(GrpcReply {
            status,
            message,
            metadata,
        })
    }

    fn invalid(&self, reason: String) -> UpstreamError {
        UpstreamError::InvalidResponse {
            upstream: self.name.clone(),
            reason,
        }
    }

    fn unavailable(&self, error: &hyper::Error) -> UpstreamError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        self.unavailable_reason(reason)
    }

    fn unavailable_reason(&self, reason: String) -> UpstreamError {
        UpstreamError::Unavailable {
            upstream: self.name.clone(),
            reason,
        }
    }
}
