//! The response cache for GET routes (cache-aside): [`ResponseCache`], an in-process tier with an
//! optional shared tier behind it.
//!
//! A lookup gives a fresh answer ([`Lookup::Hit`]), or the miss already in flight for the key to
//! wait on ([`Lookup::Follow`]: request coalescing, one backend call for concurrent misses), or a
//! new flight for the caller to lead ([`Lookup::Lead`]). A leader that lands a cacheable answer
//! stores it and hands it to its followers; one that lands nothing (the answer was not
//! cacheable) sends them to the backend on their own; one that goes away sends them back to
//! look up again.
//!
//! Writes invalidate by tag ([`tags`]) before they are answered. An invalidation also detaches
//! flights it touches, and an answer fetched while one happened is not stored ([`log`]), so a
//! client that saw its write answered never reads the state from before it through this replica.
//!
//! # Layout
//! - [`key`]: the key of a GET. [`tags`]: tags from path templates.
//! - `store`: the in-process tier (bounds, expiry, CLOCK eviction, tag index, flights); `log`:
//!   recent invalidations.
//! - [`shared`]: the [`SharedTier`] trait a Redis tier implements, and the events it sends.

pub mod key;
mod log;
pub mod redis_tier;
pub mod shared;
mod store;
pub mod tags;

pub use key::{KeyParts, cache_key};
pub use shared::{RemoteEvent, SharedEntry, SharedTier, TierError, TierFuture};
pub use tags::{TagPlan, Tags, normalized_tag};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::CacheConfig;
use store::{Flight, Found, LocalTier};

/// A cacheable answer: a 200 to a GET, its headers and whole body.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    /// Response headers as the backend call produced them (no per-request ones).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// An answer as a tier holds it.
#[derive(Debug)]
pub struct Stored {
    /// The answer.
    pub answer: CachedAnswer,
    /// When it was stored (by this replica, or as the shared tier's age says).
    pub stored_at: Instant,
    /// When it stops being served.
    pub expires: Instant,
    /// What invalidates it.
    pub tags: Tags,
    /// Bytes it is counted for: body, headers, tags and bookkeeping.
    size: usize,
}

impl Stored {
    /// `answer` stored at `now`, fresh for `ttl`.
    pub fn new(answer: CachedAnswer, tags: Tags, ttl: Duration, now: Instant) -> Stored {
        Stored::aged(answer, tags, Duration::ZERO, ttl, now)
    }

    /// `answer` stored `age` before `now`, fresh for `ttl_left` from `now`.
    pub fn aged(
        answer: CachedAnswer,
        tags: Tags,
        age: Duration,
        ttl_left: Duration,
        now: Instant,
    ) -> Stored {
        let headers: usize = answer
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        let tag_bytes: usize = tags.iter().map(|t| t.len() + 16).sum();
        Stored {
            size: answer.body.len() + headers + tag_bytes + 256,
            stored_at: now.checked_sub(age).unwrap_or(now),
            expires: now + ttl_left,
            answer,
            tags,
        }
    }

    /// Its age at `now` (the `Age` header).
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored_at)
    }

    /// How long it stays fresh after `now` (the `ttl` of `Cache-Status`).
    pub fn ttl_left(&self, now: Instant) -> Duration {
        self.expires.saturating_duration_since(now)
    }
}

/// How a miss ended, as its followers learn it: the answer, or `None` when it was not cacheable.
pub type Landed = Option<Arc<Stored>>;

/// The response cache: the in-process tier, and the shared tier when one is configured.
#[derive(Debug)]
pub struct ResponseCache {
    local: LocalTier,
    /// Set once, when the process shares state (before requests reach it, or at the latest when
    /// the runtime holding it is swapped in).
    shared: std::sync::OnceLock<Arc<dyn SharedTier>>,
    limits: CacheConfig,
}

