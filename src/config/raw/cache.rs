//! The YAML shape of the response cache: `routes[].cache` (which GET answers a route caches, and
//! what its writes invalidate besides their own paths) and the top-level `cache:` bounds of the
//! in-process tier.

use serde::Deserialize;

use super::At;

/// `routes[].cache:` the route's GET answers are cached (cache-aside).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteCache {
    #[serde(default)]
    pub(crate) ttl: Option<At<String>>,
    #[serde(default)]
    pub(crate) per_subject: Option<bool>,
    #[serde(default)]
    pub(crate) vary: Vec<At<String>>,
    #[serde(default)]
    pub(crate) invalidates: Vec<At<String>>,
}

/// `cache:` bounds of the in-process tier, shared by every caching route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    #[serde(default)]
    pub(crate) max_entries: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_bytes: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_entry_bytes: Option<At<String>>,
}
