//! Edge security settings: JWT providers (`auth:`), named rate limits (`rate_limits:`), and what each
//! route asks of them (`routes[].auth`, `routes[].rate_limits`).
//!
//! The raw serde shapes live here too (not in `raw.rs`) so the security settings read in one place;
//! `raw.rs` and `validate.rs` only hook them in. Keys are loaded later, when the runtime is built.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{At, RawAuth, RawProvider, RawRateLimits, RawRouteAuth};
use super::{ConfigError, Place, parse_duration, parse_size};

/// A value that must never reach logs: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Validated `auth:` section.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `realm` of `WWW-Authenticate` challenges.
    pub realm: String,
    /// Longer tokens are refused before any parsing.
    pub max_token_bytes: usize,
    /// Verified tokens remembered so a repeated token skips its signature check; 0 turns it off.
    pub verified_cache_size: usize,
    /// Request header carrying the token (lower-case).
    pub header: String,
    /// Scheme before the token in that header, matched case-insensitively (`Bearer`).
    pub prefix: String,
    /// Query parameter that may carry the token; off unless configured.
    pub query_parameter: Option<String>,
    /// Token issuers, in name order.
    pub providers: Vec<ProviderConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            realm: "tai-gateway".to_owned(),
            max_token_bytes: 8 * 1024,
            verified_cache_size: 1024,
            header: "authorization".to_owned(),
            prefix: "Bearer".to_owned(),
            query_parameter: None,
            providers: Vec::new(),
        }
    }
}

/// Where a provider's verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Only the shared secret (HS algorithms).
    SecretOnly,
    /// A PEM public key file.
    PemFile(PathBuf),
    /// A local JWKS file.
    JwksFile(PathBuf),
    /// A JWKS fetched over http(s), cached and refreshed.
    JwksUrl(String),
}

/// One token issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Name routes refer to.
    pub name: String,
    /// Exact `iss` value its tokens carry.
    pub issuer: String,
    /// Accepted `aud` values; empty accepts any.
    pub audiences: Vec<String>,
    /// Algorithms its tokens may use.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Public keys.
    pub keys: KeySource,
    /// `kid` of the PEM key, if tokens name one.
    pub kid: Option<String>,
    /// HMAC secret for HS256/384/512.
    pub shared_secret: Option<Secret<String>>,
    /// Tolerance on `exp` and `nbf`.
    pub clock_skew: Duration,
    /// Bound on one remote JWKS fetch.
    pub jwks_timeout: Duration,
    /// Remote JWKS refresh period.
    pub jwks_refresh_interval: Duration,
    /// Shortest gap between fetches caused by unknown `kid`s.
    pub jwks_min_refetch_interval: Duration,
    /// Claim name → metadata name, forwarded after verification.
    pub claims_to_metadata: Vec<(String, String)>,
    /// Metadata name carrying the whole verified payload (base64url JSON).
    pub payload_to_metadata: Option<String>,
    /// Where it was written (key-loading errors point here).
    pub place: Place,
}

/// What a route does with tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens are not looked at.
    #[default]
    None,
    /// A token is verified when present; requests without one pass anonymously.
    Optional,
    /// Every request needs a valid token.
    Required,
}

/// `routes[].auth`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteAuth {
    /// Required, optional or none.
    pub mode: AuthMode,
    /// Provider names accepted (all configured providers when the list was empty).
    pub providers: Vec<String>,
    /// Scopes the token must all carry (`scope` string or `scp` list).
    pub require_scopes: Vec<String>,
    /// Claims that must equal (or, for lists, contain) these values.
    pub require_claims: Vec<(String, String)>,
    /// The `Authorization` header goes to the backend as metadata.
    pub forward_authorization: bool,
}

/// What a rate limit is counted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    /// The client address (socket peer, or from `X-Forwarded-For` behind trusted proxies).
    Ip,
    /// One budget for everyone.
    Global,
    /// A verified JWT claim (checked after authentication).
    Claim(String),
    /// A request header's value.
    Header(String),
}

/// One named limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitConfig {
    /// Name routes refer to.
    pub name: String,
    /// Requests refilled per `period`.
    pub per_period: u32,
    /// Refill period of `per_period` requests.
    pub period: Duration,
    /// Requests that may pass at once.
    pub burst: u32,
    /// What the budget is counted by.
    pub key: LimitKey,
}

/// Validated `rate_limits:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Proxies in front of the gateway whose `X-Forwarded-For` entries are trusted.
    pub trusted_proxy_hops: u32,
    /// How often idle keys are dropped.
    pub prune_interval: Duration,
    /// Named limits, in name order.
    pub limits: Vec<LimitConfig>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            trusted_proxy_hops: 0,
            prune_interval: Duration::from_secs(60),
            limits: Vec::new(),
        }
    }
}

/// Collects problems of the edge sections.
pub(super) struct Problems<'a> {
    pub(super) file: &'a Path,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

fn place<T>(value: &At<T>) -> Place {
    Place {
        line: value.referenced.line(),
        column: value.referenced.column(),
    }
}

