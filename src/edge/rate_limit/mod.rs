//! Named rate limits (GCRA): each a keyed limiter counted by client address, a request header,
//! a verified JWT claim, or globally. Limits keyed by claim run after authentication; the others
//! before it, so floods are refused before any signature is checked.
//!
//! Exactly `burst` requests pass at once, then one more every `period / per_period`. Every
//! answer carries `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` of the tightest
//! limit; a refusal is a 429 with `Retry-After`.
//!
//! Per-key state is bounded three ways, so one hostile client cannot hurt the others: a key is
//! stored as a 64-bit keyed hash, never the value ([`key`]); a header or claim value longer than
//! the limit's `max_key_bytes` is refused with 400 before anything is stored; and a limit holds
//! at most `max_keys` keys, evicting the least recently used ([`store`]). The one maintenance
//! task also prunes keys whose bucket is full again ([`Limiters::prune`]).
//!
//! Our own GCRA ([`gcra`]) rather than governor's: the state is one number per key, and the
//! bounded store, the key hashing and (next) a store shared through Redis all need the same
//! small arithmetic in the open rather than behind governor's `StateStore` trait.
//!
//! # Layout
//! - [`gcra`]: the decision, on plain numbers.
//! - [`key`]: what a request is counted as, hashed; [`KeyTooLong`].
//! - [`store`]: the bounded, least-recently-used per-key state.

mod gcra;
mod global;
mod key;
mod store;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::config::{LimitConfig, LimitKey, LimitScope, RateLimitConfig};
use gcra::Gcra;
pub use global::{Decisions, Pending, Unavailable, check as check_global};
use key::KeyHasher;
pub use key::KeyTooLong;
use store::KeyStore;

/// One named limit and its per-key state.
#[derive(Debug)]
pub struct Limiter {
    config: LimitConfig,
    gcra: Gcra,
    keys: KeyHasher,
    store: KeyStore,
    /// The header a `header:` limit counts by, parsed once (validation made sure it parses).
    header: Option<HeaderName>,
    /// Zero of the TATs (tokio's clock, so paused-clock tests control rate limits too).
    start: tokio::time::Instant,
    /// Time one request costs.
    per_request: Duration,
    /// The fleet-wide part of a `scope: global` limit.
    global: Option<global::Global>,
}

impl Limiter {
    fn new(config: &LimitConfig) -> Limiter {
        let per_request = (config.period / config.per_period).max(Duration::from_nanos(1));
        Limiter {
            gcra: Gcra::new(per_request, config.burst),
            keys: KeyHasher::default(),
            store: KeyStore::new(config.max_keys),
            header: match &config.key {
                LimitKey::Header(name) => HeaderName::try_from(name.as_str()).ok(),
                _ => None,
            },
            start: tokio::time::Instant::now(),
            global: (config.scope == LimitScope::Global).then(|| {
                global::Global::new(
                    per_request,
                    config.burst,
                    config.on_redis_error,
                    config.max_keys,
                )
            }),
            config: config.clone(),
            per_request,
        }
    }

    /// Decisions of a global limit (`None` for a local one).
    pub fn global_decisions(&self) -> Option<&Decisions> {
        self.global.as_ref().map(|g| &g.decisions)
    }

    /// Name in the config.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Keys held now (at most the limit's `max_keys`).
    pub fn key_count(&self) -> usize {
        self.store.len()
    }

    /// Keys evicted, least recently used first, to make room for new ones since the limit was
    /// built (a reload that changes it builds it anew).
    pub fn evictions(&self) -> u64 {
        self.store.evictions()
    }

    /// Nanoseconds since `start`: the GCRA's clock.
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Refuses a header or claim value over `max_key_bytes`; `what` names it.
    fn bound(&self, value: &[u8], what: impl FnOnce() -> String) -> Result<(), KeyTooLong> {
        KeyTooLong::check(self.name(), value, self.config.max_key_bytes, what)
    }

