//! Checks of `upstreams.<name>`: addresses, connect timeout, response size, resolve interval,
//! `tls:`. The resilience keys (retry, circuit breaker, health check) are read by `resilience`.
//!
//! Only the `tls:` values are checked here (paths resolved, a client certificate with its key, the
//! server name); the files themselves are read when the runtime is built, which `validate` does
//! too, so an unreadable or mismatched file is reported at its setting's line.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::checker::{Checker, located_path, place};
use super::resilience;
use super::tls::DEFAULT_RELOAD_INTERVAL;
use crate::config::error::Place;
use crate::config::raw::{At, RawUpstream, RawUpstreamTls};
use crate::config::upstream::{UpstreamConfig, UpstreamTlsConfig};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `upstreams.<name>.resolve_interval` when absent.
const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Every valid upstream, in name order; at least one is required.
pub(super) fn upstreams(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &BTreeMap<String, RawUpstream>,
) -> Vec<UpstreamConfig> {
    let upstreams = raw
        .iter()
        .filter_map(|(name, u)| upstream(c, base, name, u))
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
fn upstream(
    c: &mut Checker<'_>,
    base: &Path,
    name: &str,
    u: &RawUpstream,
) -> Option<UpstreamConfig> {
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
    let tls = u.tls.as_ref().and_then(|t| tls(c, base, t, &key));
    let send_gzip_from = send_compressed(c, u, &key);
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
        tls,
        reflection: u.reflection.as_ref().is_some_and(|r| r.value),
        send_gzip_from,
    })
}

/// Smallest request message `send_compressed` compresses unless told otherwise: smaller ones
/// gain little and cost the backend an inflate.
const DEFAULT_SEND_COMPRESSED_MIN_SIZE: usize = 1024;

/// `send_compressed` (`gzip` or `identity`, the default) and `send_compressed_min_size`: the
/// size from which request messages are gzip-compressed, `None` for never.
fn send_compressed(c: &mut Checker<'_>, u: &RawUpstream, key: &str) -> Option<usize> {
    let min_size = u
        .send_compressed_min_size
        .as_ref()
        .and_then(|v| c.size(v, &format!("{key}.send_compressed_min_size")))
        .unwrap_or(DEFAULT_SEND_COMPRESSED_MIN_SIZE);
    let coding = u.send_compressed.as_ref()?;
    match coding.value.as_str() {
        "gzip" => Some(min_size),
        "identity" => None,
        other => {
            let reason = format!("`{other}`: use gzip or identity");
            c.error(place(coding), format!("{key}.send_compressed"), reason);
            None
        }
    }
}

