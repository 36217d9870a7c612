//! Checks of `routes[].cors`: which browser origins may call a route's methods over gRPC-Web, with
//! the headers gRPC-Web clients need allowed and exposed unless the route lists its own.

use std::time::Duration;

use super::checker::Checker;
use crate::config::cors::CorsConfig;
use crate::config::raw::RawCors;

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
