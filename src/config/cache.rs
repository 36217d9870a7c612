//! The validated response-cache settings: what a route caches ([`RouteCacheConfig`]) and the
//! bounds of the in-process tier ([`CacheConfig`]).

use std::time::Duration;

/// `routes[].cache` when its `ttl` is absent: the TAI design's default freshness.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// `routes[].cache`: the route's GET answers are cached; its writes invalidate `invalidates` too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCacheConfig {
    /// How long a stored answer is served.
    pub ttl: Duration,
    /// Answers to authenticated requests are cached per verified token subject (the subject is
    /// part of the key); without it, a request carrying credentials is never cached.
    pub per_subject: bool,
    /// Request headers (lower-case) whose values are part of the key.
    pub vary: Vec<String>,
    /// Tags a successful write through this route invalidates besides the ones its path gives
    /// (`v1/policies`, no leading slash).
    pub invalidates: Vec<String>,
}

/// `cache:` bounds of the in-process tier, over all routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Stored answers at most.
    pub max_entries: usize,
    /// Bytes of stored answers (bodies, headers, keys, tags) at most.
    pub max_bytes: usize,
    /// A larger answer is never stored (one answer cannot push out the whole tier).
    pub max_entry_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
        }
    }
}
