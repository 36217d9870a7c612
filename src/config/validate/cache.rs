//! Checks of the response cache: `routes[].cache` (ttl, per_subject, vary headers, extra
//! invalidation tags) and the top-level `cache:` bounds of the in-process tier.

use super::checker::{Checker, place};
use crate::config::cache::{CacheConfig, DEFAULT_CACHE_TTL, RouteCacheConfig};
use crate::config::raw::{At, RawCache, RawRouteCache};

/// Most entries `cache.max_entries` accepts.
const MAX_ENTRIES: usize = 10_000_000;

/// Request headers that carry credentials or per-browser state: varying on them would cache per
/// token or cookie, which `per_subject` does on the verified subject instead.
const NEVER_VARY: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// `routes[i].cache`, when present; `None` when a value in it is unusable.
pub(super) fn route_cache(
    c: &mut Checker<'_>,
    raw: &RawRouteCache,
    key: &str,
) -> Option<RouteCacheConfig> {
    let ttl = match &raw.ttl {
        Some(value) => c.duration(value, &format!("{key}.ttl")),
        None => Some(DEFAULT_CACHE_TTL),
    };
    let vary = vary(c, &raw.vary, key);
    let invalidates = raw
        .invalidates
        .iter()
        .enumerate()
        .filter_map(|(i, tag)| invalidation_tag(c, tag, &format!("{key}.invalidates[{i}]")))
        .collect::<Vec<_>>();
    let valid = vary.len() == raw.vary.len() && invalidates.len() == raw.invalidates.len();
    Some(RouteCacheConfig {
        ttl: ttl?,
        per_subject: raw.per_subject.unwrap_or(false),
        vary,
        invalidates,
    })
    .filter(|_| valid)
}

/// `routes[i].cache.vary`: header names, lower-cased, each once, none carrying credentials.
fn vary(c: &mut Checker<'_>, raw: &[At<String>], key: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, header) in raw.iter().enumerate() {
        let name = header.value.trim().to_ascii_lowercase();
        let at = format!("{key}.vary[{i}]");
        let reason = if http::HeaderName::try_from(name.as_str()).is_err() {
            format!("`{}` is not a header name", header.value)
        } else if NEVER_VARY.contains(&name.as_str()) {
            format!("`{name}` carries credentials: use per_subject: true to cache per subject")
        } else if names.contains(&name) {
            format!("`{name}` is listed twice")
        } else {
            names.push(name);
            continue;
        };
        c.error(place(header), at, reason);
    }
    names
}

/// One `invalidates` tag: a path without its leading slash, query or variables.
fn invalidation_tag(c: &mut Checker<'_>, tag: &At<String>, key: &str) -> Option<String> {
    let text = tag.value.trim().trim_start_matches('/');
    let bad = text.is_empty()
        || text.ends_with('/')
        || text.contains("//")
        || text
            .chars()
            .any(|ch| ch.is_whitespace() || matches!(ch, '?' | '#' | '{' | '}'));
    if bad {
        let reason = format!(
            "`{}` is not a tag: write a path like v1/policies (no query, no variables)",
            tag.value
        );
        c.error(place(tag), key, reason);
        return None;
    }
    Some(text.to_owned())
}

/// The top-level `cache:` section, defaults filled in.
pub(super) fn cache(c: &mut Checker<'_>, raw: Option<&RawCache>) -> CacheConfig {
    let mut config = CacheConfig::default();
    let Some(raw) = raw else { return config };
    if let Some(v) = &raw.max_entries
        && let Some(n) = c.count(v, "cache.max_entries", MAX_ENTRIES)
    {
        if n == 0 {
            c.error(place(v), "cache.max_entries", "must be greater than zero");
        } else {
            config.max_entries = n;
        }
    }
    if let Some(v) = &raw.max_bytes
        && let Some(n) = c.size(v, "cache.max_bytes")
    {
        config.max_bytes = n;
    }
    if let Some(v) = &raw.max_entry_bytes
        && let Some(n) = c.size(v, "cache.max_entry_bytes")
    {
        config.max_entry_bytes = n;
    }
    if config.max_entry_bytes > config.max_bytes {
        let at = raw.max_entry_bytes.as_ref().or(raw.max_bytes.as_ref());
        let reason = "must not be larger than cache.max_bytes";
        c.error(
            at.map(place).unwrap_or_default(),
            "cache.max_entry_bytes",
            reason,
        );
    }
    config
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{CacheConfig, Config};

    const BASE: &str = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";

    fn parse(route: &str, top: &str) -> Result<Config, String> {
        Config::parse(Path::new("g.yaml"), &format!("{BASE}{route}{top}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_route_cache_defaults_to_five_minutes_shared_by_all_subjects() {
        let config = parse("    cache: {}\n", "").expect("valid");
        let cache = config.routes[0].cache.as_ref().expect("cache on");
        assert_eq!(cache.ttl, Duration::from_secs(300));
        assert!(!cache.per_subject);
        assert!(cache.vary.is_empty() && cache.invalidates.is_empty());
        assert_eq!(config.cache, CacheConfig::default());
        assert!(parse("", "").expect("valid").routes[0].cache.is_none());
    }

    #[test]
    fn route_cache_values_are_read_and_normalised() {
        let route = "    cache:\n      ttl: 30s\n      per_subject: true\n      vary: [Accept-Language]\n      invalidates: [/v1/tenants, v1/audit]\n";
        let config = parse(
            route,
            "cache:\n  max_entries: 100\n  max_bytes: 1MiB\n  max_entry_bytes: 64KiB\n",
        )
        .expect("valid");
        let cache = config.routes[0].cache.as_ref().expect("cache on");
        assert_eq!(cache.ttl, Duration::from_secs(30));
        assert!(cache.per_subject);
        assert_eq!(cache.vary, ["accept-language"]);
        assert_eq!(cache.invalidates, ["v1/tenants", "v1/audit"]);
        assert_eq!(
            config.cache,
            CacheConfig {
                max_entries: 100,
                max_bytes: 1 << 20,
                max_entry_bytes: 64 << 10
            }
        );
    }

    #[test]
    fn bad_cache_values_are_reported_with_their_line() {
        let route = "    cache:\n      ttl: 0s\n      vary: [authorization, x-a, X-A, \"a b\"]\n      invalidates: [\"v1/{id}\", \"\"]\n";
        let errors =
            parse(route, "cache:\n  max_entries: 0\n  max_bytes: 1KiB\n").expect_err("bad");
        assert_eq!(
            errors,
            "g.yaml:13:12: routes[0].cache.ttl: must be greater than zero\n\
             g.yaml:14:14: routes[0].cache.vary[0]: `authorization` carries credentials: use per_subject: true to cache per subject\n\
             g.yaml:14:34: routes[0].cache.vary[2]: `x-a` is listed twice\n\
             g.yaml:14:39: routes[0].cache.vary[3]: `a b` is not a header name\n\
             g.yaml:15:21: routes[0].cache.invalidates[0]: `v1/{id}` is not a tag: write a path like v1/policies (no query, no variables)\n\
             g.yaml:15:32: routes[0].cache.invalidates[1]: `` is not a tag: write a path like v1/policies (no query, no variables)\n\
             g.yaml:17:16: cache.max_entries: must be greater than zero\n\
             g.yaml:18:14: cache.max_entry_bytes: must not be larger than cache.max_bytes"
        );
    }
}