/// `upstreams.<name>.tls`: paths resolved against the config's folder; `None` when a value is
/// unusable (the problem is recorded).
fn tls(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &RawUpstreamTls,
    upstream: &str,
) -> Option<UpstreamTlsConfig> {
    let key = format!("{upstream}.tls");
    let path = |v: &Option<At<String>>, name: &str| {
        v.as_ref()
            .map(|v| located_path(base, v, format!("{key}.{name}")))
    };
    let reload_interval = raw
        .reload_interval
        .as_ref()
        .and_then(|v| c.duration(v, &format!("{key}.reload_interval")))
        .unwrap_or(DEFAULT_RELOAD_INTERVAL);
    let mut valid = true;
    match (&raw.client_cert, &raw.client_key) {
        (Some(v), None) | (None, Some(v)) => {
            let reason = "a client certificate needs both `client_cert` and `client_key`";
            c.error(place(v), key.clone(), reason);
            valid = false;
        }
        _ => {}
    }
    let server_name = raw.server_name.as_ref().map(|v| v.value.trim().to_owned());
    if let (Some(name), Some(v)) = (&server_name, &raw.server_name)
        && ServerName::try_from(name.as_str()).is_err()
    {
        let reason = format!("`{name}` is not a DNS name or an IP address");
        c.error(place(v), format!("{key}.server_name"), reason);
        valid = false;
    }
    valid.then(|| UpstreamTlsConfig {
        ca: path(&raw.ca, "ca"),
        client_cert: path(&raw.client_cert, "client_cert"),
        client_key: path(&raw.client_key, "client_key"),
        server_name,
        reload_interval,
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
            "write host:port, and add `tls:` to the upstream for TLS (`tls: {}`: system roots)",
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(upstream: &str) -> Result<Config, crate::config::ConfigErrors> {
        let text = format!(
            "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [proto]\n\
             upstreams:\n  u:\n{upstream}routes:\n  - service: s.S\n    upstream: u\n"
        );
        Config::parse(Path::new("conf/gateway.yaml"), &text)
    }

    #[test]
    fn send_compressed_gzip_from_a_size_identity_by_default_and_nothing_else() {
        let from = |extra: &str| {
            let config = parse(&format!("    address: b.test:80\n{extra}")).expect("valid");
            config.upstreams[0].send_gzip_from
        };
        assert_eq!(from(""), None);
        assert_eq!(from("    send_compressed: identity\n"), None);
        assert_eq!(from("    send_compressed: gzip\n"), Some(1024));
        let small = "    send_compressed: gzip\n    send_compressed_min_size: 1B\n";
        assert_eq!(from(small), Some(1));
        let errors = parse("    address: b.test:80\n    send_compressed: br\n")
            .expect_err("invalid")
            .0;
        let shown: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "{}:{} {}: {}",
                    e.place.line, e.place.column, e.key, e.reason
                )
            })
            .collect();
        assert_eq!(
            shown,
            ["9:22 upstreams.u.send_compressed: `br`: use gzip or identity"]
        );
    }

    #[test]
    fn tls_paths_are_relative_to_the_config_folder_and_default_to_system_roots() {
        let config = parse("    address: b.test:443\n    tls: {}\n").expect("valid");
        let tls = config.upstreams[0].tls.clone().expect("tls");
        assert_eq!(
            (tls.ca, tls.client_cert, tls.server_name),
            (None, None, None)
        );
        assert_eq!(tls.reload_interval, super::DEFAULT_RELOAD_INTERVAL);
        let config = parse(
            "    address: 10.0.0.1:443\n    tls:\n      ca: ca.pem\n      client_cert: c.pem\n      client_key: k.pem\n      server_name: b.test\n      reload_interval: 1s\n",
        )
        .expect("valid");
        let tls = config.upstreams[0].tls.clone().expect("tls");
        let ca = tls.ca.expect("ca");
        assert_eq!(ca.value, Path::new("conf/ca.pem"));
        assert_eq!((ca.key.as_str(), ca.place.line), ("upstreams.u.tls.ca", 10));
        let key = tls.client_key.expect("key").value;
        assert_eq!(key, Path::new("conf/k.pem"));
        assert_eq!(tls.server_name.as_deref(), Some("b.test"));
        assert_eq!(
            config.upstreams[0].tls.as_ref().map(|t| t.reload_interval),
            Some(std::time::Duration::from_secs(1))
        );
    }

    #[test]
    fn rejects_a_lone_client_cert_a_bad_server_name_and_https_addresses() {
        let errors = parse(
            "    address: b.test:443\n    tls:\n      client_cert: c.pem\n      server_name: 'not a name'\n",
        )
        .expect_err("invalid");
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "conf/gateway.yaml:10:20: upstreams.u.tls: a client certificate needs both `client_cert` and `client_key`",
                "conf/gateway.yaml:11:20: upstreams.u.tls.server_name: `not a name` is not a DNS name or an IP address",
            ]
        );
        let errors = parse("    address: https://b.test:443\n").expect_err("invalid");
        assert_eq!(
            errors.0[0].reason,
            "write host:port, and add `tls:` to the upstream for TLS (`tls: {}`: system roots)"
        );
    }
}
