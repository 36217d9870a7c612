//! gRPC-Web on the wire: the same message framing as gRPC, with the backend's trailers written
//! as a last frame flagged `0x80` (PROTOCOL-WEB.md in grpc/grpc), and for
//! `application/grpc-web-text` all of it as base64 text both ways.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
#[cfg(test)]
use http::HeaderValue;
use http_body::{Body, Frame};

use crate::body::{BodyError, FrameSource, Polled};
use crate::upstream::stream::ForwardError;

/// A gRPC-Web-text request body, base64-decoded as it arrives (4-character groups; a group
/// split across chunks waits for the rest).
pub(crate) struct Base64Decode<B> {
    inner: B,
    carry: BytesMut,
}

impl<B> Base64Decode<B> {
    /// Decodes `inner` as it arrives.
    pub(crate) fn new(inner: B) -> Base64Decode<B> {
        Base64Decode {
            inner,
            carry: BytesMut::new(),
        }
    }
}

impl<B: Body<Data = Bytes, Error = ForwardError> + Unpin> FrameSource for Base64Decode<B> {
    type Error = ForwardError;

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<ForwardError> {
        let this = self;
        loop {
            let Some(frame) = ready!(Pin::new(&mut this.inner).poll_frame(cx)) else {
                if this.carry.is_empty() {
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(ForwardError(
                    "grpc-web-text body is not whole base64".to_owned(),
                ))));
            };
            let data = match frame?.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            };
            this.carry
                .extend(data.iter().filter(|b| !b.is_ascii_whitespace()));
            let whole = this.carry.len() / 4 * 4;
            if whole == 0 {
                continue;
            }
            let text = this.carry.split_to(whole);
            return Poll::Ready(Some(
                STANDARD
                    .decode(&text)
                    .map(|bytes| Frame::data(Bytes::from(bytes)))
                    .map_err(|e| ForwardError(format!("grpc-web-text body: {e}"))),
            ));
        }
    }
}

/// The backend's gRPC response as gRPC-Web: messages as they are, then the trailers as a frame
/// flagged `0x80`; for `-text`, all of it as one continuous base64 text.
pub(crate) struct WebResponse<B> {
    inner: B,
    text: bool,
    /// `-text`: bytes not yet encoded (fewer than 3).
    carry: BytesMut,
    done: bool,
}

impl<B> WebResponse<B> {
    /// The gRPC response `inner` as gRPC-Web (`text`: base64).
    pub(crate) fn new(inner: B, text: bool) -> WebResponse<B> {
        WebResponse {
            inner,
            text,
            carry: BytesMut::new(),
            done: false,
        }
    }

    /// `bytes` as sent: raw, or base64 continuing the text so far (`last` pads the end).
    fn encode(&mut self, bytes: &[u8], last: bool) -> Bytes {
        if !self.text {
            return Bytes::copy_from_slice(bytes);
        }
        self.carry.extend_from_slice(bytes);
        let whole = if last {
            self.carry.len()
        } else {
            self.carry.len() / 3 * 3
        };
        let chunk = self.carry.split_to(whole);
        Bytes::from(STANDARD.encode(&chunk))
    }
}

/// The gRPC-Web trailers frame: `0x80`, length, then `name: value\r\n` lines.
fn trailer_frame(trailers: &HeaderMap) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in trailers {
        block.extend_from_slice(name.as_str().as_bytes());
        block.extend_from_slice(b": ");
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.put_u8(0x80);
    frame.put_u32(block.len() as u32);
    frame.put_slice(&block);
    frame.to_vec()
}

impl<B: Body<Data = Bytes, Error: Into<BodyError>> + Unpin> FrameSource for WebResponse<B> {
    type Error = BodyError;

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<BodyError> {
        let this = self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    // Ended without trailers (trailers-only answers carry the status in headers).
                    this.done = true;
                    let rest = this.encode(&[], true);
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    let chunk = this.encode(&data, false);
                    if !chunk.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                }
                Err(frame) => {
                    let Ok(trailers) = frame.into_trailers() else {
                        continue;
                    };
                    this.done = true;
                    let chunk = this.encode(&trailer_frame(&trailers), true);
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_frame_is_flagged_and_length_prefixed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(
            trailer_frame(&trailers),
            b"\x80\x00\x00\x00\x10grpc-status: 0\r\n".to_vec()
        );
    }
}
