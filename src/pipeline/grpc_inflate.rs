//! gzip messages of a gRPC client, inflated on their way to a backend the gateway is not told
//! takes gzip (`upstreams.<name>.send_compressed` unset): a pass-through client that sends
//! `grpc-encoding: gzip` is served like one that does not, instead of the backend refusing it.
//!
//! Each message is read whole, inflated to at most the route's `max_request_bytes` (so a small
//! bomb is refused at the limit, never inflated into memory), and sent on uncompressed. What went
//! wrong is kept in a [`Refusal`] slot, so the call is answered with the precise error (413 /
//! `RESOURCE_EXHAUSTED`, or 400 / `INVALID_ARGUMENT` for broken gzip) rather than the reset it
//! causes upstream.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame};

use crate::body::{FrameSource, Polled};
use crate::compression::RequestEncodingError;
use crate::compression::gzip::{InflateError, inflate};
use crate::upstream::codec;
use crate::upstream::stream::ForwardError;

/// Why an inflated stream was cut off, for the answer; shared with the pipeline.
pub(crate) type Refusal = Arc<Mutex<Option<RequestEncodingError>>>;

/// True when the client's messages are gzip and the backend is not set to take gzip.
pub(crate) fn needed(headers: &HeaderMap, backend_takes_gzip: bool) -> bool {
    !backend_takes_gzip && headers.get("grpc-encoding").is_some_and(|v| v == "gzip")
}

/// A client's message frames, each sent on uncompressed.
pub(crate) struct Inflating<B> {
    inner: B,
    buffer: BytesMut,
    /// The route's `max_request_bytes`: the most a message may hold, inflated or not.
    limit: usize,
    refusal: Refusal,
}

impl<B> Inflating<B> {
    /// Reads `inner`'s frames, refusing messages over `limit` bytes into `refusal`.
    pub(crate) fn new(inner: B, limit: usize, refusal: Refusal) -> Inflating<B> {
        Inflating {
            inner,
            buffer: BytesMut::new(),
            limit,
            refusal,
        }
    }

    /// Records why the stream ends here, and the error it ends with.
    fn refuse(&self, why: RequestEncodingError) -> ForwardError {
        let error = ForwardError(why.to_string());
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
        error
    }

    /// The next whole message, uncompressed and framed; `Ok(None)` until one is buffered.
    fn next_message(&mut self) -> Result<Option<Bytes>, ForwardError> {
        let Some(head) = self.buffer.get(..5) else {
            return Ok(None);
        };
        let flag = head[0];
        let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        // gzip adds at most a few bytes per 16 KiB block and 18 bytes of header and trailer.
        let most = self.limit.saturating_add(self.limit / 1000 + 64);
        if flag > 1 {
            let reason = format!("invalid gRPC frame flag {flag}");
            return Err(self.refuse(RequestEncodingError::Corrupt(reason)));
        }
        if length > most || (flag == 0 && length > self.limit) {
            let limit = self.limit;
            return Err(self.refuse(RequestEncodingError::TooLarge { limit }));
        }
        if self.buffer.len() < 5 + length {
            self.buffer.reserve(5 + length - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(5);
        let payload = self.buffer.split_to(length);
        if flag == 0 {
            return Ok(Some(codec::frame(&payload)));
        }
        match inflate(&payload, self.limit) {
            Ok(message) => Ok(Some(codec::frame(&message))),
            Err(InflateError::TooLarge { limit }) => {
                Err(self.refuse(RequestEncodingError::TooLarge { limit }))
            }
            Err(InflateError::Corrupt(reason)) => {
                Err(self.refuse(RequestEncodingError::Corrupt(reason)))
            }
        }
    }
}

impl<B: Body<Data = Bytes, Error = ForwardError> + Unpin> FrameSource for Inflating<B> {
    type Error = ForwardError;

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<ForwardError> {
        loop {
            if let Some(message) = self.next_message().transpose() {
                return Poll::Ready(Some(message.map(Frame::data)));
            }
            let Some(frame) = ready!(Pin::new(&mut self.inner).poll_frame(cx)) else {
                if self.buffer.is_empty() {
                    return Poll::Ready(None);
                }
                let reason = "the stream ends inside a message".to_owned();
                return Poll::Ready(Some(
                    Err(self.refuse(RequestEncodingError::Corrupt(reason))),
                ));
            };
            match frame?.into_data() {
                Ok(data) => self.buffer.extend_from_slice(&data),
                // Request trailers carry nothing a gRPC backend reads.
                Err(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::body::Frames;
    use crate::compression::gzip::whole;

    fn flagged(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// The body sent on and the refusal, for `chunks` read with a `limit`.
    async fn run(chunks: Vec<Vec<u8>>, limit: usize) -> (Result<Vec<u8>, String>, Option<String>) {
        let stream = tokio_stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, ForwardError>(Frame::data(Bytes::from(c)))),
        );
        let refusal = Refusal::default();
        let body = Frames(Inflating::new(
            StreamBody::new(stream),
            limit,
            refusal.clone(),
        ));
        let sent = body.collect().await.map(|b| b.to_bytes().to_vec());
        let why = refusal
            .lock()
            .expect("lock")
            .as_ref()
            .map(ToString::to_string);
        (sent.map_err(|e| e.0), why)
    }

    #[tokio::test]
    async fn gzip_messages_go_on_uncompressed_and_plain_ones_as_they_are() {
        let one = b"first message, compressed".repeat(4);
        let mut bytes = flagged(1, &whole(&one, 6));
        bytes.extend(flagged(0, b"second"));
        // Split inside a frame head and inside a payload.
        let chunks = vec![
            bytes[..3].to_vec(),
            bytes[3..20].to_vec(),
            bytes[20..].to_vec(),
        ];
        let (sent, why) = run(chunks, 1024).await;
        let mut want = flagged(0, &one);
        want.extend(flagged(0, b"second"));
        assert_eq!((sent, why), (Ok(want), None));
    }

    #[tokio::test]
    async fn a_message_over_the_limit_once_inflated_is_refused_as_too_large() {
        let bomb = whole(&vec![0u8; 1 << 20], 9);
        let (sent, why) = run(vec![flagged(1, &bomb)], 4096).await;
        let reason = "request body exceeds the limit of 4096 bytes once decompressed";
        assert_eq!(
            (sent, why.as_deref()),
            (Err(reason.to_owned()), Some(reason))
        );
    }

    #[tokio::test]
    async fn broken_gzip_and_a_cut_message_are_refused_as_corrupt() {
        let (_, why) = run(vec![flagged(1, b"not gzip at all")], 4096).await;
        assert!(
            why.as_deref()
                .is_some_and(|w| w.starts_with("the request body is not valid gzip")),
            "{why:?}"
        );
        let (_, why) = run(vec![flagged(0, b"whole")[..7].to_vec()], 4096).await;
        assert_eq!(
            why.as_deref(),
            Some("the request body is not valid gzip: the stream ends inside a message")
        );
    }
}
