//! gRPC wire details over HTTP/2: length-prefixed message frames, `grpc-timeout` values and the
//! status carried in headers or trailers (see grpc's PROTOCOL-HTTP2.md).

use std::time::Duration;

use base64::Engine;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};

use crate::compression::gzip::InflateError;

/// The gRPC status of a finished call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    /// Numeric code (0 = OK), as sent; codes outside 0..=16 are kept and treated as UNKNOWN.
    pub code: i32,
    /// `grpc-message`, percent-decoded.
    pub message: String,
    /// `grpc-status-details-bin`, base64-decoded (an encoded `google.rpc.Status`).
    pub details: Option<Bytes>,
}

impl GrpcStatus {
    /// Reads the status from a header block (trailers, or headers of a trailers-only answer).
    /// `None` when there is no well-formed `grpc-status`.
    pub fn from_headers(headers: &HeaderMap) -> Option<GrpcStatus> {
        let code: i32 = headers
            .get("grpc-status")?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let message = headers
            .get("grpc-message")
            .map(|v| percent_decode_lossy(v.as_bytes()))
            .unwrap_or_default();
        let details = headers.get("grpc-status-details-bin").and_then(|v| {
            let text = v.as_bytes();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(
                    text.strip_suffix(b"==")
                        .or_else(|| text.strip_suffix(b"="))
                        .unwrap_or(text),
                )
                .ok()
                .map(Bytes::from)
        });
        Some(GrpcStatus {
            code,
            message,
            details,
        })
    }

    /// Status OK, with no message or details.
    pub fn ok() -> GrpcStatus {
        GrpcStatus {
            code: 0,
            message: String::new(),
            details: None,
        }
    }

    /// True for code 0.
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }
}

/// Prefixes one uncompressed message with the 5-byte gRPC frame header.
pub fn frame(message: &[u8]) -> Bytes {
    frame_flagged(0, message)
}

/// gzip level of request messages sent compressed: the fastest, since the gateway pays it on
/// every call and a backend's link is rarely the bottleneck.
const SEND_GZIP_LEVEL: u32 = 1;

/// One message gzip-compressed, in a frame flagged compressed (to go with `grpc-encoding: gzip`).
pub fn frame_gzip(message: &[u8]) -> Bytes {
    frame_flagged(
        1,
        &crate::compression::gzip::whole(message, SEND_GZIP_LEVEL),
    )
}

fn frame_flagged(flag: u8, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(flag);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// How a backend compresses its messages: the `grpc-encoding` of its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageEncoding {
    /// Messages flagged compressed are refused.
    Identity,
    /// Messages flagged compressed are gzip.
    Gzip,
    /// A coding the gateway never offered: compressed messages are refused, naming it.
    Other(String),
}

impl MessageEncoding {
    /// The encoding a response's `headers` announce.
    pub fn of(headers: &HeaderMap) -> MessageEncoding {
        match headers.get("grpc-encoding").map(|v| v.as_bytes()) {
            None | Some(b"identity") => MessageEncoding::Identity,
            Some(b"gzip") => MessageEncoding::Gzip,
            Some(other) => MessageEncoding::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }

    /// The message a frame flagged `flag` carries: as is, or inflated to at most `limit` bytes.
    pub fn message(&self, flag: u8, payload: Bytes, limit: usize) -> Result<Bytes, String> {
        match (flag, self) {
            (0, _) => Ok(payload),
            (1, MessageEncoding::Gzip) => inflate(&payload, limit),
            (1, MessageEncoding::Identity) => {
                Err("compressed message without a grpc-encoding".to_owned())
            }
            (1, MessageEncoding::Other(name)) => Err(format!(
                "message compressed with `{name}`, which the gateway did not offer"
            )),
            (flag, _) => Err(format!("invalid frame flag {flag}")),
        }
    }
}

/// A gzip message inflated to at most `limit` bytes.
fn inflate(payload: &[u8], limit: usize) -> Result<Bytes, String> {
    crate::compression::gzip::inflate(payload, limit).map_err(|e| match e {
        InflateError::Corrupt(reason) => format!("compressed message is not valid gzip: {reason}"),
        InflateError::TooLarge { limit } => {
            format!("message larger than {limit} bytes once decompressed")
        }
    })
}

/// Reads exactly one uncompressed message out of a unary response body.
pub fn unframe_single(data: Bytes) -> Result<Bytes, String> {
    unframe_single_encoded(data, &MessageEncoding::Identity, usize::MAX)
}

/// Reads exactly one message out of a unary response body whose messages are in `encoding`,
/// inflated to at most `limit` bytes.
pub fn unframe_single_encoded(
    mut data: Bytes,
    encoding: &MessageEncoding,
    limit: usize,
) -> Result<Bytes, String> {
    if data.len() < 5 {
        return Err(format!(
            "response body of {} bytes has no complete message frame",
            data.len()
        ));
    }
    let flag = data[0];
    let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if flag > 1 {
        return Err(format!("invalid frame flag {flag}"));
    }
    if data.len() - 5 != length {
        return Err(format!(
            "frame announces {length} bytes but the body holds {}",
            data.len() - 5
        ));
    }
    encoding.message(flag, data.split_off(5), limit)
}

/// Takes one complete message off the front of a stream's `buffer`, inflated when flagged
/// compressed in `encoding`; `Ok(None)` when more bytes are needed (room for the announced message
/// is reserved). `Err` is the reason the stream is invalid: a bad flag, a compression not
/// offered, or a message larger than `limit` bytes (before or after inflating).
pub(crate) fn take_frame(
    buffer: &mut BytesMut,
    limit: usize,
    encoding: &MessageEncoding,
) -> Result<Option<Bytes>, String> {
    if buffer.len() < 5 {
        return Ok(None);
    }
    let flag = buffer[0];
    let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
    if flag > 1 {
        return Err(format!("invalid frame flag {flag}"));
    }
    if length > limit {
        return Err(format!(
            "stream message of {length} bytes is larger than {limit} bytes"
        ));
    }
    if buffer.len() < 5 + length {
        buffer.reserve(5 + length - buffer.len());
        return Ok(None);
    }
    buffer.advance(5);
    let payload = buffer.split_to(length).freeze();
    encoding.message(flag, payload, limit).map(Some)
}

/// Formats a deadline as a `grpc-timeout` value (at most 8 digits, coarsest exact unit).
pub fn encode_timeout(timeout: Duration) -> HeaderValue {
    const MOST: u128 = 100_000_000;
    let micros = timeout.as_micros();
    let (amount, unit) = if micros < MOST {
        (micros, b'u')
    } else if micros / 1000 < MOST {
        (micros / 1000, b'm')
    } else {
        ((micros / 1_000_000).min(MOST - 1), b'S')
    };
    // At most 8 digits and the unit, written without `format!` (one per call on the hot path).
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(amount).as_bytes();
    let mut text = [unit; 9];
    text[..digits.len()].copy_from_slice(digits);
    HeaderValue::from_bytes(&text[..=digits.len()]).unwrap_or(HeaderValue::from_static("99999999S"))
}

/// Parses a `grpc-timeout` value (`100m`, `5S`, `1H`, ...); `None` when malformed.
pub fn parse_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn percent_decode_lossy(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_frame_is_flagged_and_inflates_to_the_message() {
        let message = b"a message a message a message".repeat(10);
        let framed = frame_gzip(&message);
        assert_eq!(framed[0], 1);
        let length = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        assert_eq!(length, framed.len() - 5);
        assert!(length < message.len());
        let inflated = MessageEncoding::Gzip.message(1, framed.slice(5..), message.len());
        assert_eq!(inflated.as_deref(), Ok(&message[..]));
    }

    #[test]
    fn frames_and_unframes_a_message() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(unframe_single(framed).as_deref(), Ok(&b"abc"[..]));
    }

