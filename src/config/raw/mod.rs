//! The YAML shape of `gateway.yaml`, exactly as an operator writes it: every `Raw*` type, one file
//! per section.
//!
//! Every struct denies unknown keys so a typo is an error with a line number, never a silently ignored
//! setting. Values that later checks must point at are wrapped in [`Spanned`] to keep their location.
//! Nothing here is interpreted and nothing here knows the checked types: the validation reads these
//! into the typed config. This folder is a leaf: it imports no other config module.

mod cache;
mod compression;
mod edge;
mod events;
mod listeners;
mod openapi;
mod ops;
mod redis;
mod route;
mod secret;
mod upstream;

pub(crate) use cache::{RawCache, RawRouteCache};
pub(crate) use compression::RawCompression;
pub(crate) use edge::{
    RawAuth, RawLimit, RawProvider, RawRateLimits, RawRouteAuth, RawTokenSource,
};
pub(crate) use events::{RawEvents, RawMethodEvents, RawRouteEvents};
pub(crate) use listeners::{
    RawAdmin, RawCertificate, RawClientAuth, RawListener, RawListenerTls, RawListeners,
};
pub(crate) use openapi::RawOpenApi;
pub(crate) use ops::{RawAccessLog, RawLimits, RawReload, RawShutdown, RawTracing};
pub(crate) use redis::RawRedis;
pub(crate) use route::{RawCors, RawHeaders, RawHttpRule, RawRoute, RawTranscoding};
pub(crate) use secret::RawSecret;
pub(crate) use upstream::{
    RawCircuitBreaker, RawHealthCheck, RawRetry, RawUpstream, RawUpstreamTls,
};

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A YAML value together with where it was written.
pub(crate) type At<T> = Spanned<T>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) listeners: RawListeners,
    #[serde(default)]
    pub(crate) admin: Option<RawAdmin>,
    /// Optional only when upstreams describe their services by reflection (checked later).
    #[serde(default)]
    pub(crate) descriptors: RawDescriptors,
    pub(crate) upstreams: BTreeMap<String, RawUpstream>,
    pub(crate) routes: Vec<RawRoute>,
    #[serde(default)]
    pub(crate) redis: Option<RawRedis>,
    #[serde(default)]
    pub(crate) transcoding: RawTranscoding,
    #[serde(default)]
    pub(crate) headers: RawHeaders,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    #[serde(default)]
    pub(crate) workers: Option<At<String>>,
    #[serde(default)]
    pub(crate) reload: RawReload,
    #[serde(default)]
    pub(crate) access_log: RawAccessLog,
    #[serde(default)]
    pub(crate) log_level: Option<At<String>>,
    #[serde(default)]
    pub(crate) log_format: Option<At<String>>,
    #[serde(default)]
    pub(crate) shutdown: RawShutdown,
    #[serde(default)]
    pub(crate) tracing: RawTracing,
    pub(crate) auth: Option<RawAuth>,
    #[serde(default)]
    pub(crate) rate_limits: Option<RawRateLimits>,
    #[serde(default)]
    pub(crate) cache: Option<RawCache>,
    #[serde(default)]
    pub(crate) events: Option<RawEvents>,
    #[serde(default)]
    pub(crate) cors: Option<RawCors>,
    #[serde(default)]
    pub(crate) compression: Option<RawCompression>,
    #[serde(default)]
    pub(crate) openapi: Option<RawOpenApi>,
}

/// `descriptors:` where protobuf schemas come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDescriptors {
    #[serde(default)]
    pub(crate) proto_dirs: Vec<At<String>>,
    #[serde(default)]
    pub(crate) proto_files: Vec<At<String>>,
    #[serde(default)]
    pub(crate) include_paths: Vec<At<String>>,
    #[serde(default)]
    pub(crate) descriptor_sets: Vec<At<String>>,
    /// Every upstream's services are described by its gRPC server reflection.
    #[serde(default)]
    pub(crate) reflection: Option<At<bool>>,
    /// How often reflected descriptors are fetched again.
    #[serde(default)]
    pub(crate) refresh_interval: Option<At<String>>,
}
