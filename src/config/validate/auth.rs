//! Checks of the JWT settings: `auth:` (token source, providers and their keys) and what each route
//! asks of them (`routes[].auth`). Key files are only resolved here; they are read when the runtime
//! is built.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::checker::{Checker, place};
use crate::config::edge::{AuthConfig, AuthMode, KeySource, ProviderConfig, RouteAuth, Secret};
use crate::config::raw::{At, RawAuth, RawProvider, RawRouteAuth, RawTokenSource};
use crate::config::units::parse_size;

/// The `auth:` section, defaults filled in; invalid providers are left out.
pub(super) fn auth(c: &mut Checker<'_>, raw: Option<&RawAuth>, base: &Path) -> AuthConfig {
    let mut auth = AuthConfig::default();
    let Some(raw) = raw else { return auth };
    if let Some(realm) = &raw.realm {
        auth.realm = realm.replace(['"', '\\'], "");
    }
    if let Some(v) = &raw.max_token_bytes {
        match parse_size(&v.value) {
            Ok(n) if n > 0 => auth.max_token_bytes = n,
            Ok(_) => c.error(place(v), "auth.max_token_bytes", "must be > 0"),
            Err(e) => c.error(place(v), "auth.max_token_bytes", e),
        }
    }
    if let Some(v) = &raw.verified_cache_size {
        auth.verified_cache_size = v.value as usize;
    }
    if let Some(token) = &raw.token {
        token_source(c, token, &mut auth);
    }
    for (name, p) in &raw.providers {
        if let Some(provider) = provider(c, name, p, base) {
            auth.providers.push(provider);
        }
    }
    auth
}

/// `auth.token`: the header, scheme and query parameter a token is read from.
fn token_source(c: &mut Checker<'_>, token: &RawTokenSource, auth: &mut AuthConfig) {
    if let Some(h) = &token.header {
        match http::HeaderName::try_from(h.value.as_str()) {
            Ok(name) => auth.header = name.as_str().to_owned(),
            Err(_) => c.error(place(h), "auth.token.header", "not a header name"),
        }
    }
    if let Some(p) = &token.prefix {
        auth.prefix = p.trim().to_owned();
    }
    auth.query_parameter = token.query_parameter.clone();
}

/// `auth.providers.<name>`; `None` when its algorithms, secret or key source are unusable.
fn provider(
    c: &mut Checker<'_>,
    name: &str,
    p: &RawProvider,
    base: &Path,
) -> Option<ProviderConfig> {
    let key = format!("auth.providers.{name}");
    let mut ok = true;
    let algorithms = algorithms(c, p, &key, &mut ok);
    shared_secret(c, p, &key, &algorithms, &mut ok);
    let keys = key_source(c, p, &key, base, &mut ok)?;
    let jwks_ca = jwks_ca(c, p, &key, base, &mut ok);
    let claims_to_metadata = claims_to_metadata(c, p, &key);
    let payload_to_metadata = p
        .payload_to_metadata
        .as_ref()
        .and_then(|h| metadata_name(c, h, &format!("{key}.payload_to_metadata")));
    let mut duration = |value: &Option<At<String>>, name: &str, seconds: u64| {
        let default = Duration::from_secs(seconds);
        c.duration_or(value.as_ref(), &format!("{key}.{name}"), default)
    };
    let provider = ProviderConfig {
        name: name.to_owned(),
        issuer: p.issuer.value.clone(),
        audiences: p.audiences.clone(),
        algorithms,
        keys,
        kid: p.kid.clone(),
        shared_secret: p
            .shared_secret
            .as_ref()
            .map(|s| Secret::new(s.value.clone())),
        clock_skew: duration(&p.clock_skew, "clock_skew", 60),
        jwks_timeout: duration(&p.jwks_timeout, "jwks_timeout", 5),
        jwks_refresh_interval: duration(&p.jwks_refresh_interval, "jwks_refresh_interval", 600),
        jwks_min_refetch_interval: duration(
            &p.jwks_min_refetch_interval,
            "jwks_min_refetch_interval",
            30,
        ),
        jwks_ca,
        claims_to_metadata,
        payload_to_metadata,
        place: place(&p.issuer),
    };
    ok.then_some(provider)
}

/// `auth.providers.<name>.algorithms`: at least one, every one known.
fn algorithms(c: &mut Checker<'_>, p: &RawProvider, key: &str, ok: &mut bool) -> Vec<Algorithm> {
    let mut algorithms = Vec::new();
    for (i, a) in p.algorithms.iter().enumerate() {
        match a.value.parse::<Algorithm>() {
            Ok(alg) => algorithms.push(alg),
            Err(_) => {
                let reason = format!(
                    "unknown algorithm `{}` (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)",
                    a.value
                );
                c.error(place(a), format!("{key}.algorithms[{i}]"), reason);
                *ok = false;
            }
        }
    }
    if p.algorithms.is_empty() {
        let reason = "list at least one algorithm";
        c.error(place(&p.issuer), format!("{key}.algorithms"), reason);
        *ok = false;
    }
    algorithms
}

