//! `routes[].cors`: which browser origins may call a route's methods over gRPC-Web.

use std::time::Duration;

use super::raw::RawCors;
use super::validate::Checker;

/// Cross-origin access to a route's methods from browsers (gRPC-Web).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Origins allowed (`https://app.example.com`); `*` allows any.
    pub allow_origins: Vec<String>,
    /// Request headers a browser may send (answered to preflights).
    pub allow_headers: Vec<String>,
    /// Response headers a browser script may read.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer.
    pub max_age: Duration,
}

/// Request headers gRPC-Web clients send, allowed unless the route lists its own.
const DEFAULT_ALLOW_HEADERS: &[&str] = &[
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
];

/// Response headers gRPC-Web clients read, exposed unless the route lists its own.
const DEFAULT_EXPOSE_HEADERS: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin"];

impl CorsConfig {
    /// Whether `origin` may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// Validates `routes[i].cors`.
pub(super) fn cors(c: &mut Checker<'_>, raw: &RawCors, key: &str) -> Option<CorsConfig> {
    let owned = |list: &Option<Vec<String>>, default: &[&str]| match list {
        Some(list) => list.iter().map(|h| h.to_ascii_lowercase()).collect(),
        None => default.iter().map(|h| (*h).to_owned()).collect(),
    };
    let max_age = match &raw.max_age {
        Some(value) => c.duration(value, &format!("{key}.max_age"))?,
        None => Duration::from_secs(600),
    };
    Some(CorsConfig {
        allow_origins: raw.allow_origins.clone(),
        allow_headers: owned(&raw.allow_headers, DEFAULT_ALLOW_HEADERS),
        expose_headers: owned(&raw.expose_headers, DEFAULT_EXPOSE_HEADERS),
        max_age,
    })
}
