//! What replicas share, read at scrape time: the Redis client's calls and breaker, and the fleet's
//! size as this replica sees it.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::text::{header, label_text};
use crate::state::redis::Redis;
use crate::state::{BreakerState, Shared};

/// Appends the Redis and fleet families (nothing but the replica gauge without Redis).
pub fn render_shared(out: &mut String, shared: &Shared) {
    header(
        out,
        "tai_gateway_replicas",
        "Live gateway replicas sharing this Redis, as this replica last saw them (1 alone).",
        "gauge",
    );
    let _ = writeln!(out, "tai_gateway_replicas {}", shared.replicas.live());
    if let Some(redis) = &shared.redis {
        render_redis(out, redis);
    }
}

/// The Redis client's calls, call time and breaker state.
fn render_redis(out: &mut String, redis: &Redis) {
    let stats = redis.stats();
    let name = "tai_gateway_redis_calls_total";
    header(
        out,
        name,
        "Redis calls by result: ok, failed (error or timeout), skipped (breaker open or not connected).",
        "counter",
    );
    for (result, counter) in [
        ("ok", &stats.ok),
        ("failed", &stats.failed),
        ("skipped", &stats.skipped),
    ] {
        let labels = label_text(&[("result", result.to_owned())], None);
        let _ = writeln!(out, "{name}{labels} {}", counter.load(Ordering::Relaxed));
    }
    let name = "tai_gateway_redis_call_duration_seconds_total";
    header(
        out,
        name,
        "Time spent in Redis calls made (divide by ok + failed calls for the mean).",
        "counter",
    );
    let seconds = stats.micros.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name} {seconds}");
    let name = "tai_gateway_redis_breaker_state";
    header(
        out,
        name,
        "The Redis breaker's state (1 for the current one): closed, open (Redis not called; local fallbacks in use) or half_open (probing).",
        "gauge",
    );
    let now = redis.state();
    for state in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        let labels = label_text(&[("state", state.name().to_owned())], None);
        let _ = writeln!(out, "{name}{labels} {}", u8::from(state == now));
    }
}
