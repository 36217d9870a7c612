//! `routes[]:` the YAML shape of a route, its HttpRules, and the `transcoding:` / `headers:` options
//! that are set at the top level and overridden per route.

use serde::Deserialize;

use super::At;
use super::cache::RawRouteCache;
use super::edge::RawRouteAuth;
use super::events::RawRouteEvents;

/// `routes[]:` exposes a service (or one method) through an upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    #[serde(default)]
    pub(crate) name: Option<At<String>>,
    #[serde(default)]
    pub(crate) service: Option<At<String>>,
    #[serde(default)]
    pub(crate) methods: Option<Vec<At<String>>>,
    pub(crate) upstream: At<String>,
    #[serde(default)]
    pub(crate) timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) auto_mapping: Option<bool>,
    #[serde(default)]
    pub(crate) http_rules: Vec<RawHttpRule>,
    #[serde(default)]
    pub(crate) transcoding: RawTranscoding,
    #[serde(default)]
    pub(crate) headers: Option<RawHeaders>,
    #[serde(default)]
    pub(crate) retryable: Option<bool>,
    #[serde(default)]
    pub(crate) retry_on: Option<Vec<At<String>>>,
    #[serde(default)]
    pub(crate) per_try_timeout: Option<At<String>>,
    pub(crate) auth: Option<RawRouteAuth>,
    #[serde(default)]
    pub(crate) rate_limits: Vec<At<String>>,
    #[serde(default)]
    pub(crate) cors: Option<RawCors>,
    #[serde(default)]
    pub(crate) cache: Option<RawRouteCache>,
    #[serde(default)]
    pub(crate) events: Option<RawRouteEvents>,
}

/// `cors:` (top level, and `routes[].cors:` to override) browser origins allowed to call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCors {
    pub(crate) allow_origins: At<Vec<At<String>>>,
    #[serde(default)]
    pub(crate) allow_credentials: Option<At<bool>>,
    #[serde(default)]
    pub(crate) allow_headers: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) expose_headers: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) max_age: Option<At<String>>,
}

/// `routes[].http_rules[]:` an HttpRule given in config, overriding or adding to the proto's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpRule {
    pub(crate) method: At<String>,
    #[serde(default)]
    pub(crate) get: Option<At<String>>,
    #[serde(default)]
    pub(crate) put: Option<At<String>>,
    #[serde(default)]
    pub(crate) post: Option<At<String>>,
    #[serde(default)]
    pub(crate) delete: Option<At<String>>,
    #[serde(default)]
    pub(crate) patch: Option<At<String>>,
    #[serde(default)]
    pub(crate) custom: Option<RawCustomPattern>,
    #[serde(default)]
    pub(crate) body: Option<At<String>>,
    #[serde(default)]
    pub(crate) response_body: Option<At<String>>,
}

/// `custom:` an HTTP method outside the five standard ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCustomPattern {
    pub(crate) kind: At<String>,
    pub(crate) path: At<String>,
}

/// `transcoding:` JSON mapping options (top level = defaults, per route = overrides).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTranscoding {
    pub(crate) ignore_unknown_fields: Option<bool>,
    pub(crate) ignore_unknown_query_parameters: Option<bool>,
    pub(crate) ignored_query_parameters: Option<Vec<String>>,
    pub(crate) query_unescape_plus: Option<bool>,
    pub(crate) path_unescape: Option<At<String>>,
    pub(crate) emit_defaults: Option<bool>,
    pub(crate) proto_field_names: Option<bool>,
    pub(crate) enums_as_ints: Option<bool>,
    pub(crate) max_json_depth: Option<At<u32>>,
    pub(crate) max_request_bytes: Option<At<String>>,
    pub(crate) stream_format: Option<At<String>>,
}

/// `headers:` which HTTP headers cross into gRPC metadata and back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaders {
    #[serde(default)]
    pub(crate) request_to_metadata: Vec<At<String>>,
    #[serde(default)]
    pub(crate) metadata_to_response: Vec<At<String>>,
}
