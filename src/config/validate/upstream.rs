//! Checks of `upstreams.<name>`: addresses, connect timeout, response size, resolve interval. The
//! resilience keys (retry, circuit breaker, health check) are read by `resilience`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::checker::{Checker, place};
use super::resilience;
use crate::config::error::Place;
use crate::config::raw::{At, RawUpstream};
use crate::config::upstream::UpstreamConfig;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `upstreams.<name>.resolve_interval` when absent.
const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Every valid upstream, in name order; at least one is required.
pub(super) fn upstreams(
    c: &mut Checker<'_>,
    raw: &BTreeMap<String, RawUpstream>,
) -> Vec<UpstreamConfig> {
    let upstreams = raw
        .iter()
        .filter_map(|(name, u)| upstream(c, name, u))
        .collect();
    if raw.is_empty() {
        c.error(
            Place::default(),
            "upstreams",
            "at least one upstream is required",
        );
    }
    upstreams
}

/// `upstreams.<name>`, defaults filled in; `None` when its endpoints are unusable.
fn upstream(c: &mut Checker<'_>, name: &str, u: &RawUpstream) -> Option<UpstreamConfig> {
    let key = format!("upstreams.{name}");
    let endpoints = endpoints(c, u, &key);
    let connect_timeout = u
        .connect_timeout
        .as_ref()
        .and_then(|v| c.duration(v, &format!("{key}.connect_timeout")))
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let max_response_bytes = u
        .max_response_bytes
        .as_ref()
        .and_then(|v| c.size(v, &format!("{key}.max_response_bytes")))
        .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    let retry = resilience::retry(c, u.retry.as_ref(), &key);
    let circuit_breaker = resilience::breaker(c, u.circuit_breaker.as_ref(), &key);
    let health_check = resilience::health_check(c, u.health_check.as_ref(), &key);
    let resolve_interval = u
        .resolve_interval
        .as_ref()
        .and_then(|v| c.duration(v, &format!("{key}.resolve_interval")))
        .unwrap_or(DEFAULT_RESOLVE_INTERVAL);
    let endpoints = endpoints?;
    Some(UpstreamConfig {
        name: name.to_owned(),
        authority: endpoints.first()?.clone(),
        connect_timeout,
        max_response_bytes,
        endpoints,
        retry,
        circuit_breaker,
        health_check,
        resolve_interval,
    })
}

/// Every endpoint of an upstream: `address` (shorthand) or `endpoints`, exactly one of them.
fn endpoints(c: &mut Checker<'_>, u: &RawUpstream, key: &str) -> Option<Vec<String>> {
    match (&u.address, &u.endpoints) {
        (Some(address), None) => authority(c, address, &format!("{key}.address")).map(|a| vec![a]),
        (None, Some(list)) if !list.is_empty() => endpoint_list(c, list, key),
        (None, Some(_)) => {
            c.error(Place::default(), format!("{key}.endpoints"), "is empty");
            None
        }
        (Some(address), Some(_)) => {
            c.error(
                place(address),
                format!("{key}.address"),
                "give either `address` or `endpoints`, not both",
            );
            None
        }
        (None, None) => {
            c.error(Place::default(), key, "needs `address` or `endpoints`");
            None
        }
    }
}

/// `endpoints: [...]`: every item a `host:port`, none twice.
fn endpoint_list(c: &mut Checker<'_>, list: &[At<String>], key: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut valid = true;
    for (i, item) in list.iter().enumerate() {
        let item_key = format!("{key}.endpoints[{i}]");
        match authority(c, item, &item_key) {
            Some(a) if out.contains(&a) => {
                c.error(place(item), item_key, format!("`{a}` is listed twice"));
                valid = false;
            }
            Some(a) => out.push(a),
            None => valid = false,
        }
    }
    valid.then_some(out)
}

/// One endpoint: `host:port`, optionally written as `http://host:port/` (h2c).
fn authority(c: &mut Checker<'_>, value: &At<String>, key: &str) -> Option<String> {
    let text = value.value.trim();
    let authority = text
        .strip_prefix("http://")
        .unwrap_or(text)
        .trim_end_matches('/');
    if text.starts_with("https://") {
        c.error(
            place(value),
            key,
            "TLS to upstreams is not supported yet; use host:port (h2c)",
        );
        return None;
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Some(authority.to_owned())
        }
        _ => {
            c.error(
                place(value),
                key,
                format!("`{text}` is not a host:port address"),
            );
            None
        }
    }
}
