//! Replicas announce themselves in Redis once a second (a sorted set scored by Redis' own clock,
//! so replica clocks never matter); each reads back how many announced themselves in the last
//! few seconds. The last count read stays in use while Redis is unreachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::Script;

use super::redis::Redis;

/// How often a replica announces itself.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A replica not heard from for this long is no longer counted.
const FORGOTTEN_AFTER_MS: u64 = 3_000;

/// Announce this replica, forget silent ones, count the rest; Redis' `TIME` is the clock.
const ANNOUNCE: &str = r"
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
";

/// The fleet's size as this replica last saw it.
#[derive(Debug)]
pub struct Replicas {
    id: String,
    live: AtomicUsize,
}

impl Replicas {
    /// This replica, alone until Redis says otherwise.
    pub fn new() -> Arc<Replicas> {
        Arc::new(Replicas {
            id: replica_id(),
            live: AtomicUsize::new(1),
        })
    }

    /// Live replicas, this one included (at least 1).
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// This replica's id in the fleet.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Announces this replica every second until the task is dropped.
    pub async fn announce(self: Arc<Self>, redis: Arc<Redis>) {
        let script = Script::new(ANNOUNCE);
        let key = redis.key("replicas");
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut invocation = script.key(&key);
            invocation.arg(&self.id).arg(FORGOTTEN_AFTER_MS);
            if let Ok(count) = redis.run::<usize>(&invocation).await {
                self.live.store(count, Ordering::Relaxed);
            }
        }
    }
}

/// A replica id unique in the fleet: host name, process id, start time and a counter (tests run
/// several replicas in one process).
fn replica_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{host}:{}:{started}:{n}", std::process::id())
}
