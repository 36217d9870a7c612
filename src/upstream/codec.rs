//! gRPC wire details over HTTP/2: length-prefixed message frames, `grpc-timeout` values and the
//! status carried in headers or trailers (see grpc's PROTOCOL-HTTP2.md).

use std::time::Duration;

use base64::Engine;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};

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
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// Reads exactly one uncompressed message out of a unary response body.
pub fn unframe_single(mut data: Bytes) -> Result<Bytes, String> {
    if data.len() < 5 {
        return Err(format!(
            "response body of {} bytes has no complete message frame",
            data.len()
        ));
    }
    let compressed = data[0];
    let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if compressed == 1 {
        return Err("compressed message although no compression was offered".to_owned());
    }
    if compressed != 0 {
        return Err(format!("invalid frame flag {compressed}"));
    }
    if data.len() - 5 != length {
        return Err(format!(
            "frame announces {length} bytes but the body holds {}",
            data.len() - 5
        ));
    }
    Ok(data.split_off(5))
}

/// Takes one complete uncompressed message off the front of a stream's `buffer`; `Ok(None)` when
/// more bytes are needed (room for the announced message is reserved). `Err` is the reason the
/// stream is invalid: a compression flag, or a message larger than `limit` bytes.
pub(crate) fn take_frame(buffer: &mut BytesMut, limit: usize) -> Result<Option<Bytes>, String> {
    if buffer.len() < 5 {
        return Ok(None);
    }
    let flag = buffer[0];
    let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
    if flag != 0 {
        return Err(format!(
            "message frame flag {flag} (compression was not offered)"
        ));
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
    Ok(Some(buffer.split_to(length).freeze()))
}

/// Formats a deadline as a `grpc-timeout` value (at most 8 digits, coarsest exact unit).
pub fn encode_timeout(timeout: Duration) -> HeaderValue {
    let micros = timeout.as_micros();
    let value = if micros < 100_000_000 {
        format!("{micros}u")
    } else if micros / 1000 < 100_000_000 {
        format!("{}m", micros / 1000)
    } else if micros / 1_000_000 < 100_000_000 {
        format!("{}S", micros / 1_000_000)
    } else {
        "99999999S".to_owned()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("99999999S"))
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
    fn frames_and_unframes_a_message() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(unframe_single(framed).as_deref(), Ok(&b"abc"[..]));
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
