//! JWT authentication: finding the token, verifying it against the configured providers, checking
//! the route's audience, scope and claim requirements, and forwarding verified claims as metadata.
//!
//! The algorithm is taken from the configured key: a token's `alg` only selects among the
//! algorithms its provider allows and its key accepts, so `alg: none` and HS/RS confusion fail.

mod cache;
mod keys;
mod source;
mod token;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::{
    AuthConfig, AuthMode, ConfigError, KeySource, ProviderConfig, RouteAuth, redact_url,
};
use cache::{CachedToken, TokenCache};
use keys::{RemoteJwks, VerifyKey};
use source::TokenSource;
pub use source::TokenSourceError;

/// Why a request was refused by authentication (401) or authorisation (403).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A protected route was called without a token.
    #[error("missing bearer token")]
    Missing {
        /// Challenge realm.
        realm: Arc<str>,
    },
    /// The token is malformed, unverifiable, expired, or from an unknown issuer.
    #[error("invalid token: {reason}")]
    Invalid {
        /// Challenge realm.
        realm: Arc<str>,
        /// What is wrong with it.
        reason: Cow<'static, str>,
    },
    /// The request carries more than one token (two headers, the parameter twice, or a header
    /// and the parameter): refused, not resolved by position (RFC 6750 §3.1 `invalid_request`).
    #[error("ambiguous credentials: {reason}")]
    Ambiguous {
        /// Challenge realm.
        realm: Arc<str>,
        /// Where the tokens were.
        reason: TokenSourceError,
    },
    /// The token is valid but lacks an audience, scope or claim the route requires.
    #[error("permission denied: {reason}")]
    Forbidden {
        /// Challenge realm.
        realm: Arc<str>,
        /// What is missing.
        reason: String,
    },
}

