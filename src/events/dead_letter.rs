//! The dead-letter stream `tai-events-dlq`: where an event goes after failing a consumer group
//! `max_deliveries` times, kept (untrimmed) for inspection until it is replayed.
//!
//! A move and a replay each run as one Lua script, so a crash never leaves an event in both
//! streams or in neither: the move copies the entry (its fields, in order, plus `reason` and
//! `deliveries`) and acknowledges it on the main stream; the replay copies it back (without those
//! two) and deletes it from the dead letters. On Redis Cluster both stream names must share a
//! hash tag (`{tai-events}`, `{tai-events}-dlq`) for the scripts to run.

use redis::aio::ConnectionLike;
use redis::{Script, Value};

use super::entry::{self, Entry};
use super::event::field;
use super::stream_error::StreamError;

/// KEYS: stream, dead letters. ARGV: group, entry id, reason, deliveries.
/// Moves nothing when the entry is no longer pending in the group (another consumer moved or
/// acknowledged it first); acknowledges an entry trimmed away meanwhile. Returns the new id.
const MOVE: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then return false end
local found = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local moved = false
if #found > 0 then
  local fields = found[1][2]
  table.insert(fields, 'reason')
  table.insert(fields, ARGV[3])
  table.insert(fields, 'deliveries')
  table.insert(fields, ARGV[4])
  moved = redis.call('XADD', KEYS[2], '*', unpack(fields))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return moved
";

/// KEYS: dead letters, stream. ARGV: the dead letter's id. Returns the id on the stream.
const REPLAY: &str = r"
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local fields, kept = found[1][2], {}
for i = 1, #fields, 2 do
  if fields[i] ~= 'reason' and fields[i] ~= 'deliveries' then
    table.insert(kept, fields[i])
    table.insert(kept, fields[i + 1])
  end
end
local id = redis.call('XADD', KEYS[2], '*', unpack(kept))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
";

/// Entries read per `XRANGE` while listing.
const PAGE: usize = 500;

/// One event in the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its entry id in the dead-letter stream.
    pub id: String,
    /// The event's `event_id`.
    pub event_id: String,
    /// The event's `event_type`.
    pub event_type: String,
    /// The event's `aggregate_id`.
    pub aggregate_id: String,
    /// Why its last delivery failed.
    pub reason: String,
    /// How many deliveries failed.
    pub deliveries: u64,
}

impl DeadLetter {
    /// The dead letter an entry of the dead-letter stream holds (empty text for missing fields).
    pub fn from_entry(entry: &Entry) -> DeadLetter {
        let text = |name| entry.field(name).unwrap_or_default().to_owned();
        DeadLetter {
            id: entry.id.clone(),
            event_id: text(field::EVENT_ID),
            event_type: text(field::EVENT_TYPE),
            aggregate_id: text(field::AGGREGATE_ID),
            reason: text(field::REASON),
            deliveries: entry
                .field(field::DELIVERIES)
                .and_then(|d| d.parse().ok())
                .unwrap_or(0),
        }
    }
}

/// Moves pending entry `id` of `group` on `stream` to `dead_letters`, with `reason` and
/// `deliveries`, and acknowledges it; `Ok(None)` when it was no longer pending.
pub(crate) async fn move_entry<C: ConnectionLike>(
    conn: &mut C,
    (stream, dead_letters): (&str, &str),
    group: &str,
    id: &str,
    (reason, deliveries): (&str, u64),
) -> Result<Option<String>, StreamError> {
    let moved: Option<String> = Script::new(MOVE)
        .key(stream)
        .key(dead_letters)
        .arg(group)
        .arg(id)
        .arg(reason)
        .arg(deliveries)
        .invoke_async(conn)
        .await?;
    Ok(moved)
}

/// Every entry of `dead_letters`, oldest first.
pub async fn list<C: ConnectionLike>(
    conn: &mut C,
    dead_letters: &str,
) -> Result<Vec<Entry>, StreamError> {
    let mut all = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let reply: Value = redis::cmd("XRANGE")
            .arg(dead_letters)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let page = entry::entries(reply)?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            // `(` makes the next page start after the last entry read.
            start = format!("({}", last.id);
        }
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// Puts dead letters back on `stream`: those whose entry id or `event_id` is in `ids`, or all of
/// them when `ids` is empty. Returns each replayed dead letter with its new id on `stream`;
/// `Err(UnknownIds)` (after replaying the others) for ids matching nothing.
pub async fn replay<C: ConnectionLike>(
    conn: &mut C,
    (dead_letters, stream): (&str, &str),
    ids: &[String],
) -> Result<Vec<(DeadLetter, String)>, StreamError> {
    let letters: Vec<DeadLetter> = list(conn, dead_letters)
        .await?
        .iter()
        .map(DeadLetter::from_entry)
        .collect();
    let chosen =
        |l: &DeadLetter| ids.is_empty() || ids.iter().any(|i| *i == l.id || *i == l.event_id);
    let mut replayed = Vec::new();
    for letter in letters.into_iter().filter(chosen) {
        let new_id: Option<String> = Script::new(REPLAY)
            .key(dead_letters)
            .key(stream)
            .arg(&letter.id)
            .invoke_async(conn)
            .await?;
        // None: replayed by someone else since the listing.
        if let Some(new_id) = new_id {
            replayed.push((letter, new_id));
        }
    }
    let unknown: Vec<String> = ids
        .iter()
        .filter(|i| {
            !replayed
                .iter()
                .any(|(l, _)| l.id == **i || l.event_id == **i)
        })
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(replayed)
    } else {
        Err(StreamError::UnknownIds(unknown))
    }
}

/// The dead letters as an aligned table with a header line (`(none)` when there are none).
pub fn table(letters: &[DeadLetter]) -> String {
    let rows: Vec<[String; 5]> = letters
        .iter()
        .map(|l| {
            [
                l.event_id.clone(),
                l.event_type.clone(),
                l.aggregate_id.clone(),
                l.deliveries.to_string(),
                l.reason.replace('\n', " "),
            ]
        })
        .collect();
    let header = ["EVENT ID", "TYPE", "AGGREGATE", "DELIVERIES", "REASON"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_reads_its_fields_and_a_table_lines_them_up() {
        let entry = Entry {
            id: "7-0".into(),
            fields: [
                ("event_id", "e1"),
                ("event_type", "policy.proposed"),
                ("aggregate_id", "pol-1"),
                ("payload", "{}"),
                ("reason", "bad\npayload"),
                ("deliveries", "3"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        };
        let letter = DeadLetter::from_entry(&entry);
        assert_eq!(letter.deliveries, 3);
        assert_eq!(letter.event_type, "policy.proposed");
        let text = table(&[letter]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "EVENT ID  TYPE             AGGREGATE  DELIVERIES  REASON"
        );
        assert_eq!(
            lines[1],
            "e1        policy.proposed  pol-1      3           bad payload"
        );
        assert_eq!(
            table(&[]),
            format!(
                "{}\n(none)\n",
                "EVENT ID  TYPE  AGGREGATE  DELIVERIES  REASON"
            )
        );
    }
}
