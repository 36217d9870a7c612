//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the `traceparent` and
//! `tracestate` request headers read strictly, and written for the backend.
//!
//! A `traceparent` that breaks any rule of version `00` (lengths, lowercase hex, ids not all
//! zero, version `ff`) is ignored as a whole: the gateway then starts a trace of its own and
//! never forwards the bad value. A `tracestate` is kept only beside a valid `traceparent`, and
//! only when it is well formed and within the specification's bounds.

use std::fmt;

use http::HeaderValue;

use crate::upstream::random::random_u64;

/// Request header carrying the caller's trace and span ids.
pub const TRACEPARENT: &str = "traceparent";
/// Request header carrying vendor-specific trace state.
pub const TRACESTATE: &str = "tracestate";

/// Length of a version-00 `traceparent`: `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_LEN: usize = 55;
/// Longest `tracestate` kept (the specification asks to propagate at least 512 characters).
const MAX_TRACESTATE_LEN: usize = 512;
/// Most list members a `tracestate` may have.
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A 16-byte trace id, never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id, never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// A fresh random trace id (fast, not secret: ids only need to be unique).
    pub fn random() -> TraceId {
        let mut id = [0; 16];
        id[..8].copy_from_slice(&random_u64().to_be_bytes());
        id[8..].copy_from_slice(&(random_u64() | 1).to_be_bytes());
        TraceId(id)
    }

    /// The id as 32 lowercase hex digits.
    pub fn hex(&self) -> Hex<32> {
        Hex::of(&self.0)
    }

    /// The last 8 bytes as a number, which ratio sampling compares with its threshold (the
    /// random part of the id, by the specification's advice).
    pub(crate) fn low_bits(&self) -> u64 {
        let mut low = [0; 8];
        low.copy_from_slice(&self.0[8..]);
        u64::from_be_bytes(low)
    }
}

impl SpanId {
    /// A fresh random span id.
    pub fn random() -> SpanId {
        SpanId((random_u64() | 1).to_be_bytes())
    }

    /// The id as 16 lowercase hex digits.
    pub fn hex(&self) -> Hex<16> {
        Hex::of(&self.0)
    }
}

/// An id written as lowercase hex digits without allocating.
#[derive(Clone, Copy)]
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    /// The first `N / 2` bytes of `bytes` as hex digits.
    pub fn of(bytes: &[u8]) -> Hex<N> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; N];
        for (i, b) in bytes.iter().take(N / 2).enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        Hex(out)
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written into the array.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller's span, as a valid `traceparent` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The caller's span: the parent of the gateway's server span.
    pub span_id: SpanId,
    /// The caller's `sampled` flag (bit 0 of the trace flags).
    pub sampled: bool,
}

/// Reads a `traceparent` value; `None` when it breaks any rule (then a new trace starts).
///
/// Version `00` must be exactly 55 characters; a later version (not `ff`) may carry more after
/// a `-`, of which only the version-00 fields are read, as the specification asks.
pub fn parse_traceparent(value: &[u8]) -> Option<Parent> {
    if value.len() < TRACEPARENT_LEN {
        return None;
    }
    let version = hex_bytes::<1>(&value[0..2])?[0];
    let longer_ok = version != 0 && value.get(TRACEPARENT_LEN).is_some_and(|&c| c == b'-');
    if version == 0xff || (value.len() != TRACEPARENT_LEN && !longer_ok) {
        return None;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = hex_bytes::<16>(&value[3..35])?;
    let span_id = hex_bytes::<8>(&value[36..52])?;
    let flags = hex_bytes::<1>(&value[53..55])?[0];
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id: TraceId(trace_id),
        span_id: SpanId(span_id),
        sampled: flags & 1 == 1,
    })
}

/// Decodes exactly `2 * N` lowercase hex digits.
fn hex_bytes<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// The `traceparent` the backend gets: version 00, the trace, the gateway's span and its
/// sampling decision.
pub fn traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> HeaderValue {
    let mut text = [0u8; TRACEPARENT_LEN];
    text[..3].copy_from_slice(b"00-");
    text[3..35].copy_from_slice(trace_id.hex().as_str().as_bytes());
    text[35] = b'-';
    text[36..52].copy_from_slice(span_id.hex().as_str().as_bytes());
    text[52..].copy_from_slice(if sampled { b"-01" } else { b"-00" });
    // Hex digits and dashes are always a valid header value.
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static(""))
}

