//! The validated event-stream settings: what a route's writes emit ([`RouteEventsConfig`]) and
//! the outbox and destinations every event shares ([`EventsConfig`]).

use std::path::PathBuf;
use std::time::Duration;

use super::error::Located;

/// `events.retention` when absent: the TAI design keeps a week of events.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The smallest `events.max_event_bytes`: room for an event's attributes once its messages are
/// truncated (the truncation rule keeps every attribute under 1 KiB).
pub const MIN_EVENT_BYTES: usize = 8 << 10;

/// When the answer to a write waits for its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The answer waits until the event is in the fsync'ed spool; a full spool refuses the
    /// write with 503 before the backend is called (the default: no event is ever lost).
    BeforeResponse,
    /// The event is handed to the spool without waiting; one that does not fit is dropped and
    /// counted.
    BestEffort,
}

impl Durability {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Durability::BeforeResponse => "before_response",
            Durability::BestEffort => "best_effort",
        }
    }
}

/// What one method's events say (a route's `events.methods` entry, or the route's own keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventShape {
    /// `event_type`; `None`: the method's name (`tai.Governor/ProposePolicy`).
    pub event_type: Option<String>,
    /// Where `aggregate_id` comes from: `request.<field>`, `response.<field>` or `path.<var>`.
    pub aggregate_id: Option<Located<String>>,
    /// Fields left out of the event's messages (`request.<field>` / `response.<field>`).
    pub drop_fields: Vec<Located<String>>,
}

/// `routes[].events`: the route's successful unary writes (non-GET rules) emit one event each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEventsConfig {
    /// Whether the answer waits for the spool.
    pub durability: Durability,
    /// The route's own shape, for methods without an entry of their own.
    pub shape: EventShape,
    /// Per method (`pkg.Service/Method`): its shape (unset keys taken from the route's; its
    /// `drop_fields` added to the route's).
    pub methods: Vec<(Located<String>, EventShape)>,
}

/// `events:` the outbox spool and where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// Folder of the spool's segment files (one gateway process per folder).
    pub spool_dir: PathBuf,
    /// Bytes of unpublished events the spool holds at most.
    pub max_spool_bytes: u64,
    /// A larger event is truncated by the documented rule (its messages replaced by markers).
    pub max_event_bytes: usize,
    /// Stream entries older than this are trimmed (Redis).
    pub retention: Duration,
    /// The Redis stream events are added to.
    pub stream: String,
    /// The stream consumers move events to after failing them too often.
    pub dead_letter_stream: String,
    /// Without `redis:`, the JSON-lines file events are appended to.
    pub file: PathBuf,
}

impl EventsConfig {
    /// The defaults, with paths in the folder `base` (the config file's).
    pub fn defaults_in(base: &std::path::Path) -> EventsConfig {
        EventsConfig {
            spool_dir: base.join("events-spool"),
            max_spool_bytes: 256 << 20,
            max_event_bytes: 256 << 10,
            retention: DEFAULT_EVENT_RETENTION,
            stream: crate::events::event::STREAM.to_owned(),
            dead_letter_stream: crate::events::event::DEAD_LETTERS.to_owned(),
            file: base.join("events.jsonl"),
        }
    }
}
