//! Global limits: one budget across every replica, kept in Redis. The same GCRA as the local
//! limits ([`super::gcra`]) runs inside Redis as one Lua script call, with Redis' own clock (no
//! replica clock skew), and answers what the `RateLimit-*` headers and `Retry-After` need.
//!
//! Around that call, so a global limit never costs more than it must and never turns Redis
//! trouble into a client error or a slow request:
//! - the limit's local check (the full budget in this process) runs first, for free;
//! - a key Redis refused is remembered here until it may pass again, so a flood from one client
//!   costs Redis nothing;
//! - when Redis cannot be asked (down, slow past `redis.timeout`, breaker open), the limit's
//!   `on_redis_error` decides: `local` counts here with the budget divided by the live replicas
//!   (the last count Redis gave), `open` admits, `closed` refuses with 503.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::Script;

use super::gcra::Gcra;
use super::store::KeyStore;
use super::{Budget, Limiter, Refusal, ceil_secs};
use crate::config::OnRedisError;
use crate::state::Shared;

/// The GCRA in Redis: `KEYS[1]` the key's TAT (microseconds on Redis' clock), `ARGV[1]` the
/// interval and `ARGV[2]` the tolerance in microseconds. Returns `{passed, remaining, wait}`:
/// `wait` is how long until the budget is full again (passed) or until one may pass (refused).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local next = tat + interval
local ahead = next - now
if ahead > tolerance then
  return {0, 0, ahead - tolerance}
end
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor((tolerance - ahead) / interval), ahead}
";

/// Keys remembered as refused, at most; beyond, refusals are simply asked of Redis again.
const REMEMBERED_KEYS: usize = 100_000;

/// What a global limit adds to its local one.
#[derive(Debug)]
pub(super) struct Global {
    on_error: OnRedisError,
    script: Script,
    /// GCRA parameters in microseconds, as the script takes them.
    interval_us: u64,
    tolerance_us: u64,
    /// Keys Redis refused: until when (the limiter's clock, nanoseconds).
    refused: Mutex<HashMap<u64, u64>>,
    /// The `local` fallback's own buckets (a share of the budget, not the full local one).
    fallback: KeyStore,
    /// Decisions, by kind, for the metrics.
    pub(super) decisions: Decisions,
}

/// Counters of global decisions.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Redis admitted the request.
    pub allowed: AtomicU64,
    /// Redis refused it.
    pub refused: AtomicU64,
    /// Refused here, the key being remembered as over the limit (no Redis call).
    pub remembered: AtomicU64,
    /// Decided here without Redis (`on_redis_error`), admitted or not.
    pub fallback: AtomicU64,
}

impl Global {
    /// The global part of a limit costing `interval` per request with `burst` at once.
    pub(super) fn new(
        interval: Duration,
        burst: u32,
        on_error: OnRedisError,
        max_keys: usize,
    ) -> Global {
        let interval_us = u64::try_from(interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        Global {
            on_error,
            script: Script::new(GCRA),
            interval_us,
            tolerance_us: interval_us.saturating_mul(u64::from(burst.max(1))),
            refused: Mutex::new(HashMap::new()),
            fallback: KeyStore::new(max_keys),
            decisions: Decisions::default(),
        }
    }
}

/// A global limit still to ask for one request: after its local check passed.
#[derive(Debug)]
pub struct Pending {
    limiter: Arc<Limiter>,
    /// The key as this process hashes it (the refused set, the fallback buckets).
    local_key: u64,
    /// The key as every replica names it in Redis (a digest of what is counted).
    shared_key: String,
}

impl Pending {
    /// `limiter`'s check of the value `counted` (hashed locally as `local_key`).
    pub(super) fn new(limiter: &Arc<Limiter>, local_key: u64, counted: &[u8]) -> Pending {
        let digest = sha1_smol::Sha1::from(counted).digest().to_string();
        Pending {
            shared_key: format!("rl:{}:{digest}", limiter.name()),
            limiter: limiter.clone(),
            local_key,
        }
    }
}

/// Asks the fleet's budget for every pending global limit of one request, in order.
pub async fn check(
    pending: Vec<Pending>,
    shared: &Shared,
    budget: &mut Budget,
) -> Result<(), Refusal> {
    for check in pending {
        one(&check, shared, budget).await?;
    }
    Ok(())
}

async fn one(check: &Pending, shared: &Shared, budget: &mut Budget) -> Result<(), Refusal> {
    let limiter = &*check.limiter;
    let Some(global) = &limiter.global else {
        return Ok(());
    };
    let now = limiter.now();
    if let Some(wait) = remembered(global, check.local_key, now) {
        global.decisions.remembered.fetch_add(1, Ordering::Relaxed);
        return Err(limiter.exceeded(wait).into());
    }
    let asked = match &shared.redis {
        Some(redis) => {
            let mut call = global.script.key(redis.key(&check.shared_key));
            call.arg(global.interval_us).arg(global.tolerance_us);
            redis.run::<(u8, u32, u64)>(&call).await.ok()
        }
        None => None,
    };
    let Some((passed, remaining, wait_us)) = asked else {
        global.decisions.fallback.fetch_add(1, Ordering::Relaxed);
        return fallback(
            limiter,
            global,
            check.local_key,
            shared.replicas.live(),
            budget,
        );
    };
    let wait = Duration::from_micros(wait_us);
    if passed == 1 {
        global.decisions.allowed.fetch_add(1, Ordering::Relaxed);
        budget.note(limiter.config.burst, remaining, ceil_secs(wait));
        return Ok(());
    }
    global.decisions.refused.fetch_add(1, Ordering::Relaxed);
    remember(
        global,
        check.local_key,
        now,
        now.saturating_add(wait_us.saturating_mul(1000)),
    );
    Err(limiter.exceeded(wait.as_nanos() as u64).into())
}

/// The wait left for a key Redis refused, while it is remembered.
fn remembered(global: &Global, key: u64, now: u64) -> Option<u64> {
    let refused = global
        .refused
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let until = *refused.get(&key)?;
    (until > now).then(|| until - now)
}

/// Remembers `key` as refused until `until` (bounded: expired keys make room first).
fn remember(global: &Global, key: u64, now: u64, until: u64) {
    let mut refused = global
        .refused
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if refused.len() >= REMEMBERED_KEYS {
        refused.retain(|_, at| *at > now);
        if refused.len() >= REMEMBERED_KEYS {
            return;
        }
    }
    refused.insert(key, until);
}

/// Redis could not be asked: the limit's `on_redis_error` decides.
fn fallback(
    limiter: &Limiter,
    global: &Global,
    key: u64,
    replicas: usize,
    budget: &mut Budget,
) -> Result<(), Refusal> {
    match global.on_error {
        OnRedisError::Open => Ok(()),
        OnRedisError::Closed => Err(Refusal::Unavailable(Unavailable {
            name: limiter.name().to_owned(),
        })),
        OnRedisError::Local => {
            // This replica's share: the rate and the burst divided by the live replicas.
            let share = u32::try_from(replicas).unwrap_or(u32::MAX).max(1);
            let burst = (limiter.config.burst / share).max(1);
            let gcra = Gcra::new(limiter.per_request * share, burst);
            Ok(limiter.decide(&gcra, &global.fallback, key, burst, budget)?)
        }
    }
}

/// A global limit that could not be checked while its `on_redis_error` is `closed` (503).
#[derive(Debug, thiserror::Error)]
#[error("rate limit `{name}` cannot be checked: its shared store (Redis) is unavailable")]
pub struct Unavailable {
    name: String,
}
