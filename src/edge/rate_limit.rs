//! Named rate limits (GCRA, via governor): each a keyed limiter counted by client address, a
//! request header, a verified JWT claim, or globally. Limits keyed by claim run after
//! authentication; the others before it, so floods are refused before any signature is checked.
//!
//! Exactly `burst` requests pass at once, then one more every `period / per_period`. Every
//! answer carries `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` of the tightest
//! limit; a refusal is a 429 with `Retry-After`. Per-key state is bounded: the one maintenance
//! task prunes keys whose bucket is full again ([`Limiters::prune`]) and records the key count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::config::{LimitConfig, LimitKey, RateLimitConfig};

/// governor's clock on tokio's time, so paused-clock tests control rate limits too.
#[derive(Debug, Clone)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

/// What one request is counted as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Text(Box<str>),
    Global,
}

type Keyed = RateLimiter<Key, DashMapStateStore<Key>, TokioClock, StateInformationMiddleware>;

/// One named limit and its per-key state.
pub struct Limiter {
    config: LimitConfig,
    limiter: Keyed,
    clock: TokioClock,
    /// Seconds per replenished request.
    per_request: Duration,
    /// Keys held after the last prune (the key-count gauge).
    keys: AtomicUsize,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .finish()
    }
}

impl Limiter {
    fn new(config: &LimitConfig) -> Limiter {
        let per_request = (config.period / config.per_period).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(per_request)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = TokioClock {
            start: tokio::time::Instant::now(),
        };
        Limiter {
            limiter: Keyed::new(quota, DashMapStateStore::default(), clock.clone()),
            config: config.clone(),
            clock,
            per_request,
            keys: AtomicUsize::new(0),
        }
    }

    /// Name in the config.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Keys held after the last prune.
    pub fn key_count(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    fn check(&self, key: &Key, budget: &mut Budget) -> Result<(), Exceeded> {
        let limit = self.config.burst;
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = self.per_request * (limit - remaining.min(limit));
                budget.note(limit, remaining, ceil_secs(refill));
                Ok(())
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Exceeded {
                    name: self.config.name.clone(),
                    limit,
                    retry_after: ceil_secs(wait).max(1),
                })
            }
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
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
            limiter.limiter.retain_recent();
            limiter.limiter.shrink_to_fit();
            let count = limiter.limiter.len();
            limiter.keys.store(count, Ordering::Relaxed);
            tracing::debug!(
                limit = limiter.name(),
                keys = count,
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

    /// The limits keyed by address, header or nothing: run before the token is looked at.
    pub fn check_before_auth(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        budget: &mut Budget,
    ) -> Result<(), Exceeded> {
        for limiter in &self.before_auth {
            let key = match &limiter.config.key {
                LimitKey::Ip => Key::Ip(client_ip(headers, peer, self.trusted_proxy_hops)),
                LimitKey::Header(name) => Key::Text(
                    headers
                        .get(name.as_str())
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into())
                        .unwrap_or_default(),
                ),
                _ => Key::Global,
            };
            limiter.check(&key, budget)?;
        }
        Ok(())
    }

    /// The limits keyed by a verified claim; requests without it are counted by client address.
    pub fn check_after_auth(
        &self,
        claims: Option<&Map<String, Value>>,
        headers: &HeaderMap,
        peer: SocketAddr,
        budget: &mut Budget,
    ) -> Result<(), Exceeded> {
        for limiter in &self.after_auth {
            let LimitKey::Claim(name) = &limiter.config.key else {
                continue;
            };
            let key = match claims.and_then(|c| c.get(name)) {
                Some(Value::String(s)) => Key::Text(s.as_str().into()),
                Some(other) => Key::Text(other.to_string().into()),
                None => Key::Ip(client_ip(headers, peer, self.trusted_proxy_hops)),
            };
            limiter.check(&key, budget)?;
        }
        Ok(())
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
mod tests {
    use super::*;

    #[test]
    fn a_reload_keeps_unchanged_limiters_and_rebuilds_changed_ones() {
        let limit = |name: &str, burst| LimitConfig {
            name: name.into(),
            per_period: 1,
            period: Duration::from_secs(60),
            burst,
            key: LimitKey::Ip,
        };
        let config = |burst| RateLimitConfig {
            trusted_proxy_hops: 0,
            prune_interval: Duration::from_secs(60),
            limits: vec![limit("kept", 2), limit("changed", burst)],
        };
        let old = Limiters::new(&config(2));
        let new = Limiters::reusing(&config(3), Some(&old));
        let same = |name: &str| Arc::ptr_eq(&old.by_name[name], &new.by_name[name]);
        assert!(same("kept"), "unchanged: its buckets carry over");
        assert!(!same("changed"));
        assert!(!Arc::ptr_eq(
            &Limiters::new(&config(2)).by_name["kept"],
            &old.by_name["kept"]
        ));
    }

    fn limits(burst: u32, rate: &str) -> Limiters {
        let (per_period, period) = match rate {
            "1/s" => (1, Duration::from_secs(1)),
            _ => (10, Duration::from_secs(60)),
        };
        Limiters::new(&RateLimitConfig {
            trusted_proxy_hops: 0,
            prune_interval: Duration::from_secs(60),
            limits: vec![LimitConfig {
                name: "per_ip".into(),
                per_period,
                period,
                burst,
                key: LimitKey::Ip,
            }],
        })
    }

    fn peer(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 1000))
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_burst_pass_then_one_per_period() {
        let limiters = limits(3, "1/s");
        let route = limiters.route(&["per_ip".to_owned()]);
        let headers = HeaderMap::new();
        let mut budget = Budget::default();
        for _ in 0..3 {
            assert!(
                route
                    .check_before_auth(&headers, peer(1), &mut budget)
                    .is_ok()
            );
        }
        let refused = route
            .check_before_auth(&headers, peer(1), &mut budget)
            .expect_err("fourth request refused");
        assert_eq!(refused.retry_after, 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            route
                .check_before_auth(&headers, peer(1), &mut budget)
                .is_ok()
        );
        assert!(
            route
                .check_before_auth(&headers, peer(1), &mut budget)
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn prunes_keys_whose_bucket_refilled() {
        let limiters = limits(2, "10/m");
        let route = limiters.route(&["per_ip".to_owned()]);
        let mut budget = Budget::default();
        for n in 0..100 {
            let _ = route.check_before_auth(&HeaderMap::new(), peer(n), &mut budget);
        }
        let limiter = limiters.get("per_ip").expect("limit");
        limiters.prune();
        assert_eq!(limiter.key_count(), 100, "recently used keys stay");
        // One request costs 6 s of budget; governor keeps a key one more emission interval
        // after its bucket is full again, so after 13 s the old keys are idle.
        tokio::time::advance(Duration::from_secs(13)).await;
        let _ = route.check_before_auth(&HeaderMap::new(), peer(200), &mut budget);
        limiters.prune();
        assert_eq!(limiter.key_count(), 1, "only the fresh key stays");
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_hops() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.1.1.1, 2.2.2.2".parse().expect("value"),
        );
        assert_eq!(client_ip(&headers, peer(9), 0), peer(9).ip());
        assert_eq!(client_ip(&headers, peer(9), 1).to_string(), "2.2.2.2");
        assert_eq!(client_ip(&headers, peer(9), 2).to_string(), "1.1.1.1");
        assert_eq!(client_ip(&headers, peer(9), 3), peer(9).ip());
    }
}
