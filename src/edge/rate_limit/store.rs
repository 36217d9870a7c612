//! The per-key state of one limit, bounded: a key's 64-bit hash → its GCRA theoretical arrival
//! time, at most `max_keys` of them. When a new key needs room, the least recently used key is
//! evicted (and counted), as nginx's `limit_req` does when its zone is full. A request refused by
//! its limit still counts as a use, so a client hammering over its limit stays held (and refused)
//! while a flood of new keys passes through.
//!
//! Why not governor's `DashMapStateStore`: it is unbounded and keyed by the whole value, and a
//! bounded `StateStore` for governor would keep its own LRU beside governor's map — two
//! structures to keep in step for what is one number per key. A key costs ≈ 65 bytes here
//! (a 24-byte node plus the hash map's entry and growth slack), whatever the client sent.
//!
//! Layout: up to 16 shards, each behind its own mutex, so the worker threads rarely wait on each
//! other; a key's shard is picked by bits 32.. of its hash, which hashbrown uses neither for the
//! bucket (low bits) nor for the tag (top 7 bits). `max_keys` is split across the shards (the
//! parts add up to exactly `max_keys`), and each shard is an exact LRU: a dense `Vec` of nodes
//! linked most-recent-first by index, and a map from hash to node index. Across shards that
//! approximates one LRU: the evicted key is the least recently used of its sixteenth of the keys.
//! Limits of fewer than 2048 keys have one shard, an exact LRU.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Most shards a store is split into.
const MAX_SHARDS: usize = 16;
/// Fewest keys a shard holds: below, sharding buys no concurrency worth an inexact LRU.
const MIN_SHARD_KEYS: usize = 1024;
/// "No node" in the links.
const NIL: u32 = u32::MAX;

/// At most `max_keys` keys and their TATs.
pub(super) struct KeyStore {
    shards: Box<[Mutex<Shard>]>,
    /// Keys evicted to make room, since the store was built.
    evictions: AtomicU64,
}

impl KeyStore {
    /// An empty store for at most `max_keys` keys (at least 1).
    pub(super) fn new(max_keys: usize) -> KeyStore {
        let max_keys = max_keys.clamp(1, NIL as usize);
        let shards = (max_keys / MIN_SHARD_KEYS).clamp(1, MAX_SHARDS);
        // A power of two, so the shard is a mask of the hash.
        let shards = 1 << shards.ilog2();
        let (share, rest) = (max_keys / shards, max_keys % shards);
        KeyStore {
            shards: (0..shards)
                .map(|i| Mutex::new(Shard::new(share + usize::from(i < rest))))
                .collect(),
            evictions: AtomicU64::new(0),
        }
    }

    /// Runs `decide` on the TAT of `key` (`None` when not held), stores the TAT it returns and
    /// marks the key most recently used; a new key evicts the least recently used when full.
    pub(super) fn update<R>(&self, key: u64, decide: impl FnOnce(Option<u64>) -> (u64, R)) -> R {
        let (result, evicted) = self.shard(key).update(key, decide);
        if evicted {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Drops every key whose TAT is at or before `now` (a full budget, the same as a new key),
    /// and gives back the memory they held.
    pub(super) fn prune(&self, now: u64) {
        for shard in &self.shards {
            lock(shard).prune(now);
        }
    }

    /// Keys held now.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).nodes.len()).sum()
    }

    /// Keys evicted to make room, since the store was built.
    pub(super) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        lock(&self.shards[(key >> 32) as usize & (self.shards.len() - 1)])
    }
}

impl std::fmt::Debug for KeyStore {
    /// Counts only: the keys themselves are opaque hashes, and could be many.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("shards", &self.shards.len())
            .field("keys", &self.len())
            .field("evictions", &self.evictions())
            .finish()
    }
}

/// A shard's lock; the state stays consistent if a holder panicked (every update is complete
/// before the code that could panic — `decide` — returns), so poisoning is ignored.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One key: its hash, its TAT, and its neighbours in recency order.
#[derive(Debug, Clone, Copy)]
struct Node {
    key: u64,
    tat: u64,
    /// More recently used neighbour.
    prev: u32,
    /// Less recently used neighbour.
    next: u32,
}

/// An exact LRU of at most `capacity` keys.
#[derive(Debug)]
struct Shard {
    /// Hash → index in `nodes`.
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// Dense: a removal moves the last node into the hole.
    nodes: Vec<Node>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    capacity: usize,
}

