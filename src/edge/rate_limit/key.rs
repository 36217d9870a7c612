//! What a request is counted as, reduced to a 64-bit hash before anything is stored: the client
//! address, a header's value or a claim's value — never the value itself, so a key costs the same
//! whatever the client sent.
//!
//! The hash is SipHash-1-3 (std's `RandomState`) with keys drawn at random in each process, so
//! clients cannot choose values that collide to share, or crowd out, another client's bucket.
//! An accidental collision among 100 000 keys has odds of about 1 in 3.7 billion and would only
//! make two clients share a budget. Values longer than the limit's `max_key_bytes` are refused
//! ([`KeyTooLong`], answered 400) before any state is stored.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;

/// The one key of a `global` limit.
pub(super) const GLOBAL: u64 = 0;

/// Kinds of key, hashed first so an address never equals a header value that spells it.
const IP: u8 = 1;
const TEXT: u8 = 2;

/// Hashes keys for one limit.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyHasher(RandomState);

impl KeyHasher {
    /// The key of a client address.
    pub(super) fn ip(&self, ip: IpAddr) -> u64 {
        self.0.hash_one((IP, ip))
    }

    /// The key of a header or claim value.
    pub(super) fn text(&self, value: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write_u8(TEXT);
        hasher.write(value);
        hasher.finish()
    }
}

/// A header or claim value longer than the limit counting by it allows: answered 400, so a client
/// cannot make the gateway hash and hold arbitrary amounts of text.
#[derive(Debug, thiserror::Error)]
#[error("rate limit `{limit}`: {what} is longer than {max} bytes")]
pub struct KeyTooLong {
    limit: String,
    /// "header `x-client-id`" or "claim `sub`".
    what: String,
    max: usize,
}

impl KeyTooLong {
    /// `Err` when `value` is longer than `max` bytes; `what` names its source for the client.
    pub(super) fn check(
        limit: &str,
        value: &[u8],
        max: usize,
        what: impl FnOnce() -> String,
    ) -> Result<(), KeyTooLong> {
        if value.len() <= max {
            return Ok(());
        }
        Err(KeyTooLong {
            limit: limit.to_owned(),
            what: what(),
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_kind_value_and_the_hasher() {
        let keys = KeyHasher::default();
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(keys.ip(ip), keys.ip(ip));
        assert_eq!(keys.text(b"alice"), keys.text(b"alice"));
        assert_ne!(keys.text(b"alice"), keys.text(b"bob"));
        assert_ne!(keys.ip(ip), keys.text(b"10.0.0.1"));
        assert_ne!(
            KeyHasher::default().text(b"alice"),
            keys.text(b"alice"),
            "each hasher has its own random key"
        );
    }

    #[test]
    fn values_over_the_bound_are_refused_naming_their_source() {
        let what = || "header `x-client-id`".to_owned();
        assert!(KeyTooLong::check("per_client", &[b'a'; 8], 8, what).is_ok());
        let refused = KeyTooLong::check("per_client", &[b'a'; 9], 8, what).expect_err("9 > 8");
        assert_eq!(
            refused.to_string(),
            "rate limit `per_client`: header `x-client-id` is longer than 8 bytes"
        );
    }
}
