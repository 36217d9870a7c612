//! Gateway configuration: `gateway.yaml` parsed once into validated, typed values.
//!
//! Layout: [`raw`] is the serde shape of the file (unknown keys rejected); [`validate`] turns it into
//! [`Config`], collecting *every* problem with its file, line and key path; the descriptor-dependent
//! checks (methods exist, templates parse, variables name fields) happen when the runtime snapshot is
//! built from a `Config` (`crate::runtime`), and report through the same [`ConfigError`] type.

mod cors;
mod edge;
mod ops;
mod raw;
mod resilience;
mod streaming;
mod tls;
mod units;
mod validate;

pub use cors::CorsConfig;
pub use edge::{
    AuthConfig, AuthMode, KeySource, LimitConfig, LimitKey, ProviderConfig, RateLimitConfig,
    RouteAuth, Secret,
};
pub use resilience::code_name;
pub use resilience::{
    BreakerConfig, HealthCheckConfig, Ratio, RetryConfig, RouteRetryConfig, parse_code,
};
pub use streaming::StreamFormat;
pub use tls::{CertificateConfig, ClientAuthConfig, ClientAuthMode, TlsListenerConfig};
pub use units::{parse_duration, parse_size};

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::transcode::router::UnescapeMode;

/// Where in a config file a value was written (1-based; 0 when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place {
    /// Line number, 1-based.
    pub line: u64,
    /// Column number, 1-based.
    pub column: u64,
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (the config file, or a descriptor file it names).
    pub file: PathBuf,
    /// Where in that file, when known.
    pub place: Place,
    /// The key path, e.g. `routes[1].upstream`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.place.line > 0 {
            write!(f, ":{}:{}", self.place.line, self.place.column)?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.reason)
        } else {
            write!(f, ": {}: {}", self.key, self.reason)
        }
    }
}

/// Every problem found in one config, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// The validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; relative paths inside it are resolved against its folder.
    pub source: PathBuf,
    /// Plain HTTP/1.1 + h2c listener address, if any.
    pub http_listener: Option<SocketAddr>,
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
    /// Worker threads serving the public listeners' connections (`crate::workers`).
    pub workers: usize,
    /// How multi-segment path variables are percent-decoded (one router, so one mode).
    pub path_unescape: UnescapeMode,
    /// The HTTPS listener, if any.
    pub tls_listener: Option<TlsListenerConfig>,
    /// JWT providers and token source.
    pub auth: AuthConfig,
    /// Named rate limits.
    pub rate_limits: RateLimitConfig,
    /// Operations: reload, access log, log level, shutdown (`crate::reload`, `crate::access_log`).
    pub ops: OpsConfig,
}

/// Operational settings: how the process is watched, logged and stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// Poll the config file and descriptor sources for changes and reload them.
    pub watch: bool,
    /// How often they are polled (a change is applied once it has been stable for one period).
    pub poll_interval: Duration,
    /// Access log: `None` when off.
    pub access_log: Option<AccessLogTarget>,
    /// `tracing` filter when `RUST_LOG` is not set (`info`, `debug`, `tai_gateway=debug`, ...).
    pub log_level: String,
    /// How long in-flight requests get to finish after SIGTERM / SIGINT.
    pub drain_timeout: Duration,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            watch: true,
            poll_interval: Duration::from_secs(1),
            access_log: Some(AccessLogTarget::Stdout),
            log_level: "info".to_owned(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output.
    Stdout,
    /// Appended to this file (created if missing).
    File(PathBuf),
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
}

/// A value with the place in the config file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Its place in the config file.
    pub place: Place,
    /// Its key path in the config file.
    pub key: String,
}

/// One gRPC backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Name routes refer to.
    pub name: String,
    /// `host:port` (h2c).
    pub authority: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Largest gRPC response body accepted; bigger answers are a 502.
    pub max_response_bytes: usize,
    /// Every `host:port` of the upstream (`authority` is the first).
    pub endpoints: Vec<String>,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Circuit breaker of each endpoint.
    pub circuit_breaker: BreakerConfig,
    /// Active health checks, when configured.
    pub health_check: Option<HealthCheckConfig>,
    /// How often endpoints given as host names are resolved again (each address is an endpoint).
    pub resolve_interval: Duration,
}

