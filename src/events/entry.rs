//! A stream entry as consumers see it (its id and fields, in the order they were written), and the
//! reading of the replies that carry entries: `XRANGE`, `XCLAIM`, `XREAD` and `XREADGROUP`.
//!
//! Parsed from [`redis::Value`] by hand rather than through the crate's `StreamId`, whose field
//! map loses the order: a dead letter or a replay copies the fields as they were.

use redis::Value;

use super::event::{Event, field};
use super::stream_error::StreamError;

/// One entry of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream id Redis gave it (`1764000000000-0`).
    pub id: String,
    /// Its fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Entry {
    /// The value of field `name`, if the entry has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The event its `payload` field holds.
    pub fn event(&self) -> Result<Event, String> {
        let payload = self
            .field(field::PAYLOAD)
            .ok_or_else(|| format!("entry {} has no `{}` field", self.id, field::PAYLOAD))?;
        serde_json::from_str(payload).map_err(|e| format!("entry {}: payload: {e}", self.id))
    }
}

/// The entries of an `XRANGE` or `XCLAIM` reply: `[[id, [field, value, …]], …]`. An entry
/// deleted while pending comes back as nil from some Redis versions: skipped.
pub(crate) fn entries(reply: Value) -> Result<Vec<Entry>, StreamError> {
    items(reply, "entries")?
        .into_iter()
        .filter(|item| !matches!(item, Value::Nil))
        .map(entry)
        .collect()
}

/// The entries of an `XREAD`/`XREADGROUP` reply for one stream: nil when `BLOCK` ran out,
/// else `[[stream, entries]]` (a map of stream to entries in RESP3).
pub(crate) fn read_reply(reply: Value) -> Result<Vec<Entry>, StreamError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        other => items(other, "streams")?
            .into_iter()
            .map(|pair| {
                let [_, entries] = pair_of(pair, "stream")?;
                Ok(entries)
            })
            .collect::<Result<Vec<_>, StreamError>>()?,
    };
    let mut all = Vec::new();
    for stream in streams {
        all.extend(entries(stream)?);
    }
    Ok(all)
}

/// `[id, [field, value, …]]`.
fn entry(item: Value) -> Result<Entry, StreamError> {
    let [id, flat] = pair_of(item, "entry")?;
    let flat = match flat {
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => items(other, "fields")?,
    };
    if flat.len() % 2 != 0 {
        return Err(StreamError::Reply("odd number of field items".to_owned()));
    }
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
        fields.push((text(k)?, text(v)?));
    }
    Ok(Entry {
        id: text(id)?,
        fields,
    })
}

/// The items of an array reply.
pub(crate) fn items(value: Value, what: &str) -> Result<Vec<Value>, StreamError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(StreamError::Reply(format!("{what}: {other:?}"))),
    }
}

/// The two items of a two-item array.
fn pair_of(value: Value, what: &str) -> Result<[Value; 2], StreamError> {
    let items = items(value, what)?;
    <[Value; 2]>::try_from(items)
        .map_err(|items| StreamError::Reply(format!("{what}: {} items, not 2", items.len())))
}

/// A string reply (bulk, simple or verbatim).
pub(crate) fn text(value: Value) -> Result<String, StreamError> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes)
            .map_err(|_| StreamError::Reply("a string that is not UTF-8".to_owned())),
        Value::SimpleString(s) => Ok(s),
        Value::VerbatimString { text, .. } => Ok(text),
        other => Err(StreamError::Reply(format!("not a string: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn raw_entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn reads_entries_with_fields_in_order() {
        let reply = Value::Array(vec![
            raw_entry("1-0", &["b", "2", "a", "1"]),
            Value::Nil,
            raw_entry("2-0", &[]),
        ]);
        let got = entries(reply).expect("entries");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, "1-0");
        assert_eq!(
            got[0].fields,
            [("b".into(), "2".into()), ("a".into(), "1".into())]
        );
        assert_eq!(got[0].field("a"), Some("1"));
        assert_eq!(got[1].field("a"), None);
    }

    #[test]
    fn reads_a_stream_read_reply_and_a_timed_out_block() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("tai-events"),
            Value::Array(vec![raw_entry("5-1", &["k", "v"])]),
        ])]);
        let got = read_reply(reply).expect("read");
        assert_eq!(got[0].id, "5-1");
        assert!(read_reply(Value::Nil).expect("nil").is_empty());
    }

    #[test]
    fn rejects_an_odd_field_list() {
        let reply = Value::Array(vec![raw_entry("1-0", &["lonely"])]);
        assert!(matches!(entries(reply), Err(StreamError::Reply(_))));
    }

    #[test]
    fn an_entry_without_a_payload_is_not_an_event() {
        let e = Entry {
            id: "1-0".into(),
            fields: vec![],
        };
        assert!(e.event().unwrap_err().contains("payload"));
    }
}
