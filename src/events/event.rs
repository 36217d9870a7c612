//! One domain event: what a successful write through the gateway tells the rest of the system
//! (the TAI design's `tai-events` topic). The same record is written to the outbox spool, to a
//! Redis Stream entry (each attribute a field of its own beside the JSON payload, so `XRANGE`
//! and consumers can filter without parsing it) and to the local JSON-lines file.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The stream every event goes to.
pub const STREAM: &str = "tai-events";
/// Where events go after failing a consumer `max_deliveries` times.
pub const DEAD_LETTERS: &str = "tai-events-dlq";

/// Field names of a stream entry: the attributes, then the whole event as JSON.
pub mod field {
    /// Unique, time-ordered id (consumers drop duplicates by it).
    pub const EVENT_ID: &str = "event_id";
    /// `policy.proposed`, `tai.Governor/ProposePolicy`, ...
    pub const EVENT_TYPE: &str = "event_type";
    /// The aggregate the event is about (a policy id, ...).
    pub const AGGREGATE_ID: &str = "aggregate_id";
    /// RFC 3339 time the write was answered.
    pub const TIME: &str = "time";
    /// The whole event as JSON.
    pub const PAYLOAD: &str = "payload";
    /// DLQ entries: why the last delivery failed.
    pub const REASON: &str = "reason";
    /// DLQ entries: how many deliveries failed.
    pub const DELIVERIES: &str = "deliveries";
}

/// A domain event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and time-ordered: 16 hex digits of Unix milliseconds, then 16 of a per-process
    /// random prefix plus a counter (so ids sort by time and never repeat).
    pub event_id: String,
    /// What happened.
    pub event_type: String,
    /// The aggregate it happened to (empty when the configured field was absent).
    pub aggregate_id: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The route (its name in the config).
    pub route: String,
    /// The gRPC method written through (`tai.Governor/ProposePolicy`).
    pub method: String,
    /// `sub` of the verified token, if any.
    pub subject: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// The request message as JSON (configured fields dropped).
    pub request: Value,
    /// The response message as JSON (configured fields dropped).
    pub response: Value,
}

impl Event {
    /// The stream entry's fields, in order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            (field::EVENT_ID, self.event_id.clone()),
            (field::EVENT_TYPE, self.event_type.clone()),
            (field::AGGREGATE_ID, self.aggregate_id.clone()),
            (field::TIME, self.time.clone()),
            (
                field::PAYLOAD,
                serde_json::to_string(self).unwrap_or_default(),
            ),
        ]
    }
}

/// Makes event ids: Unix milliseconds, then a per-process random prefix and a counter.
#[derive(Debug)]
pub struct EventIds {
    prefix: u32,
    counter: AtomicU64,
}

impl Default for EventIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        EventIds {
            prefix: hasher.finish() as u32,
            counter: AtomicU64::new(0),
        }
    }
}

impl EventIds {
    /// The next id, at `now`.
    pub fn next(&self, now: SystemTime) -> String {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let n = self.counter.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        let mut id = String::with_capacity(32);
        let _ = write!(id, "{ms:016x}{:08x}{n:08x}", self.prefix);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_unique_and_sort_by_time() {
        let ids = EventIds::default();
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_000);
        let a = ids.next(t);
        let b = ids.next(t);
        let c = ids.next(t + Duration::from_millis(1));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a < c && b < c);
    }
}