    #[test]
    fn gzip_messages_are_inflated_under_the_limit_and_other_codings_refused() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&[7; 1000]).expect("gzip");
        let zipped = encoder.finish().expect("gzip");
        let mut frame = vec![1];
        frame.extend_from_slice(&(zipped.len() as u32).to_be_bytes());
        frame.extend_from_slice(&zipped);
        let frame = Bytes::from(frame);
        let gzip = MessageEncoding::Gzip;
        let message = unframe_single_encoded(frame.clone(), &gzip, 1000).expect("inflated");
        assert_eq!(message.as_ref(), &[7; 1000]);
        let too_big = unframe_single_encoded(frame.clone(), &gzip, 999).expect_err("limit");
        assert!(too_big.contains("once decompressed"), "{too_big}");
        let other = MessageEncoding::Other("snappy".into());
        let refused = unframe_single_encoded(frame.clone(), &other, 1000).expect_err("snappy");
        assert!(refused.contains("`snappy`"), "{refused}");
        assert!(unframe_single(frame).is_err());
        let mut headers = HeaderMap::new();
        assert_eq!(MessageEncoding::of(&headers), MessageEncoding::Identity);
        headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
        assert_eq!(MessageEncoding::of(&headers), MessageEncoding::Gzip);
    }

    #[test]
    fn rejects_truncated_and_compressed_frames() {
        assert!(unframe_single(Bytes::from_static(&[0, 0, 0])).is_err());
        assert!(unframe_single(Bytes::from_static(&[0, 0, 0, 0, 4, 1])).is_err());
        assert!(unframe_single(Bytes::from_static(&[1, 0, 0, 0, 1, 1])).is_err());
    }

    #[test]
    fn encodes_and_parses_timeouts() {
        assert_eq!(encode_timeout(Duration::from_secs(10)), "10000000u");
        assert_eq!(encode_timeout(Duration::from_secs(1000)), "1000000m");
        assert_eq!(encode_timeout(Duration::ZERO), "0u");
        assert_eq!(
            encode_timeout(Duration::from_micros(99_999_999)),
            "99999999u"
        );
        assert_eq!(encode_timeout(Duration::from_secs(200_000)), "200000S");
        assert_eq!(encode_timeout(Duration::from_secs(u64::MAX)), "99999999S");
        assert_eq!(parse_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("123456789S"), None);
        assert_eq!(parse_timeout("10x"), None);
        assert_eq!(parse_timeout("m"), None);
        assert_eq!(parse_timeout(""), None);
    }

    #[test]
    fn reads_status_with_percent_encoded_message() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("5"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("policy%20x%20not%20found"),
        );
        let status = GrpcStatus::from_headers(&headers).expect("status");
        assert_eq!(status.code, 5);
        assert_eq!(status.message, "policy x not found");
        assert!(status.details.is_none());
    }
}
