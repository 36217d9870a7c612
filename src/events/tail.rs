//! `tail`: a read-only follower of the stream for operators. It reads with `XREAD` (no group, so
//! it acknowledges nothing and takes nothing from any consumer), from now or from the start,
//! and keeps the entries a [`Filter`] lets through.

use std::time::Duration;

use redis::Value;

use super::entry::{self, Entry};
use super::event::field;
use super::stream_error::StreamError;
use crate::config::RedisConfig;
use crate::state::Dedicated;

/// Longest `BLOCK` of one read.
const BLOCK: Duration = Duration::from_secs(5);
/// Entries read per `XREAD`.
const BATCH: usize = 500;

/// Which entries a follower keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `event_type` equal to this, or starting with what comes before a trailing `*`
    /// (`policy.*`); any type when `None`.
    pub event_type: Option<String>,
    /// `aggregate_id` equal to this; any when `None`.
    pub aggregate: Option<String>,
}

impl Filter {
    /// True when `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        let event_type = entry.field(field::EVENT_TYPE).unwrap_or_default();
        let type_ok = match self.event_type.as_deref() {
            None => true,
            Some(wanted) => match wanted.strip_suffix('*') {
                Some(prefix) => event_type.starts_with(prefix),
                None => event_type == wanted,
            },
        };
        let aggregate_ok = self
            .aggregate
            .as_deref()
            .is_none_or(|wanted| entry.field(field::AGGREGATE_ID) == Some(wanted));
        type_ok && aggregate_ok
    }
}

/// Where a follower starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With the entries written from now on.
    Now,
    /// With the oldest entry the stream still holds.
    Oldest,
}

/// How `tail` prints an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `time  event_type  aggregate_id  event_id`.
    Line,
    /// The event's JSON (its payload), for `jq`.
    Json,
}

impl Format {
    /// `entry` as one line (no newline).
    pub fn render(self, entry: &Entry) -> String {
        let get = |name| entry.field(name).unwrap_or("-");
        match self {
            Format::Line => format!(
                "{}  {}  {}  {}",
                get(field::TIME),
                get(field::EVENT_TYPE),
                get(field::AGGREGATE_ID),
                get(field::EVENT_ID)
            ),
            Format::Json => get(field::PAYLOAD).replace(['\n', '\r'], " "),
        }
    }
}

/// Follows `stream` from `start`, calling `emit` with each entry `filter` lets through, until a
/// Redis call fails (it never returns `Ok` by itself; drop it to stop).
pub async fn follow(
    redis: &RedisConfig,
    stream: &str,
    start: Start,
    filter: &Filter,
    mut emit: impl FnMut(&Entry),
) -> Result<(), StreamError> {
    let mut conn = Dedicated::open(redis, BLOCK + Duration::from_secs(5)).await?;
    let mut last = match start {
        Start::Now => newest_id(&mut conn, stream).await?,
        Start::Oldest => "0-0".to_owned(),
    };
    loop {
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(stream)
            .arg(&last)
            .query_async(&mut conn)
            .await?;
        for entry in entry::read_reply(reply)? {
            if filter.matches(&entry) {
                emit(&entry);
            }
            last = entry.id;
        }
    }
}

/// The id of the stream's newest entry (`0-0` when empty). Read once instead of passing `$` to
/// every `XREAD`, which would skip entries written between two reads.
async fn newest_id(conn: &mut Dedicated, stream: &str) -> Result<String, StreamError> {
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(entry::entries(reply)?
        .pop()
        .map_or_else(|| "0-0".to_owned(), |e| e.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event_type: &str, aggregate: &str) -> Entry {
        Entry {
            id: "1-0".into(),
            fields: vec![
                ("event_type".into(), event_type.into()),
                ("aggregate_id".into(), aggregate.into()),
            ],
        }
    }

    #[test]
    fn filters_by_type_prefix_and_aggregate() {
        let filter = |t: Option<&str>, a: Option<&str>| Filter {
            event_type: t.map(str::to_owned),
            aggregate: a.map(str::to_owned),
        };
        let e = entry("policy.proposed", "pol-1");
        assert!(filter(None, None).matches(&e));
        assert!(filter(Some("policy.proposed"), None).matches(&e));
        assert!(filter(Some("policy.*"), Some("pol-1")).matches(&e));
        assert!(!filter(Some("policy"), None).matches(&e));
        assert!(!filter(Some("action.*"), None).matches(&e));
        assert!(!filter(None, Some("pol-2")).matches(&e));
    }

    #[test]
    fn renders_a_line_with_dashes_for_missing_fields() {
        let e = entry("policy.revoked", "pol-3");
        assert_eq!(Format::Line.render(&e), "-  policy.revoked  pol-3  -");
        assert_eq!(Format::Json.render(&e), "-");
    }
}
