//! The cache's contract on tokio's paused clock: hits, expiry, coalescing, invalidation (also of
//! misses in flight), bounds and eviction, and the shared-tier seam with an in-memory double.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::*;

fn limits(max_entries: usize, max_bytes: usize) -> CacheConfig {
    CacheConfig {
        max_entries,
        max_bytes,
        max_entry_bytes: max_bytes,
    }
}

fn tags(list: &[&str]) -> Tags {
    list.iter().map(|t| Arc::from(*t)).collect()
}

fn answer(body: &'static str) -> CachedAnswer {
    CachedAnswer {
        headers: HeaderMap::new(),
        body: Bytes::from_static(body.as_bytes()),
    }
}

const TTL: Duration = Duration::from_secs(300);

/// Looks `key` up, leads the miss and lands `body`; panics unless it was a miss.
async fn fill(cache: &ResponseCache, key: &str, tag_list: &[&str], body: &'static str) {
    match cache.lookup(Arc::from(key), &tags(tag_list)) {
        Lookup::Lead(leader) => {
            leader.land(Some(answer(body)), TTL).await;
        }
        _ => panic!("expected a miss for {key}"),
    }
}

fn hit_body(cache: &ResponseCache, key: &str) -> Option<Bytes> {
    match cache.lookup(Arc::from(key), &tags(&[])) {
        Lookup::Hit(entry) => Some(entry.answer.body.clone()),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_stored_answer_is_served_until_its_ttl_and_then_found_stale() {
    let cache = ResponseCache::new(&CacheConfig::default());
    fill(&cache, "k", &["t"], "one").await;
    tokio::time::advance(Duration::from_secs(299)).await;
    let Lookup::Hit(entry) = cache.lookup(Arc::from("k"), &tags(&["t"])) else {
        panic!("expected a hit");
    };
    assert_eq!(entry.age(Instant::now()), Duration::from_secs(299));
    assert_eq!(entry.ttl_left(Instant::now()), Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    let Lookup::Lead(leader) = cache.lookup(Arc::from("k"), &tags(&["t"])) else {
        panic!("expected a miss");
    };
    assert!(leader.stale());
    drop(leader);
    assert_eq!(cache.usage().entries, 0);
}

#[tokio::test(start_paused = true)]
async fn followers_get_the_leaders_answer_without_a_call_of_their_own() {
    let cache = ResponseCache::new(&CacheConfig::default());
    let t = tags(&["t"]);
    let Lookup::Lead(leader) = cache.lookup(Arc::from("k"), &t) else {
        panic!("lead")
    };
    let followers: Vec<Follower> = (0..3)
        .map(|_| match cache.lookup(Arc::from("k"), &t) {
            Lookup::Follow(f) => f,
            _ => panic!("expected to follow"),
        })
        .collect();
    assert!(leader.land(Some(answer("shared")), TTL).await.is_some());
    for follower in followers {
        match follower.wait(Duration::from_secs(1)).await {
            Joined::Answer(entry) => assert_eq!(entry.answer.body, "shared"),
            other => panic!("expected the answer, got {other:?}"),
        }
    }
    assert_eq!(hit_body(&cache, "k").as_deref(), Some(&b"shared"[..]));
}

#[tokio::test(start_paused = true)]
async fn followers_go_alone_after_an_uncacheable_answer_and_again_after_a_vanished_leader() {
    let cache = ResponseCache::new(&CacheConfig::default());
    let t = tags(&["t"]);
    let Lookup::Lead(leader) = cache.lookup(Arc::from("k"), &t) else {
        panic!("lead")
    };
    let Lookup::Follow(follower) = cache.lookup(Arc::from("k"), &t) else {
        panic!("follow")
    };
    assert!(leader.land(None, TTL).await.is_none());
    assert!(matches!(
        follower.wait(Duration::from_secs(1)).await,
        Joined::Alone
    ));

    let Lookup::Lead(leader) = cache.lookup(Arc::from("k"), &t) else {
        panic!("lead")
    };
    let Lookup::Follow(follower) = cache.lookup(Arc::from("k"), &t) else {
        panic!("follow")
    };
    drop(leader);
    assert!(matches!(
        follower.wait(Duration::from_secs(1)).await,
        Joined::Again
    ));
    assert!(matches!(cache.lookup(Arc::from("k"), &t), Lookup::Lead(_)));

    let Lookup::Lead(_leader) = cache.lookup(Arc::from("slow"), &t) else {
        panic!("lead")
    };
    let Lookup::Follow(follower) = cache.lookup(Arc::from("slow"), &t) else {
        panic!("follow")
    };
    assert!(matches!(
        follower.wait(Duration::from_secs(2)).await,
        Joined::TimedOut
    ));
}

#[tokio::test(start_paused = true)]
async fn invalidation_drops_every_entry_with_a_tag_and_only_those() {
    let cache = ResponseCache::new(&CacheConfig::default());
    fill(&cache, "one", &["v1/policies/pol-1", "v1/policies"], "1").await;
    fill(&cache, "list", &["v1/policies"], "l").await;
    fill(&cache, "other", &["v1/agents/a"], "a").await;
    let dropped = cache
        .invalidate(&tags(&["v1/policies/pol-1", "v1/policies"]))
        .await;
    assert_eq!(dropped, 2);
    assert!(hit_body(&cache, "one").is_none());
    assert!(hit_body(&cache, "list").is_none());
    assert!(hit_body(&cache, "other").is_some());
    assert_eq!(cache.purge(Some("v1/agents/a")).await, 1);
    assert_eq!(
        cache.usage(),
        Usage {
            entries: 0,
            bytes: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_fetched_across_an_invalidation_is_served_but_not_stored() {
    let cache = ResponseCache::new(&CacheConfig::default());
    let t = tags(&["v1/policies/pol-1"]);
    let Lookup::Lead(before) = cache.lookup(Arc::from("k"), &t) else {
        panic!("lead")
    };
    cache.invalidate(&t).await;
    // A request after the write does not join the flight that started before it.
    let Lookup::Lead(after) = cache.lookup(Arc::from("k"), &t) else {
        panic!("new flight")
    };
    assert!(before.land(Some(answer("old")), TTL).await.is_none());
    assert!(hit_body(&cache, "k").is_none());
    assert!(after.land(Some(answer("new")), TTL).await.is_some());
    assert_eq!(hit_body(&cache, "k").as_deref(), Some(&b"new"[..]));
    // An unrelated invalidation does not stop a flight from storing.
    let Lookup::Lead(leader) = cache.lookup(Arc::from("j"), &t) else {
        panic!("lead")
    };
    cache.invalidate(&tags(&["elsewhere"])).await;
    assert!(leader.land(Some(answer("j")), TTL).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_entry_bound_evicts_an_unread_answer_before_a_read_one() {
    let cache = ResponseCache::new(&limits(2, 1 << 20));
    fill(&cache, "read", &[], "r").await;
    fill(&cache, "unread", &[], "u").await;
    assert!(hit_body(&cache, "read").is_some());
    fill(&cache, "new", &[], "n").await;
    assert!(hit_body(&cache, "read").is_some());
    assert!(hit_body(&cache, "unread").is_none());
    assert!(hit_body(&cache, "new").is_some());
    assert_eq!(cache.usage().entries, 2);
}

#[tokio::test(start_paused = true)]
async fn the_byte_bound_holds_and_an_answer_too_large_is_not_stored() {
    let one = Stored::new(answer("x"), tags(&[]), TTL, Instant::now()).size;
    let cache = ResponseCache::new(&limits(100, 3 * one));
    for key in ["a", "b", "c", "d"] {
        fill(&cache, key, &[], "x").await;
    }
    assert_eq!(
        cache.usage(),
        Usage {
            entries: 3,
            bytes: 3 * one
        }
    );
    assert!(hit_body(&cache, "a").is_none());
    let big = CacheConfig {
        max_entry_bytes: one,
        ..limits(100, 1 << 20)
    };
    let cache = ResponseCache::new(&big);
    fill(&cache, "big", &[], "larger than one").await;
    assert_eq!(cache.usage().entries, 0);
}

#[tokio::test(start_paused = true)]
async fn maintenance_drops_expired_entries_and_purge_drops_all() {
    let cache = ResponseCache::new(&CacheConfig::default());
    fill(&cache, "a", &["t"], "a").await;
    tokio::time::advance(TTL).await;
    fill(&cache, "b", &["t"], "b").await;
    cache.maintain();
    assert_eq!(cache.usage().entries, 1);
    assert_eq!(cache.purge(None).await, 1);
    assert_eq!(
        cache.usage(),
        Usage {
            entries: 0,
            bytes: 0
        }
    );
}

/// An in-memory shared tier: what the Redis tier will do, without the network.
#[derive(Debug, Default)]
struct MemoryTier {
    entries: Mutex<HashMap<String, SharedEntry>>,
    invalidated: Mutex<Vec<Tags>>,
}

impl SharedTier for MemoryTier {
    fn get<'a>(&'a self, key: &'a str) -> TierFuture<'a, Option<SharedEntry>> {
        Box::pin(async move { Ok(self.entries.lock().expect("lock").get(key).cloned()) })
    }

    fn put<'a>(&'a self, key: &'a str, entry: &'a Stored) -> TierFuture<'a, ()> {
        let shared = SharedEntry {
            answer: entry.answer.clone(),
            tags: entry.tags.clone(),
            age: Duration::ZERO,
            ttl_left: entry.ttl_left(Instant::now()),
        };
        self.entries
            .lock()
            .expect("lock")
            .insert(key.to_owned(), shared);
        Box::pin(async { Ok(()) })
    }

    fn invalidate<'a>(&'a self, tags: &'a Tags) -> TierFuture<'a, ()> {
        self.invalidated.lock().expect("lock").push(tags.clone());
        Box::pin(async { Err(TierError::Unavailable("down".to_owned())) })
    }

    fn purge_all(&self) -> TierFuture<'_, ()> {
        self.entries.lock().expect("lock").clear();
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> mpsc::Receiver<RemoteEvent> {
        mpsc::channel(1).1
    }
}

#[tokio::test(start_paused = true)]
async fn the_shared_tier_fills_local_misses_takes_stored_answers_and_hears_invalidations() {
    let tier = Arc::new(MemoryTier::default());
    let shared: Arc<dyn SharedTier> = tier.clone();
    let replica_a = ResponseCache::with_shared(&CacheConfig::default(), Some(shared.clone()));
    let replica_b = ResponseCache::with_shared(&CacheConfig::default(), Some(shared));
    fill(&replica_a, "k", &["t"], "from a").await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let Lookup::Lead(leader) = replica_b.lookup(Arc::from("k"), &tags(&["t"])) else {
        panic!("replica b misses locally")
    };
    let entry = leader.shared_hit().await.ok().expect("shared hit");
    assert_eq!(entry.answer.body, "from a");
    assert_eq!(hit_body(&replica_b, "k").as_deref(), Some(&b"from a"[..]));
    // A failing shared invalidation still invalidates locally.
    assert_eq!(replica_b.invalidate(&tags(&["t"])).await, 1);
    assert_eq!(tier.invalidated.lock().expect("lock").len(), 1);
    // What other replicas publish arrives through `apply_remote`.
    fill(&replica_a, "other", &["u"], "u").await;
    replica_a.apply_remote(RemoteEvent::Invalidated(tags(&["t"])));
    assert_eq!(replica_a.usage().entries, 1);
    replica_a.apply_remote(RemoteEvent::Resync);
    assert_eq!(replica_a.usage().entries, 0);
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_drops_the_whole_local_tier() {
    let cache = ResponseCache::new(&CacheConfig::default());
    fill(&cache, "a", &["x"], "a").await;
    fill(&cache, "b", &["y"], "b").await;
    cache.apply_remote(RemoteEvent::Resync);
    assert_eq!(cache.usage().entries, 0);
}
