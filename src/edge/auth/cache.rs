//! Tokens verified recently, so a client that sends the same token on every request pays for its
//! signature once (tens of microseconds of CPU; Envoy's `jwt_cache_config` does the same).
//!
//! Only tokens that passed verification are kept, keyed by the whole token text. A hit is used
//! only while it would still verify: `exp` and `nbf` are checked against the clock on every hit,
//! the provider must be one the route accepts, and the provider's key set must still be the one
//! that verified it (a JWKS refresh that drops the key makes the next request verify again).
//! Audience, scope and claim checks are per route and run on every request, hit or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::Provider;
use super::keys::VerifyKey;

/// A verified token's lasting facts.
#[derive(Debug, Clone)]
pub(super) struct CachedToken {
    pub(super) provider: Arc<Provider>,
    /// The key set the signature was checked against.
    pub(super) key_set: Arc<Vec<VerifyKey>>,
    pub(super) claims: Arc<Map<String, Value>>,
    pub(super) payload: Arc<str>,
    expires_at: u64,
    not_before: Option<u64>,
}

impl CachedToken {
    /// The facts of a token that just verified; `None` when its `exp`/`nbf` are not whole
    /// seconds (such a token is simply verified every time).
    pub(super) fn new(
        provider: Arc<Provider>,
        key_set: Arc<Vec<VerifyKey>>,
        claims: Arc<Map<String, Value>>,
        payload: Arc<str>,
    ) -> Option<CachedToken> {
        let expires_at = claims.get("exp")?.as_u64()?;
        let not_before = match claims.get("nbf") {
            None => None,
            Some(v) => Some(v.as_u64()?),
        };
        Some(CachedToken {
            provider,
            key_set,
            claims,
            payload,
            expires_at,
            not_before,
        })
    }

    /// Whether the token would still pass the time checks at `now` (Unix seconds) with the
    /// provider's clock skew, exactly as verification applies them.
    fn in_time(&self, now: u64) -> bool {
        let skew = self.provider.config.clock_skew.as_secs();
        self.expires_at.saturating_add(skew) >= now
            && self
                .not_before
                .is_none_or(|nbf| nbf <= now.saturating_add(skew))
    }
}

/// Verified tokens by their text, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<Box<str>, CachedToken>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Removes every token whose `exp` (plus clock skew) has passed.
fn drop_expired(entries: &mut HashMap<Box<str>, CachedToken>) {
    let now = unix_now();
    entries.retain(|_, t| t.in_time(now));
}

impl TokenCache {
    /// A cache of up to `capacity` tokens; `None` when the capacity is 0 (caching off).
    pub(super) fn new(capacity: usize) -> Option<TokenCache> {
        (capacity > 0).then(|| TokenCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The verified facts of `token` if they still hold for a route accepting `providers`.
    pub(super) fn get(&self, token: &str, providers: &[Arc<Provider>]) -> Option<CachedToken> {
        let hit = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries.get(token)?.clone()
        };
        let current_keys = hit.provider.keys.load();
        let usable = providers.iter().any(|p| Arc::ptr_eq(p, &hit.provider))
            && Arc::ptr_eq(&hit.key_set, &current_keys)
            && hit.in_time(unix_now());
        usable.then_some(hit)
    }

    /// Remembers a token that just verified; when full, expired tokens go first, then an
    /// arbitrary one.
    pub(super) fn insert(&self, token: &str, verified: CachedToken) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            drop_expired(&mut entries);
            if entries.len() >= self.capacity
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(token.into(), verified);
    }

