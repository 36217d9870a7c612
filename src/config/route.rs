//! The validated form of one `routes[]` entry: what it exposes, through which upstream, and how JSON
//! and headers are mapped ([`RouteConfig`], [`TranscodingOptions`], [`HeaderRules`]).

use std::time::Duration;

use super::cache::RouteCacheConfig;
use super::cors::CorsConfig;
use super::edge::RouteAuth;
use super::error::{Located, Place};
use super::events::RouteEventsConfig;
use super::resilience::RouteRetryConfig;
use super::streaming::StreamFormat;

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
    /// Index into the config's `upstreams` list.
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
    /// Its GET answers are cached (`None`: never); its writes invalidate in any case.
    pub cache: Option<RouteCacheConfig>,
    /// Its successful unary writes emit an event (`None`: never).
    pub events: Option<RouteEventsConfig>,
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

impl RouteConfig {
    /// The services the route names (`service:`, or the service part of each `methods:` entry).
    pub fn services(&self) -> std::collections::BTreeSet<String> {
        match &self.selector {
            MethodSelector::Service(name) => std::iter::once(name.clone()).collect(),
            MethodSelector::Methods(list) => list
                .iter()
                .filter_map(|m| m.value.rsplit_once('/').map(|(s, _)| s.to_owned()))
                .collect(),
        }
    }
}
