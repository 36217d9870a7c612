//! The edge part of the admin answers: each binding's token policy and rate limits on `/routes`;
//! the `auth`, `rate_limits` and TLS listener sections on `/config`. Secrets never appear: a
//! shared secret prints `<redacted>`, a TLS listener shows file paths (never key contents), a
//! JWKS URL shows no credentials or query ([`redact_url`]).

use serde_json::{Value, json};

use super::format::duration;
use crate::config::{
    AuthConfig, AuthMode, ClientAuthMode, Config, KeySource, LimitKey, ListenerConfig,
    RateLimitConfig, RouteAuth, TlsListenerConfig, redact_url,
};
use crate::runtime::Binding;

fn mode(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::None => "none",
        AuthMode::Optional => "optional",
        AuthMode::Required => "required",
    }
}

/// A route's `auth` as configured (provider list as written: empty means every provider).
fn route_auth_json(auth: &RouteAuth) -> Value {
    json!({
        "mode": mode(auth.mode),
        "providers": auth.providers,
        "require_scopes": auth.require_scopes,
        "require_claims": auth.require_claims.iter().map(|(k, v)| json!({ "claim": k, "value": v })).collect::<Vec<_>>(),
        "forward_authorization": auth.forward_authorization,
    })
}

/// Adds `auth` and `rate_limits` to one `/routes` entry.
pub(super) fn extend_route(entry: &mut Value, binding: &Binding) {
    let options = &binding.method.options;
    if let Value::Object(map) = entry {
        map.insert("auth".to_owned(), route_auth_json(options.auth.rules()));
        map.insert("rate_limits".to_owned(), json!(options.rate_limits.names()));
    }
}

/// Adds `auth`, `rate_limits` and each route's `auth` and `rate_limits` to the
/// `/config` answer.
pub(super) fn extend_config(value: &mut Value, config: &Config) {
    if let Some(routes) = value.get_mut("routes").and_then(Value::as_array_mut) {
        for (entry, route) in routes.iter_mut().zip(&config.routes) {
            if let Value::Object(map) = entry {
                map.insert("auth".to_owned(), route_auth_json(&route.auth));
                map.insert("rate_limits".to_owned(), json!(route.rate_limits));
            }
        }
    }
    if let Value::Object(map) = value {
        map.insert("auth".to_owned(), auth_json(&config.auth));
        map.insert(
            "rate_limits".to_owned(),
            rate_limits_json(&config.rate_limits),
        );
    }
}

fn auth_json(auth: &AuthConfig) -> Value {
    let providers: Vec<Value> = auth
        .providers
        .iter()
        .map(|p| {
            let keys = match &p.keys {
                KeySource::SecretOnly => json!({ "shared_secret_only": true }),
                KeySource::PemFile(path) => json!({ "pem_file": path.display().to_string() }),
                KeySource::JwksFile(path) => json!({ "jwks_file": path.display().to_string() }),
                KeySource::JwksUrl(url) => json!({ "jwks_url": redact_url(url) }),
            };
            json!({
                "name": p.name,
                "issuer": p.issuer,
                "audiences": p.audiences,
                "algorithms": p.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
                "keys": keys,
                "kid": p.kid,
                "shared_secret": p.shared_secret.as_ref().map(|_| "<redacted>"),
                "clock_skew": duration(p.clock_skew),
                "jwks_timeout": duration(p.jwks_timeout),
                "jwks_refresh_interval": duration(p.jwks_refresh_interval),
                "jwks_min_refetch_interval": duration(p.jwks_min_refetch_interval),
                "claims_to_metadata": p.claims_to_metadata.iter().map(|(c, h)| json!({ "claim": c, "metadata": h })).collect::<Vec<_>>(),
                "payload_to_metadata": p.payload_to_metadata,
            })
        })
        .collect();
    json!({
        "realm": auth.realm,
        "header": auth.header,
        "prefix": auth.prefix,
        "query_parameter": auth.query_parameter,
        "max_token_bytes": auth.max_token_bytes,
        "verified_cache_size": auth.verified_cache_size,
        "providers": providers,
    })
}

/// The `key` of a limit as written in the config.
pub(super) fn limit_key(key: &LimitKey) -> String {
    match key {
        LimitKey::Ip => "ip".to_owned(),
        LimitKey::Global => "global".to_owned(),
        LimitKey::Claim(c) => format!("claim:{c}"),
        LimitKey::Header(h) => format!("header:{h}"),
    }
}

fn rate_limits_json(config: &RateLimitConfig) -> Value {
    let limits: Vec<Value> = config
        .limits
        .iter()
        .map(|l| {
            let mut limit = json!({
                "name": l.name,
                "rate": format!("{}/{}", l.per_period, duration(l.period)),
                "burst": l.burst,
                "key": limit_key(&l.key),
                "max_keys": l.max_keys,
            });
            // Only header and claim values have a length to bound.
            if matches!(l.key, LimitKey::Header(_) | LimitKey::Claim(_)) {
                limit["max_key_bytes"] = json!(l.max_key_bytes);
            }
            limit
        })
        .collect();
    json!({
        "trusted_proxy_hops": config.trusted_proxy_hops,
        "prune_interval": duration(config.prune_interval),
        "max_keys": config.max_keys,
        "max_key_bytes": config.max_key_bytes,
        "limits": limits,
    })
}

/// One `listeners[]` entry: paths of its certificate files, never their contents.
pub(super) fn listener_json(listener: &ListenerConfig) -> Value {
    json!({
        "name": listener.name,
        "address": listener.address.to_string(),
        "tls": listener.tls.as_ref().map_or(Value::Null, tls_json),
        "routes": listener.routes,
    })
}

fn tls_json(tls: &TlsListenerConfig) -> Value {
    json!({
        "certificates": tls.certificates.iter().map(|c| json!({
            "cert": c.cert.value.display().to_string(),
            "key": c.key.value.display().to_string(),
            "server_names": c.server_names,
        })).collect::<Vec<_>>(),
        "default_certificate": tls.default_certificate,
        "client_auth": tls.client_auth.as_ref().map(|c| json!({
            "ca": c.ca.value.display().to_string(),
            "mode": match c.mode {
                ClientAuthMode::Required => "required",
                ClientAuthMode::Optional => "optional",
            },
        })),
        "handshake_timeout": duration(tls.handshake_timeout),
        "reload_interval": duration(tls.reload_interval),
    })
}
