//! gzip bodies: a whole answer at once, or a stream frame by frame — each frame's compressed
//! bytes flushed (a sync flush) so a client's decoder hands over every message when it arrives.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body::{Body, Frame};

use crate::body::{BodyError, Polled, ResponseBody};

/// `bytes` gzip-compressed at `level`.
pub fn whole(bytes: &[u8], level: u32) -> Bytes {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::new(level),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Why gzip data could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The data is damaged or cut short.
    #[error("not valid gzip: {0}")]
    Corrupt(String),
    /// Inflated, it would pass the limit (never inflated further than one byte past it).
    #[error("larger than {limit} bytes once decompressed")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// gzip `data` (one member or several) inflated to at most `limit` bytes, so a small bomb is
/// refused at the limit instead of filling memory. One reader for request bodies and gRPC
/// messages alike.
pub fn inflate(data: &[u8], limit: usize) -> Result<Bytes, InflateError> {
    use std::io::Read;
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| InflateError::Corrupt(e.to_string()))?;
    if inflated.len() > limit {
        return Err(InflateError::TooLarge { limit });
    }
    Ok(Bytes::from(inflated))
}

/// A streamed answer, gzip-compressed: one compressed frame per frame of `inner`, flushed; the
/// gzip trailer before the trailers (or at the end).
pub struct GzipBody {
    inner: ResponseBody,
    /// `None` once the gzip stream is finished.
    encoder: Option<GzEncoder<Vec<u8>>>,
    /// Trailers held back while the gzip trailer goes out first.
    trailers: Option<http::HeaderMap>,
}

impl GzipBody {
    /// Compresses `inner` at `level`.
    pub fn new(inner: ResponseBody, level: u32) -> GzipBody {
        GzipBody {
            inner,
            encoder: Some(GzEncoder::new(Vec::new(), Compression::new(level))),
            trailers: None,
        }
    }

    /// Compresses `data` and flushes: the bytes that carry it.
    fn compress(&mut self, data: &[u8]) -> Result<Bytes, BodyError> {
        let encoder = self
            .encoder
            .as_mut()
            .ok_or("data after the end of a gzip stream")?;
        encoder.write_all(data)?;
        encoder.flush()?;
        Ok(Bytes::from(std::mem::take(encoder.get_mut())))
    }

    /// Ends the gzip stream: its last bytes (the trailer), or `None` once already ended.
    fn finish(&mut self) -> Option<Result<Bytes, BodyError>> {
        let encoder = self.encoder.take()?;
        Some(encoder.finish().map(Bytes::from).map_err(Into::into))
    }
}

impl Body for GzipBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<BodyError> {
        let this = self.get_mut();
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        loop {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(this.finish().map(|r| r.map(Frame::data))),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) if data.is_empty() => continue,
                Ok(data) => return Poll::Ready(Some(this.compress(&data).map(Frame::data))),
                Err(frame) => {
                    let Ok(trailers) = frame.into_trailers() else {
                        continue;
                    };
                    let Some(tail) = this.finish() else {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    };
                    this.trailers = Some(trailers);
                    return Poll::Ready(Some(tail.map(Frame::data)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Read;

    /// A stream body of `parts`, then trailers.
    fn stream(parts: &[&'static str]) -> ResponseBody {
        let frames: Vec<Result<Frame<Bytes>, BodyError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .chain([Ok(Frame::trailers(http::HeaderMap::from_iter([(
                http::header::HeaderName::from_static("grpc-status"),
                http::HeaderValue::from_static("0"),
            )])))])
            .collect();
        ResponseBody::stream(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_a_cut_stream_is_corrupt() {
        let bomb = whole(&vec![b'0'; 10 << 20], 9);
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            inflate(&bomb, 1 << 20),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        let json = whole(br#"{"a":1}"#, 6);
        assert_eq!(
            inflate(&json, 100).expect("ok"),
            Bytes::from_static(br#"{"a":1}"#)
        );
        assert!(matches!(
            inflate(&json[..json.len() - 4], 100),
            Err(InflateError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn each_message_decodes_on_its_own_and_the_trailers_follow_the_gzip_end() {
        let mut body = GzipBody::new(stream(&["{\"a\":1}\n", "{\"a\":2}\n"]), 6);
        let mut sent = Vec::new();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("frame");
            match frame.into_data() {
                Ok(data) => {
                    sent.extend_from_slice(&data);
                    // Everything sent so far decodes to whole messages (a sync flush).
                    let mut text = String::new();
                    let _ = flate2::read::GzDecoder::new(&sent[..]).read_to_string(&mut text);
                    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
                }
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&sent[..])
            .read_to_string(&mut text)
            .expect("a complete gzip stream");
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
        assert!(body.is_end_stream());
    }
}
