//! State the gateway keeps beyond one request, and what replicas share through Redis.
//!
//! # Layout
//! - [`cache`]: the response cache for GET routes — an in-process tier (bounded, per-entry TTL,
//!   request coalescing, tag invalidation) and the [`cache::SharedTier`] seam a Redis tier plugs
//!   into.
//! - [`redis`]: the Redis client: one multiplexed connection, short timeouts, a breaker.
//! - [`Dedicated`]: a connection of its own for blocking stream reads (event consumers), outside
//!   the shared client's breaker and short timeout.
//! - [`replicas`]: the fleet's view of itself (how many replicas are alive, for limits that fall
//!   back to a share of their budget).
//!
//! Without a `redis:` section nothing is shared and every replica works alone.

mod breaker;
pub mod cache;
mod connect;
pub mod redis;
pub mod replicas;

pub use breaker::BreakerState;
pub use connect::Dedicated;

use std::sync::Arc;

use crate::config::RedisConfig;
use cache::SharedTier;
use cache::redis_tier::RedisTier;
use redis::Redis;
use replicas::Replicas;

/// What this replica shares with the others: the Redis client when one is configured, and the
/// fleet's size as last seen (1, alone, without Redis).
#[derive(Debug, Clone)]
pub struct Shared {
    /// The Redis client; `None` without a `redis:` section.
    pub redis: Option<Arc<Redis>>,
    /// The fleet as this replica sees it.
    pub replicas: Arc<Replicas>,
    /// The response cache's shared tier (in Redis); `None` alone.
    pub cache: Option<Arc<dyn SharedTier>>,
}

impl Shared {
    /// Alone: nothing shared.
    pub fn alone() -> Shared {
        Shared {
            redis: None,
            replicas: Replicas::new(),
            cache: None,
        }
    }

    /// Shared through the Redis `config` names, if any (connected in the background: an
    /// unreachable Redis does not stop the start).
    pub fn connect(config: Option<&RedisConfig>) -> Result<Shared, String> {
        let redis = config.map(Redis::new).transpose()?;
        let replicas = Replicas::new();
        let cache = redis.as_ref().map(|redis| {
            Arc::new(RedisTier::new(redis.clone(), replicas.id())) as Arc<dyn SharedTier>
        });
        Ok(Shared {
            redis,
            replicas,
            cache,
        })
    }

    /// Announces this replica to the fleet until the returned future is dropped (a no-op alone).
    pub async fn announce(self) {
        match self.redis {
            Some(redis) => self.replicas.announce(redis).await,
            None => std::future::pending().await,
        }
    }
}
