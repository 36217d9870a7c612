//! Where spooled events go: a small [`Publisher`] trait with two implementations, chosen at start
//! by whether a `redis:` section exists.
//!
//! - [`RedisStreams`]: one `XADD` per event to the stream (`events.stream`, default `tai-events`),
//!   each attribute a field of its own beside the JSON payload ([`Event::fields`]); the batch is
//!   one Lua call, so one round trip. Each `XADD` trims by age with `MINID ~ <now - retention>`:
//!   Redis drops whole internal nodes (up to `stream-node-max-entries`, 100 by default) whose
//!   entries are all older, so an entry may outlive the retention by as long as its node's newest
//!   entry — never less than the retention.
//! - [`JsonLines`]: the event as one JSON line appended to a local file, fsync'ed per batch; the
//!   single-process default. The file is only appended to (rotate it with the usual tools:
//!   copy-truncate is safe, since every batch is written with `O_APPEND`).
//!
//! Another broker (NATS JetStream, Kafka) is a third implementation; the outbox and the drain do
//! not change.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use super::event::Event;
use crate::state::redis::{Redis, Unavailable};

/// A publish call in progress.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// Something events can be published to.
pub trait Publisher: Send + Sync + std::fmt::Debug {
    /// A short name for metrics and logs (`redis`, `file`).
    fn name(&self) -> &'static str;

    /// Publishes `events` in order. `Ok` only when every one is acknowledged (durable at the
    /// destination); on `Err` some may have been, and the whole batch is sent again (consumers
    /// drop the duplicates by `event_id`).
    fn publish<'a>(&'a self, events: &'a [Event]) -> PublishFuture<'a>;
}

/// Why a publish call failed (it is retried with backoff; nothing is dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Redis could not be reached in time, or its breaker is open.
    #[error("redis is unavailable: {0}")]
    Unavailable(Unavailable),
    /// Redis answered with an error: out of memory, a read-only replica, a wrong key type...
    #[error("redis refused the events: {0}")]
    Refused(String),
    /// The events file could not be written or synced.
    #[error("cannot write the events file: {0}")]
    Io(String),
}

impl PublishError {
    /// The `reason` label of the failure metric.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::Unavailable(_) => "unavailable",
            PublishError::Refused(text) => refusal_reason(text),
            PublishError::Io(_) => "io",
        }
    }
}

/// What a Redis error reply says, whatever the client made of its code (`-OOM command not
/// allowed…`, `-READONLY You can't write against a read only replica`, which redis-rs renders as
/// `ReadOnly: …`).
fn refusal_reason(text: &str) -> &'static str {
    let text = text.to_ascii_lowercase();
    if text.contains("oom") || text.contains("maxmemory") {
        "oom"
    } else if text.contains("readonly") || text.contains("read only") || text.contains("read-only")
    {
        "read_only"
    } else {
        "refused"
    }
}

/// `XADD stream MINID ~ <minid> * field value ...` for each event; the arguments are the
/// minimum id, the number of arguments per event, then each event's field/value pairs.
const XADD_BATCH: &str = r"
local minid, width = ARGV[1], tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV, width do
  local args = {'XADD', KEYS[1], 'MINID', '~', minid, '*'}
  for j = 0, width - 1 do args[#args + 1] = ARGV[i + j] end
  redis.call(unpack(args))
  added = added + 1
end
return added
";

/// Events to a Redis Stream.
#[derive(Debug)]
pub struct RedisStreams {
    redis: Arc<Redis>,
    stream: String,
    retention: Duration,
    script: Script,
}

impl RedisStreams {
    /// Publishes to `stream` (its name as is: the stream is an integration point read by name,
    /// so `redis.key_prefix` does not apply), trimming entries older than `retention`.
    pub fn new(redis: Arc<Redis>, stream: &str, retention: Duration) -> RedisStreams {
        RedisStreams {
            redis,
            stream: stream.to_owned(),
            retention,
            script: Script::new(XADD_BATCH),
        }
    }

    /// The oldest entry id kept: `now - retention` in Unix milliseconds.
    fn min_id(&self, now: SystemTime) -> String {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let oldest = now.saturating_sub(self.retention).as_millis();
        format!("{oldest}-0")
    }
}

impl Publisher for RedisStreams {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn publish<'a>(&'a self, events: &'a [Event]) -> PublishFuture<'a> {
        Box::pin(async move {
            let width = events.first().map_or(0, |e| e.fields().len() * 2);
            let mut invocation = self.script.key(&self.stream);
            invocation.arg(self.min_id(SystemTime::now())).arg(width);
            for event in events {
                for (name, value) in event.fields() {
                    invocation.arg(name).arg(value);
                }
            }
            match self.redis.run::<i64>(&invocation).await {
                Ok(_) => Ok(()),
                Err(Unavailable::Failed(text)) if !is_connection_error(&text) => {
                    Err(PublishError::Refused(text))
                }
                Err(e) => Err(PublishError::Unavailable(e)),
            }
        })
    }
}

/// A failure of the connection rather than an answer from Redis.
fn is_connection_error(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "connection",
        "broken pipe",
        "reset",
        "refused",
        "io error",
        "eof",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Events appended to a local JSON-lines file.
#[derive(Debug)]
pub struct JsonLines {
    path: PathBuf,
    file: Arc<Mutex<Option<File>>>,
}

impl JsonLines {
    /// Appends to `path` (created when missing; its folder must exist).
    pub fn new(path: &Path) -> JsonLines {
        JsonLines {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(None)),
        }
    }
}

impl Publisher for JsonLines {
    fn name(&self) -> &'static str {
        "file"
    }

    fn publish<'a>(&'a self, events: &'a [Event]) -> PublishFuture<'a> {
        let mut lines = Vec::new();
        for event in events {
            // An `Event` is plain data: serialising it cannot fail.
            if serde_json::to_writer(&mut lines, event).is_ok() {
                lines.push(b'\n');
            }
        }
        let (path, file) = (self.path.clone(), self.file.clone());
        Box::pin(async move {
            let write = tokio::task::spawn_blocking(move || {
                let mut slot = file.lock().unwrap_or_else(PoisonError::into_inner);
                if slot.is_none() {
                    *slot = Some(OpenOptions::new().create(true).append(true).open(&path)?);
                }
                let Some(open) = slot.as_mut() else {
                    return Err(std::io::Error::other("events file not open"));
                };
                let written = open.write_all(&lines).and_then(|()| open.sync_data());
                if written.is_err() {
                    // Opened again next time (the file may have been moved or its disk replaced).
                    *slot = None;
                }
                written
            });
            match write.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(PublishError::Io(e.to_string())),
                Err(e) => Err(PublishError::Io(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_what_redis_said() {
        let reason = |text: &str| PublishError::Refused(text.to_owned()).reason();
        assert_eq!(
            reason("OOM command not allowed when used memory > 'maxmemory'."),
            "oom"
        );
        assert_eq!(
            reason("ReadOnly: You can't write against a read only replica."),
            "read_only"
        );
        assert_eq!(
            reason("READONLY You can't write against a read only replica."),
            "read_only"
        );
        assert_eq!(
            reason("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "refused"
        );
    }
}
