//! `redis:` the store a fleet of replicas shares (global rate limits, the shared response cache,
//! the event stream). Absent: every replica works alone, in its own memory.

use std::path::PathBuf;
use std::time::Duration;

use super::edge::Secret;
use super::error::Place;

/// Validated `redis:` section.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Which Redis deployment, and where.
    pub target: RedisTarget,
    /// `AUTH` user name (Redis 6 ACLs), if any.
    pub username: Option<String>,
    /// `AUTH` password, if any (never shown).
    pub password: Option<Secret<String>>,
    /// TLS to Redis: `rediss://` URLs, or a `tls:` section (with its own CA).
    pub tls: Option<RedisTls>,
    /// Bound of every Redis call; past it the call counts as failed and the request goes on
    /// without Redis.
    pub timeout: Duration,
    /// Prefix of every key the gateway writes, so several gateways can share one Redis.
    pub key_prefix: String,
    /// Where the section was written.
    pub place: Place,
}

/// The Redis deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (or a proxy): `redis://host:port/db`.
    Standalone(String),
    /// A master found through Sentinels.
    Sentinel {
        /// The master's name in the sentinels' configuration.
        master: String,
        /// Sentinel URLs (`redis://host:26379`).
        nodes: Vec<String>,
        /// Database number on the master.
        db: i64,
    },
    /// A Redis Cluster, from any of its nodes.
    Cluster(Vec<String>),
}

/// TLS settings for Redis connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// PEM CA bundle that signs the servers' certificates (system roots when absent).
    pub ca: Option<PathBuf>,
}

/// Default bound of one Redis call: a cache lookup or limit check must never slow a request.
pub(super) const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(25);

/// Default key prefix.
pub(super) const DEFAULT_KEY_PREFIX: &str = "tai:";
