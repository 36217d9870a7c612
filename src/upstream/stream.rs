//! Server-streaming and pass-through calls, through the ordinary call loop.
//!
//! [`Upstream::open_stream`] runs the call loop (balancing, breakers, retries with budget) up to
//! the *first* item of the stream: the deadline bounds the time until the first message (or the
//! end of an empty stream), and only failures before it are retried or count against a breaker.
//! After the first message the stream has no deadline — watch streams are meant to stay open —
//! and ends when the backend ends it or the reader drops it (which resets the HTTP/2 stream,
//! cancelling the call at the backend).
//!
//! [`Upstream::forward`] passes a native gRPC (or gRPC-Web) request through as it is.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::HeaderMap;
use http::uri::PathAndQuery;
use hyper::body::Incoming;

use super::backend::Upstream;
pub use super::body::{ForwardError, MessageStream, StreamItem, UpstreamBody};
use super::codec::GrpcStatus;
use super::options::{CallOptions, Try};
use super::reply::{GrpcReply, UpstreamError};

/// What [`Upstream::open_stream`] got: the reply head with the first message (or the status of
/// a stream that ended at once) and, when it did not end, the rest of the stream.
#[derive(Debug)]
pub struct OpenedStream {
    /// Status (OK while the stream goes on), the first message if any, response headers.
    pub reply: GrpcReply,
    /// The messages after the first; `None` once the stream has ended.
    pub rest: Option<MessageStream>,
}

impl Upstream {
    /// Forwards a gRPC request as it is (pass-through for native gRPC and gRPC-Web clients):
    /// `metadata` and the streamed `body` go to an endpoint picked like any call; the response
    /// head is awaited within `options.deadline`, which also goes to the backend as
    /// `grpc-timeout` and so bounds the whole call. The body cannot be sent twice, so only
    /// attempts that never sent it (refused connections) are tried again.
    pub async fn forward(
        &self,
        grpc_path: &PathAndQuery,
        metadata: HeaderMap,
        body: UpstreamBody,
        options: &CallOptions<'_>,
    ) -> (Result<http::Response<Incoming>, UpstreamError>, u32) {
        let body = Mutex::new(Some(body));
        let response = Mutex::new(None);
        let outcome = self
            .call_with(options, |endpoint, attempt: Try| {
                let metadata = attempt.metadata(&metadata);
                let (body, response) = (&body, &response);
                async move {
                    let timeout = attempt.timeout;
                    let answer = endpoint.forward(grpc_path, metadata, body, timeout).await?;
                    // The breaker sees the status of a trailers-only answer, else success.
                    let status =
                        GrpcStatus::from_headers(answer.headers()).unwrap_or_else(GrpcStatus::ok);
                    *response.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
                    Ok(GrpcReply::status_only(status, HeaderMap::new()))
                }
            })
            .await;
        let response = response
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let result = outcome.result.and_then(|_| {
            response.ok_or_else(|| UpstreamError::Unavailable {
                upstream: self.name.clone(),
                reason: "no response".to_owned(),
            })
        });
        (result, outcome.attempts)
    }

    /// Starts a server-streaming call of `grpc_path` with one request `message`, and waits for
    /// its first item within `options.deadline` (retrying before it as `options` allow).
    ///
    /// Returns the outcome and the attempts made, like [`Upstream::call`].
    pub async fn open_stream(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        options: &CallOptions<'_>,
    ) -> (Result<OpenedStream, UpstreamError>, u32) {
        // The attempt that got a first message leaves the rest of its stream here.
        let rest = Mutex::new(None);
        let outcome = self
            .call_with(options, |endpoint, attempt: Try| {
                let (message, metadata) = (message.clone(), attempt.metadata(&metadata));
                let rest = &rest;
                async move {
                    let (reply, stream) = endpoint
                        .open_stream(grpc_path, message, metadata, attempt.timeout)
                        .await?;
                    *rest.lock().unwrap_or_else(PoisonError::into_inner) = stream;
                    Ok(reply)
                }
            })
            .await;
        let rest = rest.into_inner().unwrap_or_else(PoisonError::into_inner);
        let result = outcome.result.map(|reply| OpenedStream {
            rest: if reply.message.is_some() { rest } else { None },
            reply,
        });
        (result, outcome.attempts)
    }
}