impl Shard {
    fn new(capacity: usize) -> Shard {
        Shard {
            index: HashMap::default(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }

    /// [`KeyStore::update`] within the shard; also says whether a key was evicted.
    fn update<R>(&mut self, key: u64, decide: impl FnOnce(Option<u64>) -> (u64, R)) -> (R, bool) {
        if let Some(&i) = self.index.get(&key) {
            let node = &mut self.nodes[i as usize];
            let (tat, result) = decide(Some(node.tat));
            node.tat = tat;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return (result, false);
        }
        let (tat, result) = decide(None);
        let evicted = self.nodes.len() >= self.capacity;
        if evicted {
            self.remove(self.tail);
        } else if self.nodes.len() == self.nodes.capacity() {
            // Grow as a Vec would, but never past the shard's capacity.
            let more = self
                .nodes
                .len()
                .max(4)
                .min(self.capacity - self.nodes.len());
            self.nodes.reserve_exact(more);
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(Node {
            key,
            tat,
            prev: NIL,
            next: NIL,
        });
        self.index.insert(key, i);
        self.push_front(i);
        (result, evicted)
    }

    fn prune(&mut self, now: u64) {
        // Backwards: a removal moves the last node, already kept, into the hole.
        for i in (0..self.nodes.len()).rev() {
            if self.nodes[i].tat <= now {
                self.remove(i as u32);
            }
        }
        self.nodes.shrink_to_fit();
        self.index.shrink_to_fit();
    }

    /// Takes node `i` out of the recency list.
    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    /// Makes node `i` (not in the list) the most recently used.
    fn push_front(&mut self, i: u32) {
        let node = &mut self.nodes[i as usize];
        node.prev = NIL;
        node.next = self.head;
        match self.head {
            NIL => self.tail = i,
            h => self.nodes[h as usize].prev = i,
        }
        self.head = i;
    }

    /// Forgets node `i`; the last node takes its place, so its neighbours and index follow.
    fn remove(&mut self, i: u32) {
        self.unlink(i);
        let removed = self.nodes.swap_remove(i as usize);
        self.index.remove(&removed.key);
        let Some(&Node {
            key, prev, next, ..
        }) = self.nodes.get(i as usize)
        else {
            return; // it was the last node
        };
        match prev {
            NIL => self.head = i,
            p => self.nodes[p as usize].next = i,
        }
        match next {
            NIL => self.tail = i,
            n => self.nodes[n as usize].prev = i,
        }
        self.index.insert(key, i);
    }
}

/// The map's hasher: keys are already keyed SipHash outputs (uniform, unpredictable to
/// clients), so hashing them again would only cost time.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are u64); this keeps any other input well mixed.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores `tat` for `key`; whether the key was held before.
    fn put(store: &KeyStore, key: u64, tat: u64) -> bool {
        store.update(key, |old| (tat, old.is_some()))
    }

    fn held(store: &KeyStore, key: u64) -> Option<u64> {
        let shard = store.shard(key);
        shard.index.get(&key).map(|&i| shard.nodes[i as usize].tat)
    }

    /// The shard's keys from most to least recently used, checking the links both ways.
    fn order(shard: &Shard) -> Vec<u64> {
        let mut keys = Vec::new();
        let (mut i, mut prev) = (shard.head, NIL);
        while i != NIL {
            let node = shard.nodes[i as usize];
            assert_eq!(node.prev, prev, "back link of {}", node.key);
            assert_eq!(shard.index[&node.key], i);
            keys.push(node.key);
            (prev, i) = (i, node.next);
        }
        assert_eq!(shard.tail, prev);
        assert_eq!(keys.len(), shard.nodes.len());
        assert_eq!(keys.len(), shard.index.len());
        keys
    }

    #[test]
    fn a_full_store_evicts_the_least_recently_used_key() {
        let store = KeyStore::new(3);
        for key in [1, 2, 3] {
            assert!(!put(&store, key, 10));
        }
        assert!(put(&store, 1, 20), "1 is used again: 2 is now the oldest");
        assert!(!put(&store, 4, 10));
        assert_eq!(store.evictions(), 1);
        assert_eq!(held(&store, 2), None);
        assert_eq!(held(&store, 1), Some(20));
        assert_eq!(order(&lock(&store.shards[0])), [4, 1, 3]);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn pruning_drops_refilled_keys_and_keeps_the_order_of_the_rest() {
        let store = KeyStore::new(100);
        for key in 0..50 {
            put(&store, key, key);
        }
        store.prune(24);
        assert_eq!(store.len(), 25);
        let shard = lock(&store.shards[0]);
        assert_eq!(order(&shard), (25..50).rev().collect::<Vec<_>>());
        assert_eq!(shard.nodes.capacity(), 25, "memory given back");
    }

    #[test]
    fn never_holds_more_than_max_keys_across_shards() {
        let max_keys = 5_000;
        let store = KeyStore::new(max_keys);
        assert_eq!(store.shards.len(), 4);
        let capacities: usize = store.shards.iter().map(|s| lock(s).capacity).sum();
        assert_eq!(capacities, max_keys);
        // Spread like SipHash outputs: a multiplicative hash of a counter.
        for n in 0..20_000u64 {
            put(&store, n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n);
            assert!(store.len() <= max_keys);
        }
        assert_eq!(store.len(), max_keys, "every shard fills up");
        assert_eq!(store.evictions(), 20_000 - store.len() as u64);
        for shard in store.shards.iter() {
            let shard = lock(shard);
            order(&shard);
            assert!(shard.nodes.capacity() <= shard.capacity);
        }
    }

    #[test]
    fn a_store_of_one_key_replaces_it() {
        let store = KeyStore::new(1);
        put(&store, 7, 1);
        put(&store, 8, 1);
        assert_eq!((held(&store, 7), held(&store, 8)), (None, Some(1)));
        assert_eq!(store.evictions(), 1);
    }
}
