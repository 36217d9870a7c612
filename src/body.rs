//! [`ResponseBody`], the body of every gateway answer: a whole buffer (unary replies, errors,
//! admin pages — as cheap as a bare `Full`) or a stream written as it is produced (server
//! streams, gRPC pass-through).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;

/// The error a streaming body ends with; hyper then aborts the response (HTTP/1.1: the
/// connection closes before the final chunk; HTTP/2: the stream is reset), so a client never
/// mistakes a broken stream for a complete one.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request body the pipeline can read: bytes, with an error it can report, owned by the
/// connection's task.
pub trait RequestBody: Body<Data = Bytes, Error: Into<BodyError>> + Send + Unpin + 'static {}

impl<B> RequestBody for B where
    B: Body<Data = Bytes, Error: Into<BodyError>> + Send + Unpin + 'static
{
}

/// What a body's `poll_frame` returns.
pub type Polled<E> = Poll<Option<Result<Frame<Bytes>, E>>>;

/// Frames produced by polling: the pipeline's stream adapters (transcoded streams both ways,
/// gRPC-Web) implement this; [`Frames`] turns one into an HTTP body.
pub(crate) trait FrameSource: Unpin {
    /// What a failed stream ends with.
    type Error;

    /// The next frame, `None` at the end.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<Self::Error>;

    /// True once nothing more will come.
    fn is_end_stream(&self) -> bool {
        false
    }
}

/// A [`FrameSource`] as an HTTP body.
pub(crate) struct Frames<S>(pub(crate) S);

impl<S: FrameSource> Body for Frames<S> {
    type Data = Bytes;
    type Error = S::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<S::Error> {
        self.get_mut().0.poll_next(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

/// The response body type of every gateway answer.
#[derive(Debug)]
pub struct ResponseBody(Kind);

enum Kind {
    Full(Full<Bytes>),
    Stream(UnsyncBoxBody<Bytes, BodyError>),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Full(full) => full.fmt(f),
            Kind::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// The gRPC status a transcoded stream ended with, set by the stream's writer when it writes the
/// end; carried in the response's extensions so the request is accounted when the body ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamStatus(std::sync::Arc<std::sync::atomic::AtomicI32>);

impl StreamStatus {
    /// Records the final code.
    pub(crate) fn set(&self, code: i32) {
        self.0.store(code, std::sync::atomic::Ordering::Relaxed);
    }

    /// The final code (0 until a failure was recorded).
    pub(crate) fn get(&self) -> i32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ResponseBody {
    /// True for a body written as it is produced (accounted when it ends, not at the head).
    pub fn is_stream(&self) -> bool {
        matches!(self.0, Kind::Stream(_))
    }

    /// The bytes of a whole body; `None` for a stream.
    pub fn into_whole(self) -> Option<Bytes> {
        match self.0 {
            Kind::Full(full) => {
                let mut full = std::pin::pin!(full);
                let waker = std::task::Waker::noop();
                let polled = full.as_mut().poll_frame(&mut Context::from_waker(waker));
                match polled {
                    Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
                    _ => Some(Bytes::new()),
                }
            }
            Kind::Stream(_) => None,
        }
    }

    /// A body whose frames come from `body` as it produces them.
    pub fn stream<B>(body: B) -> ResponseBody
    where
        B: Body<Data = Bytes, Error = BodyError> + Send + 'static,
    {
        ResponseBody(Kind::Stream(UnsyncBoxBody::new(body)))
    }
}

impl From<Full<Bytes>> for ResponseBody {
    fn from(full: Full<Bytes>) -> ResponseBody {
        ResponseBody(Kind::Full(full))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<BodyError> {
        match &mut self.get_mut().0 {
            Kind::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(|never| match never {}))),
            Kind::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(full) => full.is_end_stream(),
            Kind::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(full) => full.size_hint(),
            Kind::Stream(stream) => stream.size_hint(),
        }
    }
}
