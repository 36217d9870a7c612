//! What replicas share through Redis: the client itself ([`redis`]: one multiplexed connection,
//! short timeouts, a breaker) and the fleet's view of itself ([`replicas`]: how many replicas are
//! alive, for limits that fall back to a share of their budget).
//!
//! Without a `redis:` section none of this runs and every replica works alone.

mod breaker;
mod connect;
pub mod redis;
pub mod replicas;

pub use breaker::BreakerState;
