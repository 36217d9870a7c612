//! The audit subscriber: every event, once, as a line of an append-only JSON-lines file.
//!
//! A line is written and `fsync`ed before its entry is acknowledged, so an acknowledged event is
//! on disk. A crash between the two makes Redis deliver the entry again; the log remembers the
//! event ids it holds (the last MiB of the file at start, then what it writes) and does not write
//! one twice. An event that cannot be audited (no payload, a payload that is not a JSON object)
//! fails its delivery and ends in the dead letters; a file that cannot be written stops the
//! consumer instead, with the entry left pending, since no other event could be audited either.

use std::collections::{HashSet, VecDeque};
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::consume::{Consumer, Delivery, HandleError, Handler};
use super::event::field;
use super::redelivery::ConsumerOptions;
use super::stream_error::StreamError;
use crate::config::RedisConfig;

/// How much of an existing file's end is read at start for the event ids it holds: more than
/// any batch that can be written and not yet acknowledged when a consumer stops.
const TAIL_READ: u64 = 1 << 20;
/// Event ids remembered to drop redelivered duplicates.
const REMEMBERED: usize = 100_000;

/// The audit log file, as a [`Handler`].
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: tokio::fs::File,
    seen: Seen,
}

impl AuditLog {
    /// Opens (creating) the file to append to. A last line cut short by a crash is ended first,
    /// so the next line starts on a line of its own.
    pub async fn open(path: &Path) -> Result<AuditLog, StreamError> {
        let fail = |source| StreamError::File {
            path: path.to_owned(),
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .await
            .map_err(fail)?;
        let tail = read_tail(&mut file).await.map_err(fail)?;
        if !tail.is_empty() && !tail.ends_with('\n') {
            file.write_all(b"\n").await.map_err(fail)?;
            file.sync_data().await.map_err(fail)?;
        }
        let mut seen = Seen::default();
        for id in tail.lines().filter_map(event_id_of_line) {
            seen.insert(id);
        }
        Ok(AuditLog {
            path: path.to_owned(),
            file,
            seen,
        })
    }

    /// Appends `line` and a newline, then `fsync`s.
    async fn append(&mut self, line: &str) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes).await?;
        self.file.flush().await?;
        self.file.sync_data().await
    }
}

impl Handler for AuditLog {
    async fn handle(&mut self, delivery: &Delivery) -> Result<(), HandleError> {
        let entry = &delivery.entry;
        let event_id = entry.field(field::EVENT_ID).unwrap_or_default();
        if !event_id.is_empty() && self.seen.contains(event_id) {
            return Ok(());
        }
        let payload = entry
            .field(field::PAYLOAD)
            .ok_or_else(|| format!("no `{}` field", field::PAYLOAD))?;
        let line = audit_line(payload)?;
        self.append(&line).await.map_err(|e| {
            HandleError::Fatal(format!("cannot write {}: {e}", self.path.display()))
        })?;
        if !event_id.is_empty() {
            self.seen.insert(event_id.to_owned());
        }
        Ok(())
    }
}

/// Reads `tai-events` in `options`' group, appending each event to the audit file `out`, until
/// `shutdown` resolves (the library form of `tai-gateway events audit`); with `metrics`, serves
/// the consumer's `GET /metrics` there meanwhile.
pub async fn audit(
    redis: &RedisConfig,
    out: &Path,
    options: ConsumerOptions,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StreamError> {
    let mut log = AuditLog::open(out).await?;
    let group = options.group.clone();
    let consumer = Consumer::connect(redis, options).await?;
    let stats = consumer.stats();
    let scrape = metrics.map(|listener| {
        tokio::spawn(super::scrape::serve_consumer_metrics(
            listener,
            group,
            stats.clone(),
        ))
    });
    let result = consumer.run(&mut log, shutdown).await;
    if let Some(scrape) = scrape {
        scrape.abort();
    }
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        audited = count(&stats.handled),
        failed = count(&stats.failed),
        dead_lettered = count(&stats.dead_lettered),
        "audit stopped"
    );
    result
}

/// The line a payload is written as: the event's JSON on one line, as the producer wrote it
/// when it is one line already.
fn audit_line(payload: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("payload is not a JSON object".to_owned());
    }
    // JSON text holds a raw newline only as whitespace between tokens: then write it compactly.
    Ok(if payload.contains(['\n', '\r']) {
        value.to_string()
    } else {
        payload.trim().to_owned()
    })
}

/// The `event_id` of an audit line, if it has one.
fn event_id_of_line(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        event_id: String,
    }
    serde_json::from_str::<Id>(line).ok().map(|id| id.event_id)
}

/// The last [`TAIL_READ`] bytes of the file, from the first whole line among them.
async fn read_tail(file: &mut tokio::fs::File) -> std::io::Result<String> {
    let len = file.metadata().await?.len();
    let start = len.saturating_sub(TAIL_READ);
    file.seek(SeekFrom::Start(start)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    if start > 0 {
        let first_end = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.drain(..first_end);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The event ids written lately, the oldest forgotten first.
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, id: String) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_written_as_one_line_and_must_be_an_object() {
        assert_eq!(
            audit_line(r#"{"event_id":"e1"}"#),
            Ok(r#"{"event_id":"e1"}"#.into())
        );
        assert_eq!(
            audit_line("{\n  \"event_id\": \"e1\"\n}"),
            Ok(r#"{"event_id":"e1"}"#.into())
        );
        assert!(audit_line("[1]").unwrap_err().contains("object"));
        assert!(audit_line("{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn reads_the_event_id_of_a_line() {
        assert_eq!(
            event_id_of_line(r#"{"event_id":"e9","x":1}"#),
            Some("e9".into())
        );
        assert_eq!(event_id_of_line("garbage"), None);
    }

    #[test]
    fn remembers_a_bounded_number_of_ids() {
        let mut seen = Seen::default();
        for i in 0..REMEMBERED + 1 {
            seen.insert(i.to_string());
        }
        assert!(!seen.contains("0"));
        assert!(seen.contains("1"));
        assert_eq!(seen.ids.len(), REMEMBERED);
    }
}