    /// Drops tokens that have expired (the maintenance task calls this).
    pub(super) fn prune(&self) {
        drop_expired(&mut self.entries.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Tokens held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::config::{
        AuthConfig, AuthMode, KeySource, Place, ProviderConfig, RouteAuth, Secret,
    };
    use crate::edge::auth::{AuthError, AuthRuntime};

    const SECRET: &str = "a-shared-secret-of-at-least-32-bytes";

    fn provider(name: &str, keys: KeySource, algorithm: Algorithm) -> ProviderConfig {
        ProviderConfig {
            name: name.to_owned(),
            issuer: name.to_owned(),
            audiences: Vec::new(),
            algorithms: vec![algorithm],
            shared_secret: matches!(keys, KeySource::SecretOnly)
                .then(|| Secret::new(SECRET.to_owned())),
            keys,
            kid: None,
            clock_skew: Duration::ZERO,
            jwks_timeout: Duration::from_secs(5),
            jwks_refresh_interval: Duration::from_secs(600),
            jwks_min_refetch_interval: Duration::from_secs(30),
            jwks_ca: None,
            claims_to_metadata: Vec::new(),
            payload_to_metadata: None,
            place: Place::default(),
        }
    }

    fn runtime(cache_size: usize) -> AuthRuntime {
        let ed_pem = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev-jwt/public.pem");
        let config = AuthConfig {
            verified_cache_size: cache_size,
            providers: vec![
                provider("hs", KeySource::SecretOnly, Algorithm::HS256),
                provider("ed", KeySource::PemFile(ed_pem), Algorithm::EdDSA),
            ],
            ..AuthConfig::default()
        };
        AuthRuntime::build(&config, Path::new("g.yaml")).expect("providers load")
    }

    fn route(providers: &[&str], scopes: &[&str]) -> RouteAuth {
        RouteAuth {
            mode: AuthMode::Required,
            providers: providers.iter().map(|p| (*p).to_owned()).collect(),
            require_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            require_claims: Vec::new(),
            forward_authorization: false,
        }
    }

    fn hs_token(issuer: &str, exp: u64, scope: &str) -> String {
        let claims = json!({"iss": issuer, "sub": "alice", "exp": exp, "scope": scope});
        let key = EncodingKey::from_secret(SECRET.as_bytes()).expect("hmac key");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign")
    }

    fn ed_token(exp: u64) -> String {
        let pem =
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev-jwt/private.pem"))
                .expect("dev key");
        let key = EncodingKey::from_ed_pem(&pem).expect("ed25519 key");
        let claims = json!({"iss": "ed", "sub": "bob", "exp": exp});
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("sign")
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        headers.insert("authorization", value);
        headers
    }

    fn cache(auth: &AuthRuntime) -> &TokenCache {
        auth.verified.as_ref().expect("cache on")
    }

    #[tokio::test]
    async fn a_repeated_token_is_served_from_the_cache_and_still_checked_per_route() {
        let auth = runtime(16);
        let token = hs_token("hs", unix_now() + 600, "read write");
        let writer = auth.policy(&route(&["hs"], &["write"]));
        let first = auth.authenticate(&writer, &bearer(&token), None).await;
        assert_eq!(
            first.expect("valid").expect("verified").claims["sub"],
            "alice"
        );
        assert_eq!(cache(&auth).len(), 1);
        assert!(cache(&auth).get(&token, &writer.providers).is_some());
        let again = auth.authenticate(&writer, &bearer(&token), None).await;
        assert_eq!(
            again.expect("valid").expect("verified").claims["sub"],
            "alice"
        );
        // A hit still gets the route's own scope check ...
        let admin = auth.policy(&route(&["hs"], &["admin"]));
        let refused = auth.authenticate(&admin, &bearer(&token), None).await;
        assert!(
            matches!(refused, Err(AuthError::Forbidden { .. })),
            "{refused:?}"
        );
        // ... and is no use on a route that does not accept its provider.
        let other = auth.policy(&route(&["ed"], &[]));
        assert!(cache(&auth).get(&token, &other.providers).is_none());
        let refused = auth.authenticate(&other, &bearer(&token), None).await;
        assert!(
            matches!(refused, Err(AuthError::Invalid { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_cached_token_is_refused_once_the_key_that_verified_it_is_gone() {
        let auth = runtime(16);
        let token = ed_token(unix_now() + 600);
        let policy = auth.policy(&route(&["ed"], &[]));
        assert!(
            auth.authenticate(&policy, &bearer(&token), None)
                .await
                .is_ok()
        );
        assert!(cache(&auth).get(&token, &policy.providers).is_some());
        // What a JWKS refresh that no longer publishes the key does.
        auth.provider("ed")
            .expect("ed")
            .keys
            .store(Arc::new(Vec::new()));
        assert!(cache(&auth).get(&token, &policy.providers).is_none());
        let refused = auth.authenticate(&policy, &bearer(&token), None).await;
        assert!(
            matches!(refused, Err(AuthError::Invalid { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn time_checks_on_a_hit_match_verification_with_the_clock_skew() {
        let auth = runtime(16);
        let provider = auth.provider("hs").expect("hs").clone();
        let entry = |exp: u64, nbf: Option<u64>| {
            let mut claims = Map::new();
            claims.insert("exp".to_owned(), json!(exp));
            if let Some(nbf) = nbf {
                claims.insert("nbf".to_owned(), json!(nbf));
            }
            let key_set = provider.keys.load_full();
            CachedToken::new(provider.clone(), key_set, Arc::new(claims), Arc::from("p"))
                .expect("whole seconds")
        };
        // clock_skew is 0 for these providers.
        assert!(entry(1000, None).in_time(1000));
        assert!(!entry(1000, None).in_time(1001));
        assert!(entry(1000, Some(900)).in_time(900));
        assert!(!entry(1000, Some(900)).in_time(899));
        let mut claims = Map::new();
        claims.insert("exp".to_owned(), json!(1000.5));
        let key_set = provider.keys.load_full();
        let fractional = CachedToken::new(provider.clone(), key_set, Arc::new(claims), "p".into());
        assert!(fractional.is_none(), "verified every time instead");
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_size_zero_turns_it_off() {
        assert!(TokenCache::new(0).is_none());
        let auth = runtime(2);
        let provider = auth.provider("hs").expect("hs").clone();
        let cache = cache(&auth);
        for n in 0..5 {
            let mut claims = Map::new();
            claims.insert("exp".to_owned(), json!(unix_now() + 600));
            let key_set = provider.keys.load_full();
            let entry = CachedToken::new(provider.clone(), key_set, Arc::new(claims), "p".into())
                .expect("entry");
            cache.insert(&format!("token-{n}"), entry);
            assert!(cache.len() <= 2);
        }
        assert_eq!(cache.len(), 2);
        assert!(runtime(0).verified.is_none());
    }
}
