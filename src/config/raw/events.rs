//! The YAML shape of the event stream: `routes[].events` (which writes of a route emit an event,
//! of which type, about which aggregate, without which fields) and the top-level `events:`
//! section (the outbox spool, the size bounds, retention, where events go).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::At;

/// `routes[].events:` successful writes through the route emit an event.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteEvents {
    #[serde(default)]
    pub(crate) durability: Option<At<String>>,
    #[serde(default, rename = "type")]
    pub(crate) event_type: Option<At<String>>,
    #[serde(default)]
    pub(crate) aggregate_id: Option<At<String>>,
    #[serde(default)]
    pub(crate) drop_fields: Vec<At<String>>,
    /// Per method (bare name or `pkg.Service/Method`): its own type, aggregate, dropped fields.
    #[serde(default)]
    pub(crate) methods: BTreeMap<String, RawMethodEvents>,
}

/// `routes[].events.methods.<Method>:` what one method's events say, over the route's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMethodEvents {
    #[serde(default, rename = "type")]
    pub(crate) event_type: Option<At<String>>,
    #[serde(default)]
    pub(crate) aggregate_id: Option<At<String>>,
    #[serde(default)]
    pub(crate) drop_fields: Vec<At<String>>,
}

/// `events:` the outbox and where events are published.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvents {
    #[serde(default)]
    pub(crate) spool_dir: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_spool_bytes: Option<At<String>>,
    #[serde(default)]
    pub(crate) max_event_bytes: Option<At<String>>,
    #[serde(default)]
    pub(crate) retention: Option<At<String>>,
    #[serde(default)]
    pub(crate) stream: Option<At<String>>,
    #[serde(default)]
    pub(crate) dead_letter_stream: Option<At<String>>,
    #[serde(default)]
    pub(crate) file: Option<At<String>>,
}
