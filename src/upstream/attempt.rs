//! One attempt on one endpoint: the gRPC request built and sent over the endpoint's connection,
//! the answer read and checked, all within the attempt's timeout (a breaker failure when it
//! passes). Three kinds, by how much of the answer the attempt waits for:
//!
//! - [`Endpoint::attempt`]: a unary call, the whole answer;
//! - `open_stream`: a server stream, up to its first item;
//! - `forward`: a pass-through call, up to the response head.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::body::{BodyProgress, MessageStream, StreamItem, UpstreamBody};
use super::codec::{self, GrpcStatus, MessageEncoding, encode_timeout};
use super::endpoint::Endpoint;
use super::reply::{AttemptError, GrpcReply, UpstreamError};
use super::retry::AttemptOutcome;

impl Endpoint {
    /// One attempt: sends `message` to `grpc_path` and waits at most `timeout` for the whole
    /// answer (connect, send, headers, body, trailers).
    pub async fn attempt(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<GrpcReply, AttemptError> {
        let _in_flight = self.track();
        let sending = async {
            let (body, metadata) = self.request_body(&message, metadata);
            let response = self
                .exchange(grpc_path, body, metadata, Some(timeout))
                .await?;
            self.read_reply(response).await
        };
        self.within(timeout, sending).await
    }

    /// One server-streaming attempt: sends `message` and waits at most `timeout` for the
    /// response head and the stream's first item. The reply holds the first message (status
    /// OK) with the rest of the stream, or the status of a stream that ended at once.
    pub(super) async fn open_stream(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        timeout: Duration,
    ) -> Result<(GrpcReply, Option<MessageStream>), AttemptError> {
        let _in_flight = self.track();
        let opening = async {
            // No `grpc-timeout`: the deadline bounds only the wait for the first message.
            let (body, metadata) = self.request_body(&message, metadata);
            let response = self.exchange(grpc_path, body, metadata, None).await?;
            let (parts, body) = response.into_parts();
            self.check_head(&parts)?;
            let metadata = parts.headers;
            if let Some(status) = GrpcStatus::from_headers(&metadata) {
                return Ok((GrpcReply::status_only(status, metadata), None));
            }
            let stream = MessageStream::new(body, self.max_response_bytes, self.upstream.clone())
                .encoded(MessageEncoding::of(&metadata));
            first_item(stream, metadata).await
        };
        self.within(timeout, opening).await
    }

    /// One pass-through attempt (native gRPC and gRPC-Web clients): takes the request body from
    /// `body` once a connection is up (so a failed dial leaves it for the next endpoint), sends
    /// it with `metadata`, and waits at most `timeout` for the response head. The body of the
    /// response is left unread; `timeout` also goes to the backend as `grpc-timeout`.
    ///
    /// A failure the client's body explains is told apart from the endpoint's: a body that
    /// broke off (a malformed element, the client gone) resets the call, which is
    /// [`AttemptOutcome::RequestAborted`]; a timeout while the body is still incomplete is
    /// [`AttemptOutcome::RequestStalled`].
    pub(super) async fn forward(
        &self,
        grpc_path: &PathAndQuery,
        metadata: HeaderMap,
        body: &Mutex<Option<UpstreamBody>>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, AttemptError> {
        let _in_flight = self.track();
        let progress = Arc::new(BodyProgress::default());
        let sending = async {
            self.connections.sender().await?;
            let Some(body) = body.lock().unwrap_or_else(PoisonError::into_inner).take() else {
                // An earlier attempt sent the (unrepeatable) body: nothing new to learn here.
                let reason = "the request body was already sent".to_owned();
                return Err(AttemptError::unavailable(
                    &self.upstream,
                    reason,
                    AttemptOutcome::Backoff,
                ));
            };
            let body = body.watched(&progress);
            let response = self
                .exchange(grpc_path, body, metadata, Some(timeout))
                .await?;
            let (parts, body) = response.into_parts();
            self.check_head(&parts)?;
            Ok(http::Response::from_parts(parts, body))
        };
        self.within(timeout, sending).await.map_err(|mut e| {
            e.outcome = progress.explain(e.outcome);
            e
        })
    }

    /// The body carrying `message`, gzip-compressed when the upstream is set to
    /// (`send_compressed`) and the message is large enough, with `metadata` saying how.
    fn request_body(&self, message: &[u8], mut metadata: HeaderMap) -> (UpstreamBody, HeaderMap) {
        match self.send_gzip_from {
            Some(from) if message.len() >= from => {
                metadata.insert("grpc-encoding", HeaderValue::from_static("gzip"));
                (UpstreamBody::gzip_message(message), metadata)
            }
            _ => {
                // Never a client's claim about a frame the gateway wrote uncompressed.
                metadata.remove("grpc-encoding");
                (UpstreamBody::message(message), metadata)
            }
        }
    }

    /// Runs one attempt, failing it as timed out (a breaker failure) once `timeout` has passed.
    ///
    /// Not an `async fn`: one would keep the attempt's future twice (the argument and the
    /// timeout holding it), and every request's future would copy both.
    fn within<'a, T>(
        &'a self,
        timeout: Duration,
        attempt: impl Future<Output = Result<T, AttemptError>> + 'a,
    ) -> impl Future<Output = Result<T, AttemptError>> + 'a {
        tokio::time::timeout(timeout, attempt).map(move |result| {
            result.unwrap_or_else(|_| {
                Err(AttemptError {
                    error: UpstreamError::DeadlineExceeded {
                        upstream: self.upstream.clone(),
                        timeout,
                    },
                    outcome: AttemptOutcome::TimedOut,
                })
            })
        })
    }

