//! The answers hyper writes by itself, for an HTTP/1.1 request head it cannot parse — 400 (a
//! malformed head), 414 (a URI too long) and 431 (a head larger than `max_header_bytes`, or too
//! many fields) — arrive with an empty body, before any request reaches the pipeline. The
//! transport watchdog (`watch.rs`) recognises such an answer as it is written and sends the
//! gateway's own instead: the same status, with the JSON `google.rpc.Status` body every other
//! error has (made by the one error table), and `connection: close` (hyper closes
//! the connection after it, as before).
//!
//! Recognised only on an HTTP/1.x connection while a request head is half-received (no request
//! dispatched), and only for a whole head with one of those statuses and `content-length: 0`:
//! the gateway's own answers always have a body, and are written after a request is dispatched.

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;

/// Why hyper refused a request head before the gateway saw the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadRefused {
    /// 431: the head does not fit `limits.max_header_bytes`, or has too many header fields.
    #[error(
        "request header fields too large: the request head exceeds limits.max_header_bytes or has too many fields"
    )]
    TooLarge,
    /// 414: the request target is longer than hyper accepts.
    #[error("request URI too long")]
    UriTooLong,
    /// 400: the head is not valid HTTP/1.1 (request line, header syntax, version).
    #[error("malformed HTTP/1.1 request head")]
    Malformed,
}

/// The refusal hyper is writing, if `written` (the start of an answer on a connection with a
/// half-received head) is one of its own empty 400 / 414 / 431 answers.
pub(crate) fn recognise(written: &[u8]) -> Option<HeadRefused> {
    let rest = written.strip_prefix(b"HTTP/1.1 ")?;
    let refused = match rest.get(..4)? {
        b"400 " => HeadRefused::Malformed,
        b"414 " => HeadRefused::UriTooLong,
        b"431 " => HeadRefused::TooLarge,
        _ => return None,
    };
    let whole = written.ends_with(b"\r\n\r\n");
    let empty = contains(written, b"\r\ncontent-length: 0\r\n");
    (whole && empty).then_some(refused)
}

/// The gateway's answer in place of hyper's `head`: its status line and `date`, then
/// `content-type`, `content-length`, `connection: close` and the JSON `body`.
pub(crate) fn answer(head: &[u8], status: StatusCode, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(head.len() + body.len() + 96);
    let reason = status.canonical_reason().unwrap_or("");
    out.put_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    let kept = head
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|line| line.len() > 5 && line[..5].eq_ignore_ascii_case(b"date:"));
    for line in kept {
        out.put_slice(line);
        out.put_slice(b"\n");
    }
    out.put_slice(b"content-type: application/json\r\n");
    out.put_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.put_slice(b"connection: close\r\n\r\n");
    out.put_slice(body);
    out.freeze()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 13:00:00 GMT\r\n\r\n";

    #[test]
    fn recognises_only_hypers_own_empty_refusals() {
        assert_eq!(recognise(HYPER_431), Some(HeadRefused::TooLarge));
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(recognise(bad), Some(HeadRefused::Malformed));
        let long = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(recognise(long), Some(HeadRefused::UriTooLong));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n";
        assert_eq!(recognise(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(recognise(ok), None);
        assert_eq!(recognise(&HYPER_431[..40]), None, "a partial head");
    }

    #[test]
    fn the_answer_keeps_the_status_and_date_and_carries_the_body() {
        let body = br#"{"code":8}"#;
        let answer = answer(HYPER_431, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, body);
        assert_eq!(
            &answer[..],
            &b"HTTP/1.1 431 Request Header Fields Too Large\r\ndate: Thu, 03 Dec 2026 13:00:00 GMT\r\ncontent-type: application/json\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{\"code\":8}"[..]
        );
    }
}
