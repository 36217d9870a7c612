//! The YAML shape of the edge security sections: `auth:`, `rate_limits:`, and what each route asks
//! of them (`routes[].auth`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::At;

/// `auth:` JWT providers and where tokens are read from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    #[serde(default)]
    pub(crate) realm: Option<String>,
    #[serde(default)]
    pub(crate) max_token_bytes: Option<At<String>>,
    #[serde(default)]
    pub(crate) verified_cache_size: Option<At<u32>>,
    #[serde(default)]
    pub(crate) token: Option<RawTokenSource>,
    #[serde(default)]
    pub(crate) providers: BTreeMap<String, RawProvider>,
}

/// `auth.token:` where a request's token is read from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokenSource {
    #[serde(default)]
    pub(crate) header: Option<At<String>>,
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    #[serde(default)]
    pub(crate) query_parameter: Option<String>,
}

/// `auth.providers.<name>:` one token issuer and where its keys come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) issuer: At<String>,
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<At<String>>,
    #[serde(default)]
    pub(crate) pem_file: Option<At<String>>,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    #[serde(default)]
    pub(crate) jwks_file: Option<At<String>>,
    #[serde(default)]
    pub(crate) jwks_url: Option<At<String>>,
    #[serde(default)]
    pub(crate) jwks_ca: Option<At<String>>,
    #[serde(default)]
    pub(crate) shared_secret: Option<At<String>>,
    #[serde(default)]
    pub(crate) clock_skew: Option<At<String>>,
    #[serde(default)]
    pub(crate) jwks_timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) jwks_refresh_interval: Option<At<String>>,
    #[serde(default)]
    pub(crate) jwks_min_refetch_interval: Option<At<String>>,
    #[serde(default)]
    pub(crate) claims_to_metadata: BTreeMap<String, At<String>>,
    #[serde(default)]
    pub(crate) payload_to_metadata: Option<At<String>>,
}

/// `routes[].auth:` what a route requires of a request's token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteAuth {
    pub(crate) mode: At<String>,
    #[serde(default)]
    pub(crate) providers: Vec<At<String>>,
    #[serde(default)]
    pub(crate) require_scopes: Vec<String>,
    #[serde(default)]
    pub(crate) require_claims: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) forward_authorization: bool,
}

/// `rate_limits:` named limits routes refer to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimits {
    #[serde(default)]
    pub(crate) trusted_proxy_hops: u32,
    #[serde(default)]
    pub(crate) prune_interval: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_keys: Option<At<u32>>,
    #[serde(default)]
    pub(crate) max_key_bytes: Option<At<u32>>,
    #[serde(default)]
    pub(crate) limits: BTreeMap<String, RawLimit>,
}

/// `rate_limits.limits.<name>:` one named limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimit {
    pub(crate) rate: At<String>,
    pub(crate) burst: At<u32>,
    pub(crate) key: At<String>,
    #[serde(default)]
    pub(crate) max_keys: Option<At<u32>>,
    #[serde(default)]
    pub(crate) max_key_bytes: Option<At<u32>>,
    #[serde(default)]
    pub(crate) scope: Option<At<String>>,
    #[serde(default)]
    pub(crate) on_redis_error: Option<At<String>>,
}
