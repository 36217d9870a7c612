//! The validated [`Config`] as a whole: its listeners, worker threads, protocol bounds and where
//! descriptors come from; each section's own types live in the module named after it.
//!
//! Nothing here parses or checks: `validate` builds these values from the raw YAML.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cache::CacheConfig;
use super::edge::{AuthConfig, RateLimitConfig};
use super::error::Located;
use super::events::EventsConfig;
use super::ops::OpsConfig;
use super::redis::RedisConfig;
use super::route::RouteConfig;
use super::tls::ListenerConfig;
use super::upstream::UpstreamConfig;
use crate::transcode::router::UnescapeMode;

/// The validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; relative paths inside it are resolved against its folder.
    pub source: PathBuf,
    /// The public listeners, in file order (cleartext and HTTPS).
    pub listeners: Vec<ListenerConfig>,
    /// Admin server address, if any.
    pub admin: Option<SocketAddr>,
    /// Where descriptors come from.
    pub descriptors: DescriptorSources,
    /// Backends by name, in file order.
    pub upstreams: Vec<UpstreamConfig>,
    /// Route entries, in file order.
    pub routes: Vec<RouteConfig>,
    /// Protocol bounds of the public listener.
    pub limits: ListenerLimits,
    /// Worker threads serving the public listeners' connections, as written (`auto` or a count).
    pub workers: WorkerCount,
    /// How multi-segment path variables are percent-decoded (one router, so one mode).
    pub path_unescape: UnescapeMode,
    /// JWT providers and token source.
    pub auth: AuthConfig,
    /// Named rate limits.
    pub rate_limits: RateLimitConfig,
    /// Operations: reload, access log, log level, shutdown.
    pub ops: OpsConfig,
    /// The store replicas share; `None`: this process works alone.
    pub redis: Option<RedisConfig>,
    /// Bounds of the response cache's in-process tier.
    pub cache: CacheConfig,
    /// The event outbox and where events go (restart to change).
    pub events: EventsConfig,
    /// Every route's CORS policy unless it has its own (`None`: no CORS).
    pub cors: Option<super::CorsConfig>,
    /// gzip of JSON answers for clients that accept it.
    pub compression: super::CompressionConfig,
    /// The OpenAPI document on the public listener.
    pub openapi: super::OpenApiConfig,
}

/// `workers:` as written: how many threads serve the public listeners' connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkerCount {
    /// One per CPU (`auto`, the default); the count is resolved where the threads are started.
    #[default]
    Auto,
    /// Exactly this many (1 to 1024, checked when the config is read).
    Threads(usize),
}

impl WorkerCount {
    /// The number of threads to run on a machine with `cpus` CPUs.
    pub fn threads(self, cpus: usize) -> usize {
        match self {
            WorkerCount::Auto => cpus,
            WorkerCount::Threads(n) => n,
        }
    }
}

/// Descriptor sources, already resolved against the config file's folder.
#[derive(Debug, Clone, Default)]
pub struct DescriptorSources {
    /// Folders whose `.proto` files are all compiled; each is also an import root.
    pub proto_dirs: Vec<Located<PathBuf>>,
    /// Single `.proto` files (relative to an import root, or a path under one).
    pub proto_files: Vec<Located<PathBuf>>,
    /// Extra import roots.
    pub include_paths: Vec<Located<PathBuf>>,
    /// Binary `FileDescriptorSet` files.
    pub descriptor_sets: Vec<Located<PathBuf>>,
    /// How often descriptors fetched by server reflection (`reflection: true`) are fetched again.
    pub refresh_interval: std::time::Duration,
}

/// Protocol bounds of the public listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Largest request head (HTTP/1.1 headers, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Time a client has to send its request head.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request body once the route reads it (408 after).
    pub body_read_timeout: Duration,
    /// A connection with no request being handled and no answer being written for this long is
    /// closed (bytes alone, such as HTTP/2 PINGs, do not keep it open).
    pub idle_timeout: Duration,
    /// A connection whose client has not taken any of an answer's bytes for this long is closed.
    pub write_timeout: Duration,
    /// Open public connections at most (further ones are closed at once, idle ones first make
    /// room); also bounded by the process' file descriptor limit less a reserve.
    pub max_connections: usize,
    /// Open public connections per client address at most; 0: no per-address bound.
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams a client may open on one connection.
    pub max_concurrent_streams: u32,
    /// Answer bytes the gateway holds for clients that have not read them, over all connections.
    pub max_buffered_response_bytes: usize,
    /// The same, per connection.
    pub max_buffered_response_bytes_per_connection: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 0,
            max_concurrent_streams: 100,
            max_buffered_response_bytes: 128 << 20,
            max_buffered_response_bytes_per_connection: 16 << 20,
        }
    }
}

impl Config {
    /// The folder relative paths in this config are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        folder_of(&self.source)
    }
}

/// The folder of a config `file`: relative paths written in it are resolved against it.
pub(super) fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}