/// Which methods of the descriptors a route exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodSelector {
    /// Every method of this service that has an HTTP rule.
    Service(String),
    /// These methods (`pkg.Service/Method` or, with a service, bare method names).
    Methods(Vec<Located<String>>),
}

/// An HttpRule written in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigHttpRule {
    /// The method it applies to (`pkg.Service/Method`).
    pub method: Located<String>,
    /// HTTP method (`GET`, ..., or a custom kind).
    pub http_method: String,
    /// Path template text.
    pub template: Located<String>,
    /// `body` of the rule.
    pub body: String,
    /// `response_body` of the rule.
    pub response_body: String,
}

/// One `routes[]` entry.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Name used in logs and metrics.
    pub name: String,
    /// Key path of this entry (`routes[0]`).
    pub key: String,
    /// Place of this entry.
    pub place: Place,
    /// What it exposes.
    pub selector: MethodSelector,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
    /// Deadline of each call.
    pub timeout: Duration,
    /// Methods without a rule get `POST /pkg.Service/Method` with body `*`.
    pub auto_mapping: bool,
    /// Rules from the config, replacing the proto's rules of their method.
    pub http_rules: Vec<ConfigHttpRule>,
    /// JSON mapping options.
    pub transcoding: TranscodingOptions,
    /// Header/metadata allowlists.
    pub headers: HeaderRules,
    /// Which calls may be retried, per-try timeout.
    pub retry: RouteRetryConfig,
    /// Token requirements.
    pub auth: RouteAuth,
    /// Names of the rate limits applied, in order.
    pub rate_limits: Vec<String>,
    /// Browser origins allowed over gRPC-Web (`None`: no CORS headers, preflights refused).
    pub cors: Option<CorsConfig>,
}

/// JSON mapping options of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscodingOptions {
    /// Unknown JSON fields are skipped instead of rejected.
    pub ignore_unknown_fields: bool,
    /// Unknown query parameters are skipped instead of rejected.
    pub ignore_unknown_query_parameters: bool,
    /// Query parameters that never bind and are never unknown.
    pub ignored_query_parameters: Vec<String>,
    /// `+` in query values means a space.
    pub query_unescape_plus: bool,
    /// Fields holding default values are printed.
    pub emit_defaults: bool,
    /// Proto field names instead of lowerCamel JSON names.
    pub proto_field_names: bool,
    /// Enums as numbers instead of names.
    pub enums_as_ints: bool,
    /// Deepest JSON nesting accepted.
    pub max_json_depth: u32,
    /// Largest request body accepted (413 above).
    pub max_request_bytes: usize,
    /// How server streams are written when the client's `Accept` does not choose.
    pub stream_format: StreamFormat,
}

impl Default for TranscodingOptions {
    fn default() -> Self {
        TranscodingOptions {
            ignore_unknown_fields: false,
            ignore_unknown_query_parameters: false,
            ignored_query_parameters: vec!["access_token".to_owned()],
            query_unescape_plus: false,
            emit_defaults: true,
            proto_field_names: false,
            enums_as_ints: false,
            max_json_depth: 64,
            max_request_bytes: 4 * 1024 * 1024,
            stream_format: StreamFormat::JsonArray,
        }
    }
}

/// Which headers cross between HTTP and gRPC metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Request headers forwarded to the backend as metadata (lower-case; a trailing `*` is a prefix).
    pub request_to_metadata: Vec<String>,
    /// Backend metadata (headers and trailers) returned to the client as headers.
    pub metadata_to_response: Vec<String>,
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
    /// A connection with no request being handled and no bytes moving for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

impl Config {
    /// Reads and validates a config file (descriptors are checked later, by the runtime build).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let (config, problems) = Config::load_with_problems(path)?;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// Reads a config and returns what is valid in it together with every problem found, so the
    /// descriptor checks can still run and all problems be reported at once. `Err` only when the
    /// file cannot be read or is not YAML of the config's shape.
    pub fn load_with_problems(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                place: Place::default(),
                key: String::new(),
                reason: format!("cannot read file: {e}"),
            }])
        })?;
        validate::parse_with_problems(path, &text)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        validate::parse(path, text)
    }

    /// The folder relative paths in this config are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.source.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }
}