impl Problems<'_> {
    fn error(&mut self, place: Place, key: String, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            place,
            key,
            reason: reason.into(),
        });
    }

    fn duration(&mut self, value: Option<&At<String>>, key: String, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        match parse_duration(&value.value) {
            Ok(d) => d,
            Err(reason) => {
                self.error(place(value), key, reason);
                default
            }
        }
    }

    /// The `auth:` section.
    pub(super) fn auth(&mut self, raw: Option<&RawAuth>, base: &Path) -> AuthConfig {
        let mut auth = AuthConfig::default();
        let Some(raw) = raw else { return auth };
        if let Some(realm) = &raw.realm {
            auth.realm = realm.replace(['"', '\\'], "");
        }
        if let Some(v) = &raw.max_token_bytes {
            match parse_size(&v.value) {
                Ok(n) if n > 0 => auth.max_token_bytes = n,
                Ok(_) => self.error(place(v), "auth.max_token_bytes".into(), "must be > 0"),
                Err(e) => self.error(place(v), "auth.max_token_bytes".into(), e),
            }
        }
        if let Some(v) = &raw.verified_cache_size {
            auth.verified_cache_size = v.value as usize;
        }
        if let Some(token) = &raw.token {
            if let Some(h) = &token.header {
                match http::HeaderName::try_from(h.value.as_str()) {
                    Ok(name) => auth.header = name.as_str().to_owned(),
                    Err(_) => self.error(place(h), "auth.token.header".into(), "not a header name"),
                }
            }
            if let Some(p) = &token.prefix {
                auth.prefix = p.trim().to_owned();
            }
            auth.query_parameter = token.query_parameter.clone();
        }
        for (name, p) in &raw.providers {
            if let Some(provider) = self.provider(name, p, base) {
                auth.providers.push(provider);
            }
        }
        auth
    }

    fn provider(&mut self, name: &str, p: &RawProvider, base: &Path) -> Option<ProviderConfig> {
        let key = format!("auth.providers.{name}");
        let mut ok = true;
        let mut algorithms = Vec::new();
        for (i, a) in p.algorithms.iter().enumerate() {
            match a.value.parse::<jsonwebtoken::Algorithm>() {
                Ok(alg) => algorithms.push(alg),
                Err(_) => {
                    let reason = format!(
                        "unknown algorithm `{}` (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)",
                        a.value
                    );
                    self.error(place(a), format!("{key}.algorithms[{i}]"), reason);
                    ok = false;
                }
            }
        }
        let at = place(&p.issuer);
        if p.algorithms.is_empty() {
            self.error(
                at,
                format!("{key}.algorithms"),
                "list at least one algorithm",
            );
            ok = false;
        }
        let hmac = algorithms
            .iter()
            .any(|a| a.family() == jsonwebtoken::AlgorithmFamily::Hmac);
        if hmac && p.shared_secret.is_none() {
            let reason = "HS algorithms need a shared_secret";
            self.error(at, format!("{key}.algorithms"), reason);
            ok = false;
        }
        if let Some(s) = &p.shared_secret
            && (!hmac || s.value.len() < 32)
        {
            let reason = "a shared_secret needs an HS algorithm and at least 32 bytes";
            self.error(place(s), format!("{key}.shared_secret"), reason);
            ok = false;
        }
        let sources = [&p.pem_file, &p.jwks_file, &p.jwks_url];
        let keys = match sources.map(Option::as_ref) {
            [None, None, None] if p.shared_secret.is_some() => KeySource::SecretOnly,
            [Some(f), None, None] => KeySource::PemFile(base.join(&f.value)),
            [None, Some(f), None] => KeySource::JwksFile(base.join(&f.value)),
            [None, None, Some(u)] => {
                let scheme = u.value.split_once("://").map(|(s, _)| s);
                if !matches!(scheme, Some("http" | "https"))
                    || u.value.parse::<http::Uri>().is_err()
                {
                    self.error(place(u), format!("{key}.jwks_url"), "not an http(s) URL");
                    ok = false;
                }
                KeySource::JwksUrl(u.value.clone())
            }
            _ => {
                let reason =
                    "give exactly one of pem_file, jwks_file, jwks_url (or only a shared_secret)";
                self.error(at, key.clone(), reason);
                return None;
            }
        };
        let mut claims_to_metadata = Vec::new();
        for (claim, header) in &p.claims_to_metadata {
            if let Some(h) = self.metadata_name(header, format!("{key}.claims_to_metadata.{claim}"))
            {
                claims_to_metadata.push((claim.clone(), h));
            }
        }
        let payload_to_metadata = p
            .payload_to_metadata
            .as_ref()
            .and_then(|h| self.metadata_name(h, format!("{key}.payload_to_metadata")));
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
            clock_skew: self.duration(
                p.clock_skew.as_ref(),
                format!("{key}.clock_skew"),
                Duration::from_secs(60),
            ),
            jwks_timeout: self.duration(
                p.jwks_timeout.as_ref(),
                format!("{key}.jwks_timeout"),
                Duration::from_secs(5),
            ),
            jwks_refresh_interval: self.duration(
                p.jwks_refresh_interval.as_ref(),
                format!("{key}.jwks_refresh_interval"),
                Duration::from_secs(600),
            ),
            jwks_min_refetch_interval: self.duration(
                p.jwks_min_refetch_interval.as_ref(),
                format!("{key}.jwks_min_refetch_interval"),
                Duration::from_secs(30),
            ),
            claims_to_metadata,
            payload_to_metadata,
            place: at,
        };
        ok.then_some(provider)
    }

    fn metadata_name(&mut self, value: &At<String>, key: String) -> Option<String> {
        let name = value.value.to_ascii_lowercase();
        if http::HeaderName::try_from(name.as_str()).is_err() || name.starts_with("grpc-") {
            self.error(place(value), key, "not a usable metadata name");
            return None;
        }
        Some(name)
    }

    /// The `rate_limits:` section.
    pub(super) fn rate_limits(&mut self, raw: Option<&RawRateLimits>) -> RateLimitConfig {
        let mut config = RateLimitConfig::default();
        let Some(raw) = raw else { return config };
        config.trusted_proxy_hops = raw.trusted_proxy_hops;
        config.prune_interval = self.duration(
            raw.prune_interval.as_ref(),
            "rate_limits.prune_interval".into(),
            config.prune_interval,
        );
        for (name, l) in &raw.limits {
            let key = format!("rate_limits.limits.{name}");
            let rate = parse_rate(&l.rate.value);
            if let Err(reason) = &rate {
                self.error(place(&l.rate), format!("{key}.rate"), reason.clone());
            }
            if l.burst.value == 0 {
                self.error(place(&l.burst), format!("{key}.burst"), "must be > 0");
            }
            let limit_key = match l.key.value.split_once(':') {
                None if l.key.value == "ip" => Some(LimitKey::Ip),
                None if l.key.value == "global" => Some(LimitKey::Global),
                Some(("claim", c)) if !c.is_empty() => Some(LimitKey::Claim(c.to_owned())),
                Some(("header", h)) if http::HeaderName::try_from(h).is_ok() => {
                    Some(LimitKey::Header(h.to_ascii_lowercase()))
                }
                _ => {
                    let reason = "use ip, global, claim:<name> or header:<name>";
                    self.error(place(&l.key), format!("{key}.key"), reason);
                    None
                }
            };
            if let (Ok((per_period, period)), Some(limit_key)) = (rate, limit_key)
                && l.burst.value > 0
            {
                config.limits.push(LimitConfig {
                    name: name.clone(),
                    per_period,
                    period,
                    burst: l.burst.value,
                    key: limit_key,
                });
            }
        }
        config
    }

    /// `routes[i].auth`, checked against the declared providers.
    pub(super) fn route_auth(
        &mut self,
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
                self.error(place(&raw.mode), format!("{key}.mode"), reason);
                AuthMode::None
            }
        };
        let declared: Vec<&String> = auth
            .map(|a| a.providers.keys().collect())
            .unwrap_or_default();
        if mode != AuthMode::None && declared.is_empty() {
            let reason = "needs at least one provider under the top-level `auth.providers`";
            self.error(place(&raw.mode), format!("{key}.mode"), reason);
        }
        for (i, p) in raw.providers.iter().enumerate() {
            if !declared.contains(&&p.value) {
                let reason = format!("unknown provider `{}`", p.value);
                self.error(place(p), format!("{key}.providers[{i}]"), reason);
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

    /// `routes[i].rate_limits`, checked against the declared limits.
    pub(super) fn route_limits(
        &mut self,
        key: &str,
        names: &[At<String>],
        limits: Option<&RawRateLimits>,
    ) -> Vec<String> {
        for (i, n) in names.iter().enumerate() {
            if !limits.is_some_and(|l| l.limits.contains_key(&n.value)) {
                let reason = format!("unknown rate limit `{}`", n.value);
                self.error(place(n), format!("{key}.rate_limits[{i}]"), reason);
            }
        }
        names.iter().map(|n| n.value.clone()).collect()
    }
}

/// `100/s`, `600/m`, `3600/h`, or `5/10s`: requests per period.
fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("`{text}` is not a rate: use N/s, N/m, N/h or N/<duration>");
    let (count, period) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let period = match period.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => parse_duration(other).map_err(|_| bad())?,
    };
    if count == 0 || period.is_zero() {
        return Err(bad());
    }
    Ok((count, period))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_a_count_and_a_period() {
        assert_eq!(parse_rate("10/s"), Ok((10, Duration::from_secs(1))));
        assert_eq!(parse_rate("600/m"), Ok((600, Duration::from_secs(60))));
        assert_eq!(parse_rate("5/10s"), Ok((5, Duration::from_secs(10))));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("ten/s").is_err());
        assert!(parse_rate("10").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }
}