impl AuthError {
    /// True for 403 (valid token, not allowed); false for 401.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, AuthError::Forbidden { .. })
    }

    /// True for a malformed request (400 `invalid_request`) rather than a missing or bad token.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, AuthError::Ambiguous { .. })
    }

    /// The bounded `reason` label of `tai_gateway_auth_failures_total`: `missing`,
    /// `ambiguous` (400), `insufficient_scope` (403), or what made a token invalid (one of ten
    /// kinds).
    pub fn metric_reason(&self) -> &'static str {
        match self {
            AuthError::Missing { .. } => "missing",
            AuthError::Ambiguous { .. } => "ambiguous",
            AuthError::Invalid { reason, .. } => invalid_kind(reason),
            AuthError::Forbidden { .. } => "insufficient_scope",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn challenge(&self) -> HeaderValue {
        let text = match self {
            AuthError::Missing { realm } => format!(r#"Bearer realm="{realm}""#),
            AuthError::Invalid { realm, .. } => {
                format!(r#"Bearer realm="{realm}", error="invalid_token""#)
            }
            AuthError::Ambiguous { realm, reason } => format!(
                r#"Bearer realm="{realm}", error="invalid_request", error_description="{reason}""#
            ),
            AuthError::Forbidden { realm, .. } => {
                format!(r#"Bearer realm="{realm}", error="insufficient_scope""#)
            }
        };
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Bearer"))
    }
}

/// One provider with its loaded keys.
pub struct Provider {
    config: ProviderConfig,
    keys: ArcSwap<Vec<VerifyKey>>,
    remote: Option<RemoteJwks>,
    /// The HMAC key: never printed.
    secret: Option<DecodingKey>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("config", &self.config)
            .field("keys", &self.keys.load().len())
            .field("remote", &self.remote)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Provider {
    fn load(config: &ProviderConfig) -> Result<Provider, String> {
        let (keys, remote) = match &config.keys {
            KeySource::SecretOnly => (Vec::new(), None),
            KeySource::PemFile(path) => {
                let pem = read(path)?;
                let key = keys::from_pem(&pem, config.kid.clone())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (vec![key], None)
            }
            KeySource::JwksFile(path) => {
                let keys = keys::from_jwks(&read(path)?)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (keys, None)
            }
            KeySource::JwksUrl(url) => {
                let uri = url
                    .parse()
                    .map_err(|_| format!("bad URL `{}`", redact_url(url)))?;
                let tls = keys::tls_config(config.jwks_ca.as_deref())?;
                let remote = RemoteJwks::new(
                    uri,
                    tls,
                    config.jwks_timeout,
                    config.jwks_refresh_interval,
                    config.jwks_min_refetch_interval,
                );
                (Vec::new(), Some(remote))
            }
        };
        let secret = config
            .shared_secret
            .as_ref()
            .map(|s| DecodingKey::from_secret(s.expose().as_bytes()))
            .transpose()
            .map_err(|e| format!("shared_secret: {e}"))?;
        Ok(Provider {
            secret,
            config: config.clone(),
            keys: ArcSwap::from_pointee(keys),
            remote,
        })
    }

    /// Name in the config.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Remote JWKS fetch attempts so far (0 for local keys).
    pub fn jwks_fetches(&self) -> u64 {
        self.remote
            .as_ref()
            .map_or(0, |r| r.attempts.load(Ordering::Relaxed))
    }

    /// Keys of `key_set` (or the shared secret) that may check a token signed with `alg` under
    /// `kid` (a key published without a `kid` is a candidate for every token).
    fn candidates(
        &self,
        key_set: &[VerifyKey],
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Vec<DecodingKey> {
        if alg.family() == AlgorithmFamily::Hmac {
            return self.secret.iter().cloned().collect();
        }
        key_set
            .iter()
            .filter(|k| {
                k.accepts(alg) && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            })
            .map(|k| k.key.clone())
            .collect()
    }
}

/// Equal configs, wherever in the file they were written.
fn same_provider(a: &ProviderConfig, b: &ProviderConfig) -> bool {
    let moved = ProviderConfig {
        place: a.place,
        ..b.clone()
    };
    *a == moved
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A token that passed verification.
#[derive(Debug)]
pub struct Verified {
    provider: Arc<Provider>,
    /// Its claims.
    pub claims: Arc<Map<String, Value>>,
    /// The payload segment (base64url JSON).
    payload: Arc<str>,
}

/// `sub` of verified claims, for the access log (never the token itself).
pub fn subject(claims: Option<&Map<String, Value>>) -> Option<String> {
    claims?.get("sub")?.as_str().map(str::to_owned)
}

/// A route's token requirements with its providers resolved.
#[derive(Debug, Default)]
pub struct RoutePolicy {
    rules: RouteAuth,
    providers: Vec<Arc<Provider>>,
}

impl RoutePolicy {
    /// The route's `auth` settings.
    pub fn rules(&self) -> &RouteAuth {
        &self.rules
    }
}

/// Every provider, loaded; built with the runtime.
#[derive(Debug, Default)]
pub struct AuthRuntime {
    config: AuthConfig,
    realm: Arc<str>,
    /// Where tokens are read from.
    source: TokenSource,
    providers: Vec<Arc<Provider>>,
    /// Metadata names any provider fills from claims: stripped from client requests everywhere.
    reserved: Vec<HeaderName>,
    /// Recently verified tokens (`auth.verified_cache_size`); `None` when off.
    verified: Option<TokenCache>,
}

impl AuthRuntime {
    /// Loads every provider's keys; each failure is a config error at the provider's place.
    pub fn build(config: &AuthConfig, file: &Path) -> Result<AuthRuntime, Vec<ConfigError>> {
        AuthRuntime::build_reusing(config, file, None)
    }

    /// Like [`AuthRuntime::build`], for a reload: a provider with a remote JWKS whose config is
    /// unchanged from `previous` (its place in the file aside) is the same `Arc<Provider>`, so
    /// it keeps the keys it fetched and its refresh schedule (a reload causes no refetch storm).
    /// Providers with local key files are always rebuilt, so a reload picks up rotated files.
    pub fn build_reusing(
        config: &AuthConfig,
        file: &Path,
        previous: Option<&AuthRuntime>,
    ) -> Result<AuthRuntime, Vec<ConfigError>> {
        let mut providers = Vec::new();
        let mut errors = Vec::new();
        for p in &config.providers {
            let kept = previous
                .and_then(|prev| prev.provider(&p.name))
                .filter(|old| old.remote.is_some() && same_provider(&old.config, p));
            if let Some(kept) = kept {
                providers.push(kept.clone());
                continue;
            }
            match Provider::load(p) {
                Ok(provider) => providers.push(Arc::new(provider)),
                Err(reason) => errors.push(ConfigError {
                    file: file.to_owned(),
                    place: p.place,
                    key: format!("auth.providers.{}", p.name),
                    reason,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let reserved = config
            .providers
            .iter()
            .flat_map(|p| {
                p.claims_to_metadata
                    .iter()
                    .map(|(_, h)| h)
                    .chain(&p.payload_to_metadata)
            })
            .filter_map(|h| HeaderName::try_from(h.as_str()).ok())
            .collect();
        Ok(AuthRuntime {
            realm: Arc::from(config.realm.as_str()),
            source: TokenSource::of(config),
            config: config.clone(),
            providers,
            reserved,
            verified: TokenCache::new(config.verified_cache_size),
        })
    }

    /// The policy of a route (provider names were checked when the config was validated).
    pub fn policy(&self, rules: &RouteAuth) -> RoutePolicy {
        RoutePolicy {
            rules: rules.clone(),
            providers: self
                .providers
                .iter()
                .filter(|p| rules.providers.iter().any(|n| n == p.name()))
                .cloned()
                .collect(),
        }
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// Periodic work: drops expired tokens from the cache, refreshes remote key sets that are due.
    pub async fn maintain(&self) {
        if let Some(cache) = &self.verified {
            cache.prune();
        }
        for p in &self.providers {
            if let Some(remote) = &p.remote {
                remote.refresh_if_due(&p.keys).await;
            }
        }
    }

    fn invalid(&self, reason: impl Into<Cow<'static, str>>) -> AuthError {
        AuthError::Invalid {
            realm: self.realm.clone(),
            reason: reason.into(),
        }
    }

    /// The query without the token parameter (when one is configured), so it is neither bound
    /// to a field nor reported as unknown.
    pub fn query_without_token(&self, query: Option<&str>) -> Option<String> {
        self.source.query_without_token(query)
    }

    /// The header a token is read from (`authorization` unless configured).
    pub fn token_header(&self) -> &HeaderName {
        &self.source.header
    }

    /// Verifies the request's token as the route requires: `Ok(None)` for an anonymous request
    /// the route lets through.
    pub async fn authenticate(
        &self,
        policy: &RoutePolicy,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Verified>, AuthError> {
        if policy.rules.mode == AuthMode::None {
            return Ok(None);
        }
        let found = self.source.find(headers, query).map_err(|reason| {
            if reason.is_ambiguous() {
                AuthError::Ambiguous {
                    realm: self.realm.clone(),
                    reason,
                }
            } else {
                self.invalid(reason.to_string())
            }
        })?;
        let Some(token) = found else {
            return match policy.rules.mode {
                AuthMode::Required => Err(AuthError::Missing {
                    realm: self.realm.clone(),
                }),
                _ => Ok(None),
            };
        };
        if token.is_empty() {
            return Err(self.invalid("empty token"));
        }
        if token.len() > self.config.max_token_bytes {
            return Err(self.invalid(format!(
                "token longer than {} bytes",
                self.config.max_token_bytes
            )));
        }
        let verified = self.verify(policy, &token).await?;
        self.authorize(policy, &verified)?;
        Ok(Some(verified))
    }

    async fn verify(&self, policy: &RoutePolicy, token: &str) -> Result<Verified, AuthError> {
        if let Some(hit) = self
            .verified
            .as_ref()
            .and_then(|cache| cache.get(token, &policy.providers))
        {
            return Ok(Verified {
                provider: hit.provider,
                claims: hit.claims,
                payload: hit.payload,
            });
        }
        let seen = token::inspect(token).map_err(|r| self.invalid(r))?;
        let provider = policy
            .providers
            .iter()
            .find(|p| p.config.issuer == seen.issuer)
            .ok_or_else(|| self.invalid("untrusted issuer"))?;
        if !provider.config.algorithms.contains(&seen.alg) {
            return Err(self.invalid(format!("algorithm {:?} is not allowed", seen.alg)));
        }
        let kid = seen.kid.as_deref();
        // The key set is taken once, so a cached verification names the set that checked it.
        let mut key_set = provider.keys.load_full();
        let mut keys = provider.candidates(&key_set, seen.alg, kid);
        if keys.is_empty()
            && let Some(remote) = &provider.remote
        {
            remote.fetch_rate_limited(&provider.keys).await;
            key_set = provider.keys.load_full();
            keys = provider.candidates(&key_set, seen.alg, kid);
        }
        if keys.is_empty() {
            return Err(self.invalid(match kid {
                Some(_) => "unknown key id",
                None => "no key for this algorithm",
            }));
        }
        let validation = validation(&provider.config, seen.alg);
        let mut last = self.invalid("bad signature");
        for key in &keys {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => {
                    let verified = Verified {
                        provider: provider.clone(),
                        claims: Arc::new(data.claims),
                        payload: Arc::from(seen.payload),
                    };
                    self.remember(token, &verified, key_set);
                    return Ok(verified);
                }
                Err(e) => last = self.invalid(reason(e.kind())),
            }
        }
        Err(last)
    }

    /// Keeps a verified token in the cache, with the key set that verified it.
    fn remember(&self, token: &str, verified: &Verified, key_set: Arc<Vec<VerifyKey>>) {
        if let Some(cache) = &self.verified
            && let Some(entry) = CachedToken::new(
                verified.provider.clone(),
                key_set,
                verified.claims.clone(),
                verified.payload.clone(),
            )
        {
            cache.insert(token, entry);
        }
    }

    fn authorize(&self, policy: &RoutePolicy, verified: &Verified) -> Result<(), AuthError> {
        let forbidden = |reason: String| AuthError::Forbidden {
            realm: self.realm.clone(),
            reason,
        };
        let audiences = &verified.provider.config.audiences;
        if !audiences.is_empty()
            && !audiences
                .iter()
                .any(|a| token::claim_matches(&verified.claims, "aud", a))
        {
            return Err(forbidden("token audience not accepted".to_owned()));
        }
        let granted = token::scopes(&verified.claims);
        if let Some(missing) = policy
            .rules
            .require_scopes
            .iter()
            .find(|s| !granted.contains(&s.as_str()))
        {
            return Err(forbidden(format!("missing scope `{missing}`")));
        }
        for (name, want) in &policy.rules.require_claims {
            if !token::claim_matches(&verified.claims, name, want) {
                return Err(forbidden(format!("claim `{name}` does not match")));
            }
        }
        Ok(())
    }

    /// Outgoing metadata: client-sent copies of claim headers removed, verified claims (and the
    /// payload) added. (Which credentials cross is decided in [`crate::edge::metadata`].)
    pub fn forward(&self, metadata: &mut HeaderMap, verified: Option<&Verified>) {
        for name in &self.reserved {
            metadata.remove(name);
        }
        let Some(verified) = verified else { return };
        let config = &verified.provider.config;
        for (claim, header) in &config.claims_to_metadata {
            let text = match verified.claims.get(claim) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                Some(other) => other.to_string(),
                None => continue,
            };
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(header), HeaderValue::from_str(&text))
            {
                metadata.insert(name, value);
            }
        }
        if let Some(header) = &config.payload_to_metadata
            && let (Ok(name), Ok(value)) = (
                HeaderName::try_from(header),
                HeaderValue::from_str(&verified.payload),
            )
        {
            metadata.insert(name, value);
        }
    }
}

/// What a signature check accepts for `provider`: its issuer, `nbf` and `exp` with its clock
/// skew; audiences are checked afterwards, with a 403 of their own.
fn validation(provider: &ProviderConfig, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = provider.clock_skew.as_secs();
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_issuer(&[&provider.issuer]);
    validation
}

/// One of ten kinds for the reason of an invalid token (the texts are all written in this module
/// and `token.rs`): `expired`, `not_yet_valid`, `bad_signature`, `unknown_kid`,
/// `untrusted_issuer`, `bad_algorithm`, `oversized`, `malformed`, `bad_claims`, `other`.
fn invalid_kind(reason: &str) -> &'static str {
    match reason {
        "token expired" => "expired",
        "token not yet valid (nbf)" => "not_yet_valid",
        "bad signature" => "bad_signature",
        "unknown key id" | "no key for this algorithm" => "unknown_kid",
        "untrusted issuer" => "untrusted_issuer",
        "empty token" | "malformed claims" | "the token has a byte outside visible ASCII" => {
            "malformed"
        }
        r if r.starts_with("token longer than") => "oversized",
        r if r.contains("algorithm") => "bad_algorithm",
        r if r.starts_with("malformed")
            || r.starts_with("not a compact JWS")
            || r.ends_with("is not a JSON object") =>
        {
            "malformed"
        }
        r if r.starts_with("claim `")
            || r.starts_with("the token has no")
            || r.starts_with("the header has no")
            || r.starts_with("`kid`")
            || r.starts_with("unsupported critical") =>
        {
            "bad_claims"
        }
        _ => "other",
    }
}

fn reason(kind: &jsonwebtoken::errors::ErrorKind) -> Cow<'static, str> {
    use jsonwebtoken::errors::ErrorKind as K;
    Cow::Borrowed(match kind {
        K::InvalidSignature => "bad signature",
        K::ExpiredSignature => "token expired",
        K::ImmatureSignature => "token not yet valid (nbf)",
        K::InvalidIssuer => "untrusted issuer",
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::UnsupportedAlgorithm => {
            "algorithm does not match the key"
        }
        // `inspect` already refused these with a more precise reason; kept for safety.
        K::MissingRequiredClaim(claim) => return Cow::Owned(format!("the token has no `{claim}`")),
        K::InvalidClaimFormat(claim) => {
            return Cow::Owned(format!("claim `{claim}` has the wrong type"));
        }
        K::Base64(_) => "malformed base64url",
        K::Json(_) | K::Utf8(_) => "malformed claims",
        _ => "token rejected",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::time::Duration;

    #[test]
    fn debug_output_never_shows_url_credentials() {
        let config = AuthConfig {
            providers: vec![remote("r", "https://u:pw@127.0.0.1:9/jwks?api_key=k1", 0)],
            ..AuthConfig::default()
        };
        let runtime = AuthRuntime::build(&config, Path::new("x.yaml")).expect("builds");
        let text = format!("{runtime:?} {config:?}");
        assert!(!text.contains("pw") && !text.contains("k1"), "{text}");
        assert!(
            text.contains("https://<redacted>@127.0.0.1:9/jwks?<redacted>"),
            "{text}"
        );
    }

    #[test]
    fn debug_output_never_shows_the_shared_secret() {
        let config = ProviderConfig {
            algorithms: vec![Algorithm::HS256],
            keys: KeySource::SecretOnly,
            shared_secret: Some(Secret::new("super-secret-value-of-32-bytes!!".to_owned())),
            ..remote("hs", "http://127.0.0.1:9/jwks", 0)
        };
        let auth = AuthConfig {
            providers: vec![config],
            ..AuthConfig::default()
        };
        let runtime = AuthRuntime::build(&auth, Path::new("x.yaml")).expect("builds");
        let text = format!("{runtime:?}");
        assert!(!text.contains("super-secret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    fn remote(name: &str, url: &str, line: u64) -> ProviderConfig {
        ProviderConfig {
            name: name.to_owned(),
            issuer: name.to_owned(),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::EdDSA],
            keys: KeySource::JwksUrl(url.to_owned()),
            kid: None,
            shared_secret: None,
            clock_skew: Duration::from_secs(60),
            jwks_timeout: Duration::from_secs(5),
            jwks_refresh_interval: Duration::from_secs(600),
            jwks_min_refetch_interval: Duration::from_secs(30),
            jwks_ca: None,
            claims_to_metadata: Vec::new(),
            payload_to_metadata: None,
            place: crate::config::Place {
                line,
                ..crate::config::Place::default()
            },
        }
    }

    #[test]
    fn a_reload_keeps_unchanged_remote_providers_and_rebuilds_changed_ones() {
        let file = Path::new("x.yaml");
        let config = |kept_line, changed_url: &str| AuthConfig {
            providers: vec![
                remote("kept", "http://127.0.0.1:9/jwks", kept_line),
                remote("changed", changed_url, 20),
            ],
            ..AuthConfig::default()
        };
        let old = AuthRuntime::build(&config(3, "http://127.0.0.1:9/a"), file).expect("builds");
        // The kept provider moved down the file; the other points elsewhere now.
        let new = AuthRuntime::build_reusing(&config(7, "http://127.0.0.1:9/b"), file, Some(&old))
            .expect("builds");
        let same = |name: &str| {
            Arc::ptr_eq(
                old.provider(name).expect("old"),
                new.provider(name).expect("new"),
            )
        };
        assert!(
            same("kept"),
            "unchanged: its fetched keys and schedule carry over"
        );
        assert!(!same("changed"));
    }

    #[test]
    fn failure_reasons_map_to_a_bounded_label_set() {
        let realm: Arc<str> = Arc::from("r");
        let invalid = |reason: &'static str| AuthError::Invalid {
            realm: realm.clone(),
            reason: Cow::Borrowed(reason),
        };
        let cases = [
            ("token expired", "expired"),
            ("token not yet valid (nbf)", "not_yet_valid"),
            ("bad signature", "bad_signature"),
            ("unknown key id", "unknown_kid"),
            ("no key for this algorithm", "unknown_kid"),
            ("untrusted issuer", "untrusted_issuer"),
            ("algorithm EdDSA is not allowed", "bad_algorithm"),
            ("unsupported algorithm `none`", "bad_algorithm"),
            ("algorithm does not match the key", "bad_algorithm"),
            ("token longer than 8192 bytes", "oversized"),
            ("empty token", "malformed"),
            ("malformed base64url in the header", "malformed"),
            ("not a compact JWS (three dot-separated parts)", "malformed"),
            ("the payload is not a JSON object", "malformed"),
            ("claim `exp` has the wrong type", "bad_claims"),
            ("the token has no expiry (`exp`)", "bad_claims"),
            (
                "unsupported critical header parameters (`crit`)",
                "bad_claims",
            ),
            ("token rejected", "other"),
        ];
        for (reason, label) in cases {
            assert_eq!(invalid(reason).metric_reason(), label, "{reason}");
        }
        let missing = AuthError::Missing {
            realm: realm.clone(),
        };
        assert_eq!(missing.metric_reason(), "missing");
        let forbidden = AuthError::Forbidden {
            realm,
            reason: "missing scope".to_owned(),
        };
        assert_eq!(forbidden.metric_reason(), "insufficient_scope");
    }
}
