//! The validated edge security settings: JWT providers (`auth:`), named rate limits
//! (`rate_limits:`), and what each route asks of them. Keys are loaded later, when the runtime is
//! built; [`Secret`] keeps shared secrets out of logs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Place;

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

/// Where a provider's verification keys come from. `Debug` shows a JWKS URL redacted.
#[derive(Clone, PartialEq, Eq)]
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

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::SecretOnly => f.write_str("SecretOnly"),
            KeySource::PemFile(path) => f.debug_tuple("PemFile").field(path).finish(),
            KeySource::JwksFile(path) => f.debug_tuple("JwksFile").field(path).finish(),
            KeySource::JwksUrl(url) => f
                .debug_tuple("JwksUrl")
                .field(&super::redact_url(url))
                .finish(),
        }
    }
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
    /// PEM file of CA certificates an `https://` JWKS server may also chain to, besides the
    /// web PKI roots (a private identity provider, a test server).
    pub jwks_ca: Option<PathBuf>,
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
    /// Most keys (clients, subjects, header values) it holds state for; when full, the least
    /// recently used key is evicted.
    pub max_keys: usize,
    /// Longest `header:`/`claim:` value counted; a longer one is refused with 400.
    pub max_key_bytes: usize,
    /// One budget per replica (`local`) or one budget for the whole fleet through Redis.
    pub scope: LimitScope,
    /// What a global limit does when Redis cannot be asked.
    pub on_redis_error: OnRedisError,
}

/// Whose budget a limit is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LimitScope {
    /// Each replica counts on its own (the default; no Redis needed).
    #[default]
    Local,
    /// One budget across every replica sharing the Redis of the `redis:` section.
    Global,
}

/// What a global limit does while Redis is unreachable or slow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnRedisError {
    /// Counts locally with the budget divided by the live replicas (the default).
    #[default]
    Local,
    /// Admits the request.
    Open,
    /// Refuses it with 503.
    Closed,
}

impl LimitConfig {
    /// Default of `rate_limits.max_keys`: about 7 MB of state per limit at most (≈ 65 bytes a key,
    /// `cargo bench --bench edge`).
    pub const DEFAULT_MAX_KEYS: usize = 100_000;
    /// Default of `rate_limits.max_key_bytes`: room for API keys, UUIDs, e-mail addresses
    /// (≤ 254 bytes) and most bearer tokens, far below what a flood of distinct huge values needs.
    pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;
}

/// Validated `rate_limits:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Proxies in front of the gateway whose `X-Forwarded-For` entries are trusted.
    pub trusted_proxy_hops: u32,
    /// How often idle keys are dropped.
    pub prune_interval: Duration,
    /// `max_keys` of limits that do not set their own.
    pub max_keys: usize,
    /// `max_key_bytes` of limits that do not set their own.
    pub max_key_bytes: usize,
    /// Named limits, in name order.
    pub limits: Vec<LimitConfig>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            trusted_proxy_hops: 0,
            prune_interval: Duration::from_secs(60),
            max_keys: LimitConfig::DEFAULT_MAX_KEYS,
            max_key_bytes: LimitConfig::DEFAULT_MAX_KEY_BYTES,
            limits: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }
}
