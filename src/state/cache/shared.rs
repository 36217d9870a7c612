//! The seam of the shared tier: what a cache other replicas also read (Redis, next) provides,
//! and the events it sends back. Nothing here implements it; [`super::ResponseCache`] works with
//! or without one.
//!
//! How the response cache uses a [`SharedTier`]:
//! - a local miss asks [`SharedTier::get`] before the backend (inside the coalesced flight, so
//!   one replica asks once per key); a shared hit is stored locally for its remaining TTL;
//! - an answer stored locally is also [`SharedTier::put`] with the same TTL and its tags;
//! - a write's invalidation, after the local tier dropped its entries, goes to
//!   [`SharedTier::invalidate`], which deletes the shared entries and tells the other replicas;
//! - the other replicas' invalidations arrive from [`SharedTier::subscribe`] as
//!   [`RemoteEvent`]s; one task per process hands each to
//!   [`crate::pipeline::Gateway::apply_cache_event`], which applies it to the cache of the
//!   runtime in force (a reload that changes the cache's bounds starts a new, empty one). Pub/sub
//!   delivery is at most once, so after every reconnect the tier must send
//!   [`RemoteEvent::Resync`]: the replica then drops its whole local tier, since it may have
//!   missed invalidations. A replica also hears its own invalidations back; applying them again
//!   only costs a lookup per tag (or filter them by a replica id in the message).
//!
//! Errors never reach clients: a failing shared tier makes the cache local-only (the caller logs
//! them); the implementation is expected to bound each call's time and break its circuit.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use super::tags::Tags;
use super::{CachedAnswer, Stored};

/// The future a shared-tier call returns (boxed: the trait is used as `dyn SharedTier`).
pub type TierFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TierError>> + Send + 'a>>;

/// A cache shared by the replicas, behind the in-process tier.
pub trait SharedTier: Send + Sync + std::fmt::Debug {
    /// The answer stored under `key`, if any and not expired.
    fn get<'a>(&'a self, key: &'a str) -> TierFuture<'a, Option<SharedEntry>>;

    /// Stores `entry` under `key` until it expires ([`Stored::ttl_left`]), findable by its tags.
    fn put<'a>(&'a self, key: &'a str, entry: &'a Stored) -> TierFuture<'a, ()>;

    /// Deletes the shared entries carrying any of `tags`, and publishes the invalidation to the
    /// other replicas ([`RemoteEvent::Invalidated`]).
    fn invalidate<'a>(&'a self, tags: &'a Tags) -> TierFuture<'a, ()>;

    /// Deletes every shared entry and publishes [`RemoteEvent::PurgedAll`].
    fn purge_all(&self) -> TierFuture<'_, ()>;

    /// The events other replicas publish, for as long as the tier lives.
    fn subscribe(&self) -> mpsc::Receiver<RemoteEvent>;
}

/// An answer read from the shared tier.
#[derive(Debug, Clone)]
pub struct SharedEntry {
    /// The answer.
    pub answer: CachedAnswer,
    /// Its tags, as they were put.
    pub tags: Tags,
    /// How long ago it was stored (by whichever replica).
    pub age: Duration,
    /// How long it stays fresh.
    pub ttl_left: Duration,
}

/// What the shared tier tells a replica.
#[derive(Debug, Clone)]
pub enum RemoteEvent {
    /// Another replica invalidated these tags.
    Invalidated(Tags),
    /// Another replica purged everything.
    PurgedAll,
    /// The subscription was re-established: invalidations may have been missed, so the local
    /// tier is dropped whole.
    Resync,
}

/// Why a shared-tier call failed.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The tier cannot be reached, timed out, or its circuit is open.
    #[error("shared cache unavailable: {0}")]
    Unavailable(String),
    /// What it returned cannot be read as an answer.
    #[error("shared cache entry unreadable: {0}")]
    Corrupt(String),
}