    /// The value of the header a `header:` limit counts by, within its bound; a missing header
    /// (and any other kind of limit) gives the empty value: one bucket for every request
    /// without it.
    fn header_value<'h>(&self, headers: &'h HeaderMap) -> Result<&'h [u8], KeyTooLong> {
        let Some(name) = &self.header else {
            return Ok(&[]);
        };
        let value = headers.get(name).map_or(&[][..], HeaderValue::as_bytes);
        self.bound(value, || format!("header `{name}`"))?;
        Ok(value)
    }

    /// `key` (what `counted` names), noting a global limit's fleet-wide check to ask next.
    fn counted(
        self: &Arc<Self>,
        key: u64,
        counted: impl FnOnce() -> Vec<u8>,
        pending: &mut Vec<Pending>,
    ) -> u64 {
        if self.global.is_some() {
            pending.push(Pending::new(self, key, &counted()));
        }
        key
    }

    /// This process' check of `key` against the limit's full budget.
    fn check(&self, key: u64, budget: &mut Budget) -> Result<(), Exceeded> {
        self.decide(&self.gcra, &self.store, key, self.config.burst, budget)
    }

    /// One GCRA decision for `key` in `store`; `limit` is the burst the headers report.
    fn decide(
        &self,
        gcra: &Gcra,
        store: &KeyStore,
        key: u64,
        limit: u32,
        budget: &mut Budget,
    ) -> Result<(), Exceeded> {
        let now = self.now();
        let verdict = store.update(key, |tat| match gcra.check(tat, now) {
            Ok(allowed) => (allowed.tat, Ok(allowed.remaining)),
            // A refusal leaves the TAT as it was (a key not held is never refused).
            Err(wait) => (tat.unwrap_or(now), Err(wait)),
        });
        match verdict {
            Ok(remaining) => {
                let refill = gcra.interval() * (limit - remaining.min(limit));
                budget.note(limit, remaining, ceil_secs(refill));
                Ok(())
            }
            Err(wait) => Err(self.exceeded(wait)),
        }
    }

    /// The refusal of a request that may pass in `wait` nanoseconds.
    fn exceeded(&self, wait: u64) -> Exceeded {
        Exceeded {
            name: self.config.name.clone(),
            limit: self.config.burst,
            retry_after: ceil_secs(Duration::from_nanos(wait)).max(1),
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Why a rate limit refused a request.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Over the limit (429).
    #[error(transparent)]
    Exceeded(#[from] Exceeded),
    /// Its key value is too long to be counted (400).
    #[error(transparent)]
    KeyTooLong(#[from] KeyTooLong),
    /// A global limit could not be checked and says `on_redis_error: closed` (503).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// A request over a limit: answered 429.
#[derive(Debug, thiserror::Error)]
#[error("rate limit `{name}` exceeded; retry in {retry_after}s")]
pub struct Exceeded {
    name: String,
    limit: u32,
    retry_after: u64,
}

impl Exceeded {
    /// Name of the limit that refused the request.
    pub fn limit_name(&self) -> &str {
        &self.name
    }

    /// `Retry-After` and the `RateLimit-*` headers of the refusal.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (http::header::RETRY_AFTER, self.retry_after.into()),
            (
                HeaderName::from_static("ratelimit-limit"),
                self.limit.into(),
            ),
            (HeaderName::from_static("ratelimit-remaining"), 0u32.into()),
            (
                HeaderName::from_static("ratelimit-reset"),
                self.retry_after.into(),
            ),
        ]
    }
}

/// The tightest budget among the limits a request passed: reported in its response headers.
#[derive(Debug, Default)]
pub struct Budget {
    tightest: Option<(u32, u32, u64)>,
}

impl Budget {
    fn note(&mut self, limit: u32, remaining: u32, reset: u64) {
        if self.tightest.is_none_or(|(_, r, _)| remaining < r) {
            self.tightest = Some((limit, remaining, reset));
        }
    }

    /// Adds `RateLimit-*` headers unless the response already has them (a 429 has its own).
    pub fn write(&self, headers: &mut HeaderMap) {
        let Some((limit, remaining, reset)) = self.tightest else {
            return;
        };
        if headers.contains_key("ratelimit-limit") {
            return;
        }
        headers.insert("ratelimit-limit", limit.into());
        headers.insert("ratelimit-remaining", remaining.into());
        headers.insert("ratelimit-reset", reset.into());
    }
}

/// Every named limit; built with the runtime.
#[derive(Debug, Default)]
pub struct Limiters {
    by_name: HashMap<String, Arc<Limiter>>,
    trusted_proxy_hops: u32,
    prune_interval: Duration,
    last_prune: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Limiters {
    /// One limiter per named limit.
    pub fn new(config: &RateLimitConfig) -> Limiters {
        Limiters::reusing(config, None)
    }

    /// Like [`Limiters::new`], for a reload: a limit whose config is unchanged from `previous`
    /// is the same `Arc<Limiter>`, so its buckets (and key count) carry over.
    pub fn reusing(config: &RateLimitConfig, previous: Option<&Limiters>) -> Limiters {
        let reuse = |l: &LimitConfig| {
            previous
                .and_then(|p| p.by_name.get(&l.name))
                .filter(|old| old.config == *l)
                .cloned()
                .unwrap_or_else(|| Arc::new(Limiter::new(l)))
        };
        Limiters {
            by_name: config
                .limits
                .iter()
                .map(|l| (l.name.clone(), reuse(l)))
                .collect(),
            trusted_proxy_hops: config.trusted_proxy_hops,
            prune_interval: config.prune_interval,
            last_prune: std::sync::Mutex::new(None),
        }
    }

    /// Every named limiter, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Limiter>> {
        self.by_name.values()
    }

    /// The limiter named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Limiter>> {
        self.by_name.get(name)
    }

    /// The limits a route applies, split into before and after authentication.
    pub fn route(&self, names: &[String]) -> RouteLimits {
        let mut route = RouteLimits {
            trusted_proxy_hops: self.trusted_proxy_hops,
            ..RouteLimits::default()
        };
        for limiter in names.iter().filter_map(|n| self.by_name.get(n)) {
            match limiter.config.key {
                LimitKey::Claim(_) => route.after_auth.push(limiter.clone()),
                _ => route.before_auth.push(limiter.clone()),
            }
        }
        route
    }

    /// Drops idle keys of every limiter when the prune interval has passed; updates the gauges.
    pub fn maintain(&self) {
        let now = tokio::time::Instant::now();
        if let Ok(mut last) = self.last_prune.lock() {
            if last.is_some_and(|at| now.duration_since(at) < self.prune_interval) {
                return;
            }
            *last = Some(now);
        }
        self.prune();
    }

    /// Drops the keys whose bucket is full again (indistinguishable from a new key).
    pub fn prune(&self) {
        for limiter in self.by_name.values() {
            limiter.store.prune(limiter.now());
            tracing::debug!(
                limit = limiter.name(),
                keys = limiter.key_count(),
                evictions = limiter.evictions(),
                "rate limit keys pruned"
            );
        }
    }
}

/// A route's limits.
#[derive(Debug, Default)]
pub struct RouteLimits {
    before_auth: Vec<Arc<Limiter>>,
    after_auth: Vec<Arc<Limiter>>,
    trusted_proxy_hops: u32,
}

impl RouteLimits {
    /// Names of the limits the route applies: those checked before authentication, then after.
    pub fn names(&self) -> Vec<&str> {
        self.before_auth
            .iter()
            .chain(&self.after_auth)
            .map(|l| l.name())
            .collect()
    }

    /// The limits keyed by address, header or nothing: run before the token is looked at. Every
    /// header value is checked against its bound before any limit spends budget, so a request
    /// refused for a too-long value changes no state.
    pub fn check_before_auth(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        budget: &mut Budget,
    ) -> Result<Vec<Pending>, Refusal> {
        // With one limit (the common case) the check in the loop below comes first anyway.
        if self.before_auth.len() > 1 {
            for limiter in &self.before_auth {
                limiter.header_value(headers)?;
            }
        }
        let mut pending = Vec::new();
        for limiter in &self.before_auth {
            let key = match &limiter.config.key {
                LimitKey::Ip => {
                    let ip = client_ip(headers, peer, self.trusted_proxy_hops);
                    limiter.counted(
                        limiter.keys.ip(ip),
                        || ip.to_string().into_bytes(),
                        &mut pending,
                    )
                }
                LimitKey::Header(_) => {
                    let value = limiter.header_value(headers)?;
                    limiter.counted(limiter.keys.text(value), || value.to_vec(), &mut pending)
                }
                _ => limiter.counted(key::GLOBAL, Vec::new, &mut pending),
            };
            limiter.check(key, budget)?;
        }
        Ok(pending)
    }

    /// The limits keyed by a verified claim; requests without it are counted by client address.
    /// As before authentication, every value is bounded before any budget is spent.
    pub fn check_after_auth(
        &self,
        claims: Option<&Map<String, Value>>,
        headers: &HeaderMap,
        peer: SocketAddr,
        budget: &mut Budget,
    ) -> Result<Vec<Pending>, Refusal> {
        let claim_limits = self.after_auth.iter().filter_map(|limiter| {
            let LimitKey::Claim(name) = &limiter.config.key else {
                return None;
            };
            Some((
                limiter,
                name,
                claims.and_then(|c| c.get(name)).map(claim_text),
            ))
        });
        for (limiter, name, value) in claim_limits.clone() {
            if let Some(value) = value {
                limiter.bound(value.as_bytes(), || format!("claim `{name}`"))?;
            }
        }
        let mut pending = Vec::new();
        for (limiter, _, value) in claim_limits {
            let key = match value {
                Some(value) => {
                    let key = limiter.keys.text(value.as_bytes());
                    limiter.counted(key, || value.as_bytes().to_vec(), &mut pending)
                }
                None => {
                    let ip = client_ip(headers, peer, self.trusted_proxy_hops);
                    limiter.counted(
                        limiter.keys.ip(ip),
                        || ip.to_string().into_bytes(),
                        &mut pending,
                    )
                }
            };
            limiter.check(key, budget)?;
        }
        Ok(pending)
    }
}

/// A claim as counted: a string's text, anything else as JSON.
fn claim_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// The client's address: the socket peer, or, behind `hops` trusted proxies, the address the
/// outermost trusted proxy saw (the `hops`-th `X-Forwarded-For` entry from the right). Entries
/// further left were written by the client and are never trusted.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, hops: u32) -> IpAddr {
    if hops == 0 {
        return peer.ip();
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let hops = hops as usize;
    entries
        .len()
        .checked_sub(hops)
        .and_then(|i| entries[i].parse().ok())
        .unwrap_or(peer.ip())
}

#[cfg(test)]
mod tests;
