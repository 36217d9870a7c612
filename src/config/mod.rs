//! Gateway configuration: `gateway.yaml` parsed once into validated, typed values.
//!
//! Layout, in the order a file flows through it (dependencies point one way, down this list):
//! - `validate/`: reads the YAML into the raw shape and turns it into a [`Config`], collecting
//!   *every* problem with its file, line and key path ([`Config::load`], [`Config::parse`]).
//! - `raw/`: the serde shape of the file, one file per section, unknown keys rejected. A leaf.
//! - The typed values, one module per section: `gateway` ([`Config`] itself, listeners, workers),
//!   `upstream` and `resilience`, `route`, `cache`, `events`, `streaming`, `cors`, `edge` (auth and rate limits),
//!   `tls`, `ops`, `openapi`. They only describe; they never parse or check.
//! - `error` ([`Place`], [`ConfigError`]) and `units` (durations, sizes): leaves used by all.
//! - `redact`: [`redact_url`], the one way a configured URL is shown (admin, logs, errors).
//!
//! The descriptor-dependent checks (methods exist, templates parse, variables name fields) happen
//! when the runtime snapshot is built from a `Config`, and report through the same [`ConfigError`].

mod cache;
mod compression;
mod cors;
mod edge;
mod error;
mod events;
mod gateway;
mod openapi;
mod ops;
mod raw;
mod redact;
mod redis;
mod resilience;
mod route;
mod streaming;
mod tls;
mod tracing;
mod units;
mod upstream;
mod validate;

pub use cache::{CacheConfig, DEFAULT_CACHE_TTL, RouteCacheConfig};
pub use compression::CompressionConfig;
pub use cors::{CorsConfig, Origin, OriginPattern};
pub use edge::{
    AuthConfig, AuthMode, KeySource, LimitConfig, LimitKey, LimitScope, OnRedisError,
    ProviderConfig, RateLimitConfig, RouteAuth, Secret,
};
pub use error::{ConfigError, ConfigErrors, Located, Place};
pub use events::{
    DEFAULT_EVENT_RETENTION, Durability, EventShape, EventsConfig, MIN_EVENT_BYTES,
    RouteEventsConfig,
};
pub use gateway::{Config, DescriptorSources, ListenerLimits, WorkerCount};
pub use openapi::{DEFAULT_DOCS_PATH, DEFAULT_OPENAPI_PATH, OpenApiConfig, yaml_path_of};
pub use ops::{AccessLogTarget, LogFormat, OpsConfig};
pub use redact::redact_url;
pub use redis::{RedisConfig, RedisTarget, RedisTls};
pub use resilience::code_name;
pub use resilience::{
    BreakerConfig, HealthCheckConfig, MAX_DISTINCT_CLIENTS, Ratio, RetryConfig, RouteRetryConfig,
    parse_code,
};
pub use route::{ConfigHttpRule, HeaderRules, MethodSelector, RouteConfig, TranscodingOptions};
pub use streaming::StreamFormat;
pub use tls::{
    CertificateConfig, ClientAuthConfig, ClientAuthMode, ListenerConfig, TlsListenerConfig,
};
pub use tracing::{OtlpProtocol, SamplingRatio, TracingConfig};
pub use units::{parse_duration, parse_size};
pub use upstream::{UpstreamConfig, UpstreamTlsConfig};
