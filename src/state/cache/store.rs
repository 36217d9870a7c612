//! The in-process tier: answers by key, bounded by entries and bytes, each with its own expiry,
//! indexed by tag for invalidation, plus the misses in flight that later requests for the same
//! key wait on (request coalescing).
//!
//! One mutex guards it all, held only for map operations (never across an `.await`): deciding
//! "hit, wait for the miss in flight, or lead a new one" must be one step, or a request could
//! miss just as the leader stores and removes its flight, and make a second backend call.
//!
//! Eviction is CLOCK (second chance): entries queue in insertion order with a `visited` bit that
//! a hit sets; the oldest unvisited (or expired) entry goes first, a visited one is re-queued
//! once with its bit cleared. It keeps frequently read answers without the per-hit reordering
//! of an LRU list. Queue slots of removed entries are skipped, and the queue is compacted when
//! they outnumber the live ones.
//!
//! Hand-written rather than `moka` (whose `future::Cache` builds here in about 1.4 s plus ~2 s for
//! the 8 crates it adds, so cost was not the reason): (1) moka's expiry runs on its own clock,
//! so TTLs could not be tested on tokio's paused clock like every other timer here; (2) its
//! coalescing (`try_get_with`) hands the loader's error to every waiter, while here waiters make
//! their own call when the leader's answer is not cacheable, and a leader is only known to have
//! a cacheable answer after the call; (3) tag invalidation needs a tag → keys index and an
//! invalidation epoch checked atomically with the insert (an answer fetched across a write must
//! not be stored), which would sit beside moka under a lock of our own anyway, kept in step with
//! its asynchronous eviction through a listener.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::time::Instant;

use super::log::{InvalidationLog, overlap};
use super::tags::Tags;
use super::{Landed, Stored};
use crate::config::CacheConfig;

/// Where a miss's followers learn how it ended: `Some(answer)` once it landed.
pub(super) type FlightSender = Arc<watch::Sender<Option<Landed>>>;

/// What the tier holds for a key at lookup time.
pub(super) enum Found {
    /// A fresh answer.
    Hit(Arc<Stored>),
    /// A miss for the key is in flight: wait for it.
    Follow(watch::Receiver<Option<Landed>>),
    /// Nothing: the caller leads the miss (`stale`: an expired answer was dropped).
    Lead(Flight),
}

/// A miss in flight, as its leader holds it.
#[derive(Debug, Clone)]
pub(super) struct Flight {
    /// Tells apart a key's successive flights.
    pub(super) id: u64,
    /// The invalidation epoch when it started.
    pub(super) epoch: u64,
    /// An expired answer was found (and dropped).
    pub(super) stale: bool,
    /// Where its followers wait.
    pub(super) sender: FlightSender,
}

/// The in-process tier.
#[derive(Debug)]
pub(super) struct LocalTier {
    store: Mutex<Store>,
    limits: CacheConfig,
}

#[derive(Debug, Default)]
struct Store {
    entries: HashMap<Arc<str>, Slot>,
    /// Tag → keys of the entries carrying it.
    tags: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// CLOCK order: (key, entry id); ids of removed entries are skipped.
    clock: VecDeque<(Arc<str>, u64)>,
    bytes: usize,
    next_id: u64,
    /// Misses in flight by key, with their tags (an invalidation detaches those it touches).
    flights: HashMap<Arc<str>, (u64, Tags, FlightSender)>,
    log: InvalidationLog,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    entry: Arc<Stored>,
    visited: bool,
}

