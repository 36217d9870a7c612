//! Checks of a `cors` policy (top level, or `routes[i].cors`): every origin well-formed, no
//! credentials with `*`, and the headers browsers need for JSON and gRPC-Web allowed and exposed
//! unless the policy lists its own.

use std::time::Duration;

use super::checker::{Checker, place};
use crate::config::cors::{CorsConfig, OriginPattern};
use crate::config::raw::RawCors;

/// Request headers browsers send to JSON and gRPC-Web routes, allowed unless the policy lists
/// its own.
const DEFAULT_ALLOW_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-request-id",
    "x-request-timeout",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
];

/// Response headers scripts read (gRPC-Web status, the request id, rate-limit budget, retry
/// hints, cache status), exposed unless the policy lists its own.
const DEFAULT_EXPOSE_HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "cache-status",
    "age",
];

/// Validates a `cors` policy at `key`.
pub(super) fn cors(c: &mut Checker<'_>, raw: &RawCors, key: &str) -> Option<CorsConfig> {
    let owned = |list: &Option<Vec<String>>, default: &[&str]| match list {
        Some(list) => list.iter().map(|h| h.to_ascii_lowercase()).collect(),
        None => default.iter().map(|h| (*h).to_owned()).collect(),
    };
    let max_age = match &raw.max_age {
        Some(value) => c.duration(value, &format!("{key}.max_age"))?,
        None => Duration::from_secs(600),
    };
    let allow_origins = origins(c, raw, key)?;
    let allow_credentials = raw.allow_credentials.as_ref().is_some_and(|b| b.value);
    if allow_credentials && allow_origins.contains(&OriginPattern::Any) {
        let at = raw
            .allow_credentials
            .as_ref()
            .map_or_else(|| place(&raw.allow_origins), place);
        c.error(
            at,
            format!("{key}.allow_credentials"),
            "`allow_credentials: true` with `*` in allow_origins: browsers refuse credentials for any origin; list the origins allowed",
        );
        return None;
    }
    Some(CorsConfig {
        allow_origins,
        allow_credentials,
        allow_headers: owned(&raw.allow_headers, DEFAULT_ALLOW_HEADERS),
        expose_headers: owned(&raw.expose_headers, DEFAULT_EXPOSE_HEADERS),
        max_age,
    })
}

/// `allow_origins`: at least one, each an origin, a `https://*.example.com` pattern, or `*`.
fn origins(c: &mut Checker<'_>, raw: &RawCors, key: &str) -> Option<Vec<OriginPattern>> {
    if raw.allow_origins.value.is_empty() {
        let reason = "list at least one origin (`*` for any)";
        c.error(
            place(&raw.allow_origins),
            format!("{key}.allow_origins"),
            reason,
        );
        return None;
    }
    let mut patterns = Vec::new();
    let mut ok = true;
    for (i, origin) in raw.allow_origins.value.iter().enumerate() {
        match OriginPattern::parse(&origin.value) {
            Ok(pattern) => patterns.push(pattern),
            Err(reason) => {
                c.error(place(origin), format!("{key}.allow_origins[{i}]"), reason);
                ok = false;
            }
        }
    }
    ok.then_some(patterns)
}