/// A `tracestate` worth forwarding: at most 512 characters and 32 list members, each
/// `key=value` with the specification's character sets (empty members are allowed).
pub fn valid_tracestate(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_TRACESTATE_LEN {
        return false;
    }
    let mut members = 0;
    for member in bytes.split(|&c| c == b',') {
        let member = member.trim_ascii();
        if member.is_empty() {
            continue;
        }
        members += 1;
        if members > MAX_TRACESTATE_MEMBERS || !valid_member(member) {
            return false;
        }
    }
    true
}

/// One `key=value` member: a lowercase key (with an optional `@system` part), a value of
/// printable characters other than `,` and `=` that does not end in a space.
fn valid_member(member: &[u8]) -> bool {
    let Some(eq) = member.iter().position(|&c| c == b'=') else {
        return false;
    };
    let (key, value) = (&member[..eq], &member[eq + 1..]);
    let key_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(c);
    let key_ok = match key.iter().position(|&c| c == b'@') {
        None => {
            key.first()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && key.len() <= 256
                && key.iter().all(key_char)
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            (1..=241).contains(&tenant.len())
                && (1..=14).contains(&system.len())
                && system.first().is_some_and(u8::is_ascii_lowercase)
                && tenant.iter().chain(system).all(key_char)
        }
    };
    let value_ok = (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && value.last() != Some(&b' ');
    key_ok && value_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_gives_its_ids_and_sampled_flag() {
        let parent = parse_traceparent(VALID.as_bytes()).expect("valid");
        assert_eq!(
            parent.trace_id.hex().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id.hex().as_str(), "00f067aa0ba902b7");
        assert!(parent.sampled);
        let unsampled = VALID.replace("-01", "-00");
        assert!(
            !parse_traceparent(unsampled.as_bytes())
                .expect("valid")
                .sampled
        );
        // Other flag bits are allowed; only bit 0 means sampled.
        let other = VALID.replace("-01", "-02");
        assert!(!parse_traceparent(other.as_bytes()).expect("valid").sampled);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        let cases = [
            "",
            &VALID[..54],
            &format!("{VALID}0"),
            &format!("{VALID}-extra"),
            &VALID.to_uppercase(),
            &VALID.replace("4bf92f", "4BF92F"),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for case in cases {
            assert_eq!(parse_traceparent(case.as_bytes()), None, "{case:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_for_its_version_00_fields() {
        let later = VALID.replacen("00", "01", 1);
        assert!(parse_traceparent(later.as_bytes()).is_some());
        let longer = format!("{later}-whatever");
        assert!(parse_traceparent(longer.as_bytes()).is_some());
        let glued = format!("{later}x");
        assert_eq!(parse_traceparent(glued.as_bytes()), None);
    }

    #[test]
    fn the_written_traceparent_reads_back() {
        let (trace, span) = (TraceId::random(), SpanId::random());
        let value = traceparent(trace, span, true);
        let parent = parse_traceparent(value.as_bytes()).expect("valid");
        assert_eq!((parent.trace_id, parent.span_id), (trace, span));
        assert!(parent.sampled);
        assert!(value.to_str().expect("ascii").ends_with("-01"));
        assert!(
            traceparent(trace, span, false)
                .to_str()
                .expect("ascii")
                .ends_with("-00")
        );
    }

    #[test]
    fn random_ids_are_never_zero_and_vary() {
        let (a, b) = (TraceId::random(), TraceId::random());
        assert_ne!(a, b);
        assert_ne!(a.0, [0; 16]);
        assert_ne!(SpanId::random().0, [0; 8]);
    }

    #[test]
    fn tracestate_is_kept_only_when_well_formed_and_bounded() {
        let ok = |s: &str| valid_tracestate(&HeaderValue::from_str(s).expect("header"));
        assert!(ok("congo=t61rcWkgMzE"));
        assert!(ok("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,"));
        assert!(ok("tenant@vendor=x"));
        assert!(!ok("Congo=t61"));
        assert!(!ok("congo"));
        assert!(!ok("congo="));
        assert!(!ok("congo=a=b"));
        assert!(!ok("@vendor=x"));
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(!ok(&many.join(",")));
        assert!(ok(&many[..32].join(",")));
        assert!(!ok(&format!("k={}", "v".repeat(600))));
    }
}
