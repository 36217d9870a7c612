//! `redis:` the shared store of a fleet of replicas, as written.

use serde::Deserialize;

use super::{At, RawSecret};

/// `redis:` one of `url`, `sentinel` or `cluster`, plus the connection settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedis {
    #[serde(default)]
    pub(crate) url: Option<At<String>>,
    #[serde(default)]
    pub(crate) sentinel: Option<RawSentinel>,
    #[serde(default)]
    pub(crate) cluster: Option<RawCluster>,
    #[serde(default)]
    pub(crate) username: Option<At<String>>,
    #[serde(default)]
    pub(crate) password: Option<RawSecret>,
    #[serde(default)]
    pub(crate) tls: Option<RawRedisTls>,
    #[serde(default)]
    pub(crate) timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) key_prefix: Option<At<String>>,
}

/// `redis.sentinel:` the master's name and the sentinels that know it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSentinel {
    pub(crate) master: At<String>,
    pub(crate) nodes: Vec<At<String>>,
    #[serde(default)]
    pub(crate) db: Option<At<String>>,
}

/// `redis.cluster:` seed nodes of a Redis Cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub(crate) nodes: Vec<At<String>>,
}

/// `redis.tls:` TLS to Redis (implied by `rediss://` URLs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedisTls {
    #[serde(default)]
    pub(crate) ca: Option<At<String>>,
}