/// What a lookup found.
pub enum Lookup<'c> {
    /// A fresh answer.
    Hit(Arc<Stored>),
    /// A miss for the key is in flight.
    Follow(Follower),
    /// The caller makes the backend call for the key.
    Lead(Leader<'c>),
}

/// Entries and bytes the in-process tier holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Stored answers.
    pub entries: usize,
    /// Their bytes.
    pub bytes: usize,
}

impl ResponseCache {
    /// An in-process cache with these bounds.
    pub fn new(limits: &CacheConfig) -> ResponseCache {
        ResponseCache::with_shared(limits, None)
    }

    /// A cache with `shared` behind the in-process tier (whose events the caller feeds to
    /// [`ResponseCache::apply_remote`]).
    pub fn with_shared(limits: &CacheConfig, shared: Option<Arc<dyn SharedTier>>) -> ResponseCache {
        let cell = std::sync::OnceLock::new();
        if let Some(shared) = shared {
            let _ = cell.set(shared);
        }
        ResponseCache {
            local: LocalTier::new(limits),
            shared: cell,
            limits: limits.clone(),
        }
    }

    /// For a reload: `previous` itself when its bounds are `limits` (its answers stay), else a
    /// new empty cache with the same shared tier.
    pub fn reusing(
        limits: &CacheConfig,
        previous: Option<&Arc<ResponseCache>>,
    ) -> Arc<ResponseCache> {
        match previous {
            Some(p) if p.limits == *limits => p.clone(),
            Some(p) => Arc::new(ResponseCache::with_shared(limits, p.shared.get().cloned())),
            None => Arc::new(ResponseCache::new(limits)),
        }
    }

    /// Puts `shared` behind the in-process tier, unless one is there already.
    pub fn attach(&self, shared: &Arc<dyn SharedTier>) {
        let _ = self.shared.set(shared.clone());
    }

    /// Looks `key` (tagged `tags`) up in the in-process tier.
    pub fn lookup(&self, key: Arc<str>, tags: &Tags) -> Lookup<'_> {
        match self.local.lookup(&key, tags, Instant::now()) {
            Found::Hit(entry) => Lookup::Hit(entry),
            Found::Follow(receiver) => Lookup::Follow(Follower { receiver }),
            Found::Lead(flight) => Lookup::Lead(Leader {
                cache: self,
                key,
                tags: tags.clone(),
                flight,
                landed: false,
            }),
        }
    }

    /// A miss for `key` that nobody waits on, for a request that skips the lookup (`no-cache`)
    /// but may store its fresh answer.
    pub fn refresh(&self, key: Arc<str>, tags: &Tags) -> Leader<'_> {
        Leader {
            cache: self,
            key,
            tags: tags.clone(),
            flight: self.local.detached(),
            landed: false,
        }
    }

    /// Drops every entry carrying one of `tags`, here and (when configured) in the shared tier,
    /// which tells the other replicas; returns how many local entries were dropped.
    pub async fn invalidate(&self, tags: &Tags) -> usize {
        let dropped = self.local.invalidate(tags);
        if let Some(shared) = self.shared.get()
            && let Err(e) = shared.invalidate(tags).await
        {
            tracing::warn!(error = %e, ?tags, "shared cache invalidation failed");
        }
        dropped
    }

    /// The operator's purge: entries tagged `tag`, or everything; returns how many local
    /// entries were dropped.
    pub async fn purge(&self, tag: Option<&str>) -> usize {
        let Some(tag) = tag else {
            let dropped = self.local.purge_all();
            if let Some(shared) = self.shared.get()
                && let Err(e) = shared.purge_all().await
            {
                tracing::warn!(error = %e, "shared cache purge failed");
            }
            return dropped;
        };
        self.invalidate(&Tags::from([Arc::from(tag)])).await
    }

    /// The hook where other replicas' invalidations arrive (from [`SharedTier::subscribe`]).
    pub fn apply_remote(&self, event: RemoteEvent) {
        let dropped = match &event {
            RemoteEvent::Invalidated(tags) => self.local.invalidate(tags),
            RemoteEvent::PurgedAll | RemoteEvent::Resync => self.local.purge_all(),
        };
        tracing::debug!(?event, dropped, "remote cache event applied");
    }

    /// Drops expired entries (the periodic maintenance; lookups drop the ones they find).
    pub fn maintain(&self) {
        self.local.expire(Instant::now());
    }

    /// What the in-process tier holds.
    pub fn usage(&self) -> Usage {
        let (entries, bytes) = self.local.usage();
        Usage { entries, bytes }
    }
}