    fn invalid(&self, reason: String) -> AttemptError {
        AttemptError::invalid(&self.upstream, reason)
    }

    /// Sends one request and returns the response with its body unread; `timeout`, when given,
    /// goes to the backend as `grpc-timeout`.
    async fn exchange(
        &self,
        grpc_path: &PathAndQuery,
        body: UpstreamBody,
        metadata: HeaderMap,
        timeout: Option<Duration>,
    ) -> Result<http::Response<Incoming>, AttemptError> {
        let authority = self.uri_authority.clone().ok_or_else(|| {
            self.invalid(format!("`{}` is not a valid authority", self.authority))
        })?;
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(authority)
            .path_and_query(grpc_path.clone())
            .build()
            .map_err(|e| self.invalid(format!("cannot build request URI: {e}")))?;
        let mut request = Request::post(uri)
            .body(body)
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
        if let Some(timeout) = timeout {
            headers.insert("grpc-timeout", encode_timeout(timeout));
        }

        let mut sender = self.connections.sender().await?;
        let response = sender
            .try_send_request(request)
            .await
            .map_err(|e| self.send_failed(e.message().is_none(), e.error()))?;
        self.connections.answered();
        Ok(response)
    }

    /// Why a request could not be sent or got no answer head: a TLS failure when the backend's
    /// TLS alert broke the connection (see `TlsAlert`), else the endpoint is unavailable.
    /// `reset` says the request may have left.
    fn send_failed(&self, reset: bool, error: &hyper::Error) -> AttemptError {
        let outcome = if reset {
            AttemptOutcome::Reset
        } else {
            AttemptOutcome::NotSent
        };
        match self.connections.tls_alert() {
            Some(cause) => {
                let reason = format!("{}: {cause}", self.authority);
                tracing::warn!(upstream = %self.upstream, endpoint = %self.authority, error = %reason, "TLS to the backend failed");
                AttemptError::tls(&self.upstream, reason, outcome)
            }
            None => AttemptError::unavailable(&self.upstream, error_chain(error), outcome),
        }
    }

    /// Refuses a response head that is not a gRPC answer.
    fn check_head(&self, parts: &http::response::Parts) -> Result<(), AttemptError> {
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
        Ok(())
    }

    /// Reads a unary answer: the status from a trailers-only head, else the one message and the
    /// status from the trailers.
    async fn read_reply(
        &self,
        response: http::Response<Incoming>,
    ) -> Result<GrpcReply, AttemptError> {
        let (parts, body) = response.into_parts();
        self.check_head(&parts)?;
        let mut metadata = parts.headers;
        // Trailers-only: the status is in the headers and the body is empty.
        if let Some(status) = GrpcStatus::from_headers(&metadata) {
            return Ok(GrpcReply::status_only(status, metadata));
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
                    let reason = format!("response body failed: {e}");
                    AttemptError::unavailable(&self.upstream, reason, AttemptOutcome::Reset)
                }
            })?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = collected.to_bytes();
        let status = GrpcStatus::from_headers(&trailers)
            .ok_or_else(|| self.invalid("no grpc-status in trailers".to_owned()))?;
        metadata.extend(trailers);
        let message = if status.is_ok() {
            let encoding = MessageEncoding::of(&metadata);
            let message = codec::unframe_single_encoded(data, &encoding, self.max_response_bytes);
            Some(message.map_err(|reason| self.invalid(reason))?)
        } else {
            None
        };
        Ok(GrpcReply {
            status,
            message,
            metadata,
        })
    }
}

/// Reads the first item of a server stream whose head carried `metadata`: a message (the reply
/// is OK and the rest of the stream follows) or the end (the reply has its status).
async fn first_item(
    mut stream: MessageStream,
    mut metadata: HeaderMap,
) -> Result<(GrpcReply, Option<MessageStream>), AttemptError> {
    let first = stream.next().await.map_err(|error| AttemptError {
        outcome: match error {
            UpstreamError::Unavailable { .. } => AttemptOutcome::Reset,
            _ => AttemptOutcome::Invalid,
        },
        error,
    })?;
    Ok(match first {
        StreamItem::Message(message) => {
            let reply = GrpcReply {
                status: GrpcStatus::ok(),
                message: Some(message),
                metadata,
            };
            (reply, Some(stream))
        }
        StreamItem::End(status, trailers) => {
            metadata.extend(trailers);
            (GrpcReply::status_only(status, metadata), None)
        }
    })
}

/// An error with its causes, `outer: inner: ...`.
fn error_chain(error: &hyper::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}