impl LocalTier {
    /// An empty tier with these bounds.
    pub(super) fn new(limits: &CacheConfig) -> LocalTier {
        LocalTier {
            store: Mutex::new(Store::default()),
            limits: limits.clone(),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh answer for `key`, the miss in flight for it, or a new flight the caller leads.
    pub(super) fn lookup(&self, key: &Arc<str>, tags: &Tags, now: Instant) -> Found {
        let mut store = self.store();
        let mut stale = false;
        if let Some(slot) = store.entries.get_mut(key) {
            if slot.entry.expires > now {
                slot.visited = true;
                return Found::Hit(slot.entry.clone());
            }
            stale = true;
            store.remove(key);
        }
        if let Some((_, _, sender)) = store.flights.get(key) {
            return Found::Follow(sender.subscribe());
        }
        store.next_id += 1;
        let flight = Flight {
            id: store.next_id,
            epoch: store.log.epoch(),
            stale,
            sender: Arc::new(watch::channel(None).0),
        };
        let held = (flight.id, tags.clone(), flight.sender.clone());
        store.flights.insert(key.clone(), held);
        Found::Lead(flight)
    }

    /// A flight nobody can join, for a request that skips the lookup but stores its answer.
    pub(super) fn detached(&self) -> Flight {
        let mut store = self.store();
        store.next_id += 1;
        Flight {
            id: store.next_id,
            epoch: store.log.epoch(),
            stale: false,
            sender: Arc::new(watch::channel(None).0),
        }
    }

    /// Ends `flight`: stores `entry` unless an invalidation since the flight started touched
    /// its tags, then hands the followers the answer. True when it was stored.
    pub(super) fn land(&self, key: &Arc<str>, flight: &Flight, entry: Landed) -> bool {
        let mut store = self.store();
        let stored = match &entry {
            Some(e) if !store.log.touched_since(flight.epoch, &e.tags) => {
                store.insert(key, e.clone(), &self.limits)
            }
            _ => false,
        };
        store.end_flight(key, flight.id);
        drop(store);
        flight.sender.send_replace(Some(entry));
        stored
    }

    /// Ends a flight whose leader went away without an answer: its followers try again.
    pub(super) fn abandon(&self, key: &Arc<str>, flight: &Flight) {
        self.store().end_flight(key, flight.id);
    }

    /// Drops every entry carrying one of `tags`, and detaches the flights they touch (later
    /// requests make a fresh call); returns how many entries were dropped.
    pub(super) fn invalidate(&self, tags: &Tags) -> usize {
        let mut store = self.store();
        store.log.record(Some(tags.clone()));
        store
            .flights
            .retain(|_, (_, flight_tags, _)| !overlap(flight_tags, tags));
        let keys: HashSet<Arc<str>> = tags
            .iter()
            .filter_map(|tag| store.tags.get(tag))
            .flatten()
            .cloned()
            .collect();
        keys.iter().filter(|key| store.remove(key)).count()
    }

    /// Drops every entry and detaches every flight; returns how many entries were dropped.
    pub(super) fn purge_all(&self) -> usize {
        let mut store = self.store();
        store.log.record(None);
        let dropped = store.entries.len();
        let log = std::mem::take(&mut store.log);
        *store = Store {
            log,
            next_id: store.next_id,
            ..Store::default()
        };
        dropped
    }

    /// Drops the expired entries; returns how many.
    pub(super) fn expire(&self, now: Instant) -> usize {
        let mut store = self.store();
        let expired: Vec<Arc<str>> = store
            .entries
            .iter()
            .filter(|(_, slot)| slot.entry.expires <= now)
            .map(|(key, _)| key.clone())
            .collect();
        expired.iter().filter(|key| store.remove(key)).count()
    }

    /// Entries held and their bytes.
    pub(super) fn usage(&self) -> (usize, usize) {
        let store = self.store();
        (store.entries.len(), store.bytes)
    }
}

impl Store {
    /// Stores `entry` under `key`, evicting until it fits; false when it cannot fit at all.
    fn insert(&mut self, key: &Arc<str>, entry: Arc<Stored>, limits: &CacheConfig) -> bool {
        if entry.size > limits.max_entry_bytes || entry.size > limits.max_bytes {
            return false;
        }
        self.remove(key);
        while self.entries.len() >= limits.max_entries || self.bytes + entry.size > limits.max_bytes
        {
            if !self.evict_one(entry.stored_at) {
                return false;
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        self.bytes += entry.size;
        for tag in entry.tags.iter() {
            self.tags
                .entry(tag.clone())
                .or_default()
                .insert(key.clone());
        }
        self.clock.push_back((key.clone(), id));
        let visited = false;
        self.entries
            .insert(key.clone(), Slot { id, entry, visited });
        if self.clock.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.clock
                .retain(|(k, id)| entries.get(k).is_some_and(|s| s.id == *id));
        }
        true
    }

    /// Evicts one entry by CLOCK order (expired ones first as they come); false when empty.
    fn evict_one(&mut self, now: Instant) -> bool {
        while let Some((key, id)) = self.clock.pop_front() {
            let Some(slot) = self.entries.get_mut(&key).filter(|s| s.id == id) else {
                continue;
            };
            if slot.visited && slot.entry.expires > now {
                slot.visited = false;
                self.clock.push_back((key, id));
                continue;
            }
            self.remove(&key);
            return true;
        }
        false
    }

    /// Removes `key`'s entry and its tag index entries; false when there was none.
    fn remove(&mut self, key: &Arc<str>) -> bool {
        let Some(slot) = self.entries.remove(key) else {
            return false;
        };
        self.bytes -= slot.entry.size;
        for tag in slot.entry.tags.iter() {
            if let Some(keys) = self.tags.get_mut(tag) {
                keys.remove(key);
                if keys.is_empty() {
                    self.tags.remove(tag);
                }
            }
        }
        true
    }

    /// Forgets flight `id` of `key` (unless an invalidation detached it, or a newer one holds
    /// the key).
    fn end_flight(&mut self, key: &Arc<str>, id: u64) {
        if self
            .flights
            .get(key)
            .is_some_and(|(held, _, _)| *held == id)
        {
            self.flights.remove(key);
        }
    }
}