/// The request that makes the backend call for a missed key; its followers wait for [`land`].
///
/// [`land`]: Leader::land
pub struct Leader<'c> {
    cache: &'c ResponseCache,
    key: Arc<str>,
    tags: Tags,
    flight: Flight,
    landed: bool,
}

impl Leader<'_> {
    /// True when an expired answer was found for the key.
    pub fn stale(&self) -> bool {
        self.flight.stale
    }

    /// The shared tier's answer for the key, stored locally and handed to the followers; the
    /// leader back when there is none (or no shared tier, or it failed).
    pub async fn shared_hit(mut self) -> Result<Arc<Stored>, Self> {
        let Some(shared) = self.cache.shared.get().cloned() else {
            return Err(self);
        };
        let found = match shared.get(&self.key).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(self),
            Err(e) => {
                tracing::debug!(error = %e, "shared cache lookup failed");
                return Err(self);
            }
        };
        let SharedEntry {
            answer,
            tags,
            age,
            ttl_left,
        } = found;
        let entry = Arc::new(Stored::aged(answer, tags, age, ttl_left, Instant::now()));
        self.landed = true;
        self.cache
            .local
            .land(&self.key, &self.flight, Some(entry.clone()));
        Ok(entry)
    }

    /// Ends the miss with the backend's answer: a cacheable one is stored for `ttl` (here, and
    /// in the shared tier) and handed to the followers; `None` sends them to the backend.
    /// Returns the stored entry, or `None` when nothing was stored.
    pub async fn land(
        mut self,
        answer: Option<CachedAnswer>,
        ttl: Duration,
    ) -> Option<Arc<Stored>> {
        self.landed = true;
        let tags = self.tags.clone();
        let entry = answer.map(|a| Arc::new(Stored::new(a, tags, ttl, Instant::now())));
        let stored = self
            .cache
            .local
            .land(&self.key, &self.flight, entry.clone());
        let entry = entry.filter(|_| stored)?;
        if let Some(shared) = self.cache.shared.get()
            && let Err(e) = shared.put(&self.key, &entry).await
        {
            tracing::debug!(error = %e, "shared cache store failed");
        }
        Some(entry)
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.cache.local.abandon(&self.key, &self.flight);
        }
    }
}

/// A request waiting for the miss in flight for its key.
pub struct Follower {
    receiver: watch::Receiver<Option<Landed>>,
}

/// How a follower's wait ended.
#[derive(Debug)]
pub enum Joined {
    /// The leader's answer.
    Answer(Arc<Stored>),
    /// The leader's answer was not cacheable: make your own call.
    Alone,
    /// The leader went away without an answer: look up again.
    Again,
    /// `limit` passed first.
    TimedOut,
}

impl Follower {
    /// Waits at most `limit` for the leader.
    pub async fn wait(mut self, limit: Duration) -> Joined {
        let waited = tokio::time::timeout(limit, self.receiver.wait_for(Option::is_some)).await;
        match waited {
            Err(_) => Joined::TimedOut,
            Ok(Err(_)) => Joined::Again,
            Ok(Ok(landed)) => match landed.clone().flatten() {
                Some(entry) => Joined::Answer(entry),
                None => Joined::Alone,
            },
        }
    }
}

#[cfg(test)]
mod tests;
