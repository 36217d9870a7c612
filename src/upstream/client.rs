//! Who a call is made for, as far as circuit breakers care: a [`ClientId`] (a hash of the
//! client's address, passed in `CallOptions`, no allocation per call), and the small bounded
//! [`ClientSet`] a breaker keeps of the distinct clients in its current run of failures.
//!
//! Why: a backend's `INTERNAL` answer to one caller's malformed request says nothing about the
//! endpoint's health. The breaker only counts such answers when they come from several distinct
//! clients, so one client cannot open the breaker for everyone.

use std::net::IpAddr;

use crate::config::MAX_DISTINCT_CLIENTS;

/// A client, as breakers tell clients apart: a hash of its address (the socket peer, or the
/// `X-Forwarded-For` entry of the outermost trusted proxy, as rate limits read it). An IPv6
/// client is its /64, the block one host usually holds, so one host cannot pose as many
/// clients by rotating addresses within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(u64);

impl ClientId {
    /// The client at `ip`.
    pub fn of(ip: IpAddr) -> ClientId {
        let bits: u64 = match ip {
            IpAddr::V4(v4) => u64::from(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => u64::from(v4.to_bits()),
                // The /64 prefix with its top bit set, so it never equals an IPv4 address (two
                // prefixes differing only in that bit coincide: harmless, clients only merge).
                None => (v6.to_bits() >> 64) as u64 | 1 << 63,
            },
        };
        // A fixed bijective mix (splitmix64's finaliser): distinct addresses stay distinct.
        let mut x = bits;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ClientId(x ^ (x >> 31))
    }

    /// A client of its own for calls with no client (tests, internal calls).
    pub const UNKNOWN: ClientId = ClientId(0);
}

/// The distinct clients seen in a breaker's current run of failures, bounded: once
/// [`MAX_DISTINCT_CLIENTS`] are held, further ones change nothing (the question asked is only
/// "at least N?" with N at most that).
#[derive(Debug, Clone, Copy)]
pub struct ClientSet {
    ids: [ClientId; MAX_DISTINCT_CLIENTS as usize],
    len: u32,
}

impl ClientSet {
    /// An empty set.
    pub const fn new() -> ClientSet {
        ClientSet {
            ids: [ClientId(0); MAX_DISTINCT_CLIENTS as usize],
            len: 0,
        }
    }

    /// Adds `client` (when not held yet and there is room).
    pub fn insert(&mut self, client: ClientId) {
        let held = &self.ids[..self.len as usize];
        if self.len < MAX_DISTINCT_CLIENTS && !held.contains(&client) {
            self.ids[self.len as usize] = client;
            self.len += 1;
        }
    }

    /// Distinct clients held.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no client is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for ClientSet {
    fn default() -> Self {
        ClientSet::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ClientId {
        ClientId::of(text.parse().expect("an address"))
    }

    #[test]
    fn addresses_are_clients_and_an_ipv6_slash_64_is_one_client() {
        assert_eq!(id("10.0.0.1"), id("10.0.0.1"));
        assert_ne!(id("10.0.0.1"), id("10.0.0.2"));
        assert_eq!(id("::ffff:10.0.0.1"), id("10.0.0.1"));
        assert_eq!(id("2001:db8:1:2::1"), id("2001:db8:1:2:ffff::9"));
        assert_ne!(id("2001:db8:1:2::1"), id("2001:db8:1:3::1"));
    }

    #[test]
    fn the_set_holds_each_client_once_and_stays_bounded() {
        let mut set = ClientSet::new();
        assert!(set.is_empty());
        set.insert(id("10.0.0.1"));
        set.insert(id("10.0.0.1"));
        assert_eq!(set.len(), 1);
        for i in 0..40u32 {
            set.insert(ClientId::of(IpAddr::from(i.to_be_bytes())));
        }
        assert_eq!(set.len(), MAX_DISTINCT_CLIENTS);
    }
}