/// HS algorithms and `shared_secret` go together, and the secret is at least 32 bytes.
fn shared_secret(
    c: &mut Checker<'_>,
    p: &RawProvider,
    key: &str,
    algorithms: &[Algorithm],
    ok: &mut bool,
) {
    let hmac = algorithms
        .iter()
        .any(|a| a.family() == AlgorithmFamily::Hmac);
    if hmac && p.shared_secret.is_none() {
        let reason = "HS algorithms need a shared_secret";
        c.error(place(&p.issuer), format!("{key}.algorithms"), reason);
        *ok = false;
    }
    if let Some(s) = &p.shared_secret
        && (!hmac || s.value.len() < 32)
    {
        let reason = "a shared_secret needs an HS algorithm and at least 32 bytes";
        c.error(place(s), format!("{key}.shared_secret"), reason);
        *ok = false;
    }
}

/// Where the provider's keys come from: exactly one of `pem_file`, `jwks_file`, `jwks_url`, or
/// only a `shared_secret`; `None` when that does not hold.
fn key_source(
    c: &mut Checker<'_>,
    p: &RawProvider,
    key: &str,
    base: &Path,
    ok: &mut bool,
) -> Option<KeySource> {
    let sources = [&p.pem_file, &p.jwks_file, &p.jwks_url];
    match sources.map(Option::as_ref) {
        [None, None, None] if p.shared_secret.is_some() => Some(KeySource::SecretOnly),
        [Some(f), None, None] => Some(KeySource::PemFile(base.join(&f.value))),
        [None, Some(f), None] => Some(KeySource::JwksFile(base.join(&f.value))),
        [None, None, Some(u)] => {
            let scheme = u.value.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("http" | "https")) || u.value.parse::<http::Uri>().is_err() {
                c.error(place(u), format!("{key}.jwks_url"), "not an http(s) URL");
                *ok = false;
            }
            Some(KeySource::JwksUrl(u.value.clone()))
        }
        _ => {
            let reason =
                "give exactly one of pem_file, jwks_file, jwks_url (or only a shared_secret)";
            c.error(place(&p.issuer), key, reason);
            None
        }
    }
}

/// `auth.providers.<name>.jwks_ca`: a CA file for an `https://` `jwks_url` only (read when the
/// runtime is built).
fn jwks_ca(
    c: &mut Checker<'_>,
    p: &RawProvider,
    key: &str,
    base: &Path,
    ok: &mut bool,
) -> Option<PathBuf> {
    let ca = p.jwks_ca.as_ref()?;
    let https = p
        .jwks_url
        .as_ref()
        .is_some_and(|u| u.value.starts_with("https://"));
    if !https {
        c.error(
            place(ca),
            format!("{key}.jwks_ca"),
            "needs an https:// jwks_url",
        );
        *ok = false;
    }
    Some(base.join(&ca.value))
}

/// `auth.providers.<name>.claims_to_metadata`: claim name → metadata name, the valid ones.
fn claims_to_metadata(c: &mut Checker<'_>, p: &RawProvider, key: &str) -> Vec<(String, String)> {
    let mut claims = Vec::new();
    for (claim, header) in &p.claims_to_metadata {
        let claim_key = format!("{key}.claims_to_metadata.{claim}");
        if let Some(h) = metadata_name(c, header, &claim_key) {
            claims.push((claim.clone(), h));
        }
    }
    claims
}

/// A gRPC metadata name a claim or the payload is forwarded under (lower-cased, not `grpc-*`).
fn metadata_name(c: &mut Checker<'_>, value: &At<String>, key: &str) -> Option<String> {
    let name = value.value.to_ascii_lowercase();
    if http::HeaderName::try_from(name.as_str()).is_err() || name.starts_with("grpc-") {
        c.error(place(value), key, "not a usable metadata name");
        return None;
    }
    Some(name)
}

/// `routes[i].auth`, checked against the declared providers.
pub(super) fn route_auth(
    c: &mut Checker<'_>,
    key: &str,
    raw: Option<&RawRouteAuth>,
    auth: Option<&RawAuth>,
) -> RouteAuth {
    let Some(raw) = raw else {
        return RouteAuth::default();
    };
    let key = format!("{key}.auth");
    let mode = match raw.mode.value.as_str() {
        "required" => AuthMode::Required,
        "optional" => AuthMode::Optional,
        "none" => AuthMode::None,
        other => {
            let reason = format!("`{other}`: use required, optional or none");
            c.error(place(&raw.mode), format!("{key}.mode"), reason);
            AuthMode::None
        }
    };
    let declared: Vec<&String> = auth
        .map(|a| a.providers.keys().collect())
        .unwrap_or_default();
    if mode != AuthMode::None && declared.is_empty() {
        let reason = "needs at least one provider under the top-level `auth.providers`";
        c.error(place(&raw.mode), format!("{key}.mode"), reason);
    }
    for (i, p) in raw.providers.iter().enumerate() {
        if !declared.contains(&&p.value) {
            let reason = format!("unknown provider `{}`", p.value);
            c.error(place(p), format!("{key}.providers[{i}]"), reason);
        }
    }
    let providers = if raw.providers.is_empty() {
        declared.into_iter().cloned().collect()
    } else {
        raw.providers.iter().map(|p| p.value.clone()).collect()
    };
    RouteAuth {
        mode,
        providers,
        require_scopes: raw.require_scopes.clone(),
        require_claims: raw.require_claims.clone().into_iter().collect(),
        forward_authorization: raw.forward_authorization,
    }
}
