//! The HTTP/2 bodies of upstream calls: the request body ([`UpstreamBody`]: one framed message,
//! or a client's body streamed through), and a response body read as a sequence of gRPC
//! messages ([`MessageStream`]), decoded incrementally as DATA frames arrive, then the status
//! from the trailers.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body as _;
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

use super::codec::{self, GrpcStatus, MessageEncoding};
use super::reply::UpstreamError;
use super::retry::AttemptOutcome;

/// The request body type of upstream connections: a whole buffer for transcoded calls, or a
/// client's body streamed through for gRPC pass-through.
#[derive(Debug)]
pub enum UpstreamBody {
    /// The framed request message(s), all at once.
    Full(Full<Bytes>),
    /// A body written as the client sends it.
    Stream(UnsyncBoxBody<Bytes, ForwardError>),
}

/// Why a streamed request body broke off (the client's connection failed, or its framing was
/// invalid); the upstream stream is reset.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ForwardError(pub String);

impl UpstreamBody {
    /// One framed message.
    pub fn message(message: &[u8]) -> UpstreamBody {
        UpstreamBody::Full(Full::new(codec::frame(message)))
    }

    /// One message gzip-compressed, framed as such (sent with `grpc-encoding: gzip`).
    pub fn gzip_message(message: &[u8]) -> UpstreamBody {
        UpstreamBody::Full(Full::new(codec::frame_gzip(message)))
    }

    /// The same body, noting in `progress` how far it got (a whole message is sent at once).
    pub(super) fn watched(self, progress: &Arc<BodyProgress>) -> UpstreamBody {
        match self {
            UpstreamBody::Full(full) => {
                progress.set(BodyProgress::ENDED);
                UpstreamBody::Full(full)
            }
            UpstreamBody::Stream(inner) => {
                progress.set(BodyProgress::SENDING);
                UpstreamBody::Stream(UnsyncBoxBody::new(Watched {
                    inner,
                    progress: progress.clone(),
                }))
            }
        }
    }
}

/// How far a streamed request body got, shared by the body (polled by the connection's task)
/// and the attempt that sent it, so the attempt can tell a failure the client's body explains
/// from the endpoint's.
#[derive(Debug)]
pub(super) struct BodyProgress(AtomicU8);

impl Default for BodyProgress {
    fn default() -> Self {
        BodyProgress(AtomicU8::new(BodyProgress::NOT_SENT))
    }
}

impl BodyProgress {
    const NOT_SENT: u8 = 0;
    const SENDING: u8 = 1;
    const ENDED: u8 = 2;
    const FAILED: u8 = 3;

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }

    /// The outcome of an attempt that failed with `outcome`, given how far its body got: a body
    /// that broke off explains the reset ([`AttemptOutcome::RequestAborted`]), and one still
    /// incomplete explains a timeout ([`AttemptOutcome::RequestStalled`]).
    pub(super) fn explain(&self, outcome: AttemptOutcome) -> AttemptOutcome {
        match (self.0.load(Ordering::Relaxed), outcome) {
            (BodyProgress::FAILED, _) => AttemptOutcome::RequestAborted,
            (BodyProgress::SENDING, AttemptOutcome::TimedOut) => AttemptOutcome::RequestStalled,
            _ => outcome,
        }
    }
}

/// A streamed request body that reports its end or failure to a [`BodyProgress`].
struct Watched {
    inner: UnsyncBoxBody<Bytes, ForwardError>,
    progress: Arc<BodyProgress>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = ForwardError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, ForwardError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.progress.set(BodyProgress::ENDED),
            Poll::Ready(Some(Err(_))) => self.progress.set(BodyProgress::FAILED),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let ended = self.inner.is_end_stream();
        if ended {
            self.progress.set(BodyProgress::ENDED);
        }
        ended
    }

    /// Unknown, like [`UpstreamBody`]'s: no `content-length` reaches the backend.
    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::default()
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = ForwardError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, ForwardError>>> {
        match self.get_mut() {
            UpstreamBody::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(|never| match never {}))),
            UpstreamBody::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Full(full) => full.is_end_stream(),
            UpstreamBody::Stream(stream) => stream.is_end_stream(),
        }
    }

    /// Unknown, on purpose: hyper's HTTP/2 client turns an exact size into a `content-length`
    /// header, which the backend would see as gRPC metadata (gRPC frames carry their own lengths).
    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::default()
    }
}

/// One item of a server stream.
#[derive(Debug)]
pub enum StreamItem {
    /// A message (unframed protobuf bytes).
    Message(Bytes),
    /// The stream ended with this status; the trailers it came in.
    End(GrpcStatus, HeaderMap),
}

/// The rest of a server stream, after its first message.
#[derive(Debug)]
pub struct MessageStream {
    body: Incoming,
    buffer: BytesMut,
    /// Largest message accepted (the upstream's `max_response_bytes`), inflated or not.
    limit: usize,
    /// How the backend compresses messages flagged compressed.
    encoding: MessageEncoding,
    upstream: String,
}

impl MessageStream {
    /// Reads messages from a gRPC response `body`.
    pub fn new(body: Incoming, limit: usize, upstream: String) -> MessageStream {
        MessageStream {
            body,
            buffer: BytesMut::new(),
            limit,
            encoding: MessageEncoding::Identity,
            upstream,
        }
    }

    /// Messages flagged compressed are in `encoding` (the response's `grpc-encoding`).
    pub fn encoded(mut self, encoding: MessageEncoding) -> MessageStream {
        self.encoding = encoding;
        self
    }

    /// The next item; after [`StreamItem::End`] or an error the stream must not be polled again.
    pub fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Result<StreamItem, UpstreamError>> {
        loop {
            if let Some(message) = self.take_message()? {
                return Poll::Ready(Ok(StreamItem::Message(message)));
            }
            let frame = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    return Poll::Ready(Err(UpstreamError::Unavailable {
                        upstream: self.upstream.clone(),
                        reason: format!("response stream failed: {e}"),
                    }));
                }
                None => return Poll::Ready(Err(self.invalid("stream ended without trailers"))),
            };
            match frame.into_data() {
                Ok(data) => self.buffer.extend_from_slice(&data),
                Err(frame) => {
                    let trailers = frame.into_trailers().unwrap_or_default();
                    if !self.buffer.is_empty() {
                        return Poll::Ready(Err(self.invalid("stream ended inside a message")));
                    }
                    let status = GrpcStatus::from_headers(&trailers)
                        .ok_or_else(|| self.invalid("no grpc-status in trailers"))?;
                    return Poll::Ready(Ok(StreamItem::End(status, trailers)));
                }
            }
        }
    }

    /// The next item (see [`MessageStream::poll_item`]).
    pub async fn next(&mut self) -> Result<StreamItem, UpstreamError> {
        poll_fn(|cx| self.poll_item(cx)).await
    }

    /// A complete message from the buffer, if one is there.
    fn take_message(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        super::codec::take_frame(&mut self.buffer, self.limit, &self.encoding)
            .map_err(|reason| self.invalid(&reason))
    }

    fn invalid(&self, reason: &str) -> UpstreamError {
        UpstreamError::InvalidResponse {
            upstream: self.upstream.clone(),
            reason: reason.to_owned(),
        }
    }
}
