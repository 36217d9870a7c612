//! Access log: one JSON line per request, written by one background thread so the request path
//! only formats the line and hands it over (a full queue drops the line and counts it, rather
//! than making requests wait on a slow disk).
//!
//! Fields: `time`, `request_id`, `trace_id`, `client`, `method`, `path`, `route`, `status`, `grpc_status`,
//! `duration_ms`, `bytes_in`, `bytes_out`, `upstream`, `upstream_endpoint` (of the last attempt),
//! `attempts`, `subject` (`sub` of the verified JWT, `null` without one). Never
//! headers, query strings, bodies, tokens or secrets: only the path of the URI is logged.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::AccessLogTarget;

/// Lines waiting to be written before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// How long the writer rests after each batch. While it rests, handing a line over is a plain
/// queue push; only a writer blocked on an empty queue has to be woken (a system call and a
/// context switch, which cost more than formatting the line). Lines reach the file at most this
/// much later; at 100 batches a second the queue drains up to 1.6 M lines a second.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// One access log line.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    /// RFC 3339 UTC time the request finished.
    pub time: Rfc3339,
    /// `x-request-id` (the client's, or generated).
    pub request_id: &'a str,
    /// The W3C trace id (32 hex digits): the caller's trace, or the one the gateway started.
    pub trace_id: &'a str,
    /// The client's socket address.
    pub client: SocketAddr,
    /// The name of the listener the request came in on (`null` when called directly).
    pub listener: Option<&'a str>,
    /// HTTP method.
    pub method: &'a str,
    /// URI path (no query string: it may carry tokens).
    pub path: &'a str,
    /// Route name, `null` when none matched.
    pub route: Option<&'a str>,
    /// HTTP status.
    pub status: u16,
    /// gRPC status code.
    pub grpc_status: i32,
    /// Time from arrival to response, in milliseconds.
    pub duration_ms: f64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Upstream name, when a call was made.
    pub upstream: Option<&'a str>,
    /// `host:port` of the endpoint the last attempt went to, when one was made.
    pub upstream_endpoint: Option<&'a str>,
    /// Calls sent to the upstream (0 when none).
    pub attempts: u32,
    /// `sub` of the verified token (never the token), when the request carried one.
    pub subject: Option<&'a str>,
}

/// What the writer thread is handed, in order.
#[derive(Debug)]
enum Entry {
    /// One formatted line.
    Line(Vec<u8>),
    /// Write and flush everything queued before this, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Handle to the access log writer; cloning shares the writer.
#[derive(Debug, Clone)]
pub struct AccessLog {
    queue: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens the target and starts the writer thread; it ends when every handle is dropped.
    pub fn start(target: &AccessLogTarget) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot open access log {}: {e}", path.display()),
                        )
                    })?,
            ),
        };
        let (queue, lines) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".to_owned())
            .spawn(move || write_lines(&lines, BufWriter::new(out)))?;
        Ok(AccessLog {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues one line; never blocks.
    pub fn write(&self, record: &AccessRecord<'_>) {
        // Sized for a typical line, so formatting does not grow the buffer step by step.
        let mut line = Vec::with_capacity(384);
        if serde_json::to_writer(&mut line, record).is_err() {
            return;
        }
        line.push(b'\n');
        match self.queue.try_send(Entry::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("access log is not keeping up; dropping lines");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits until every line queued so far is written and flushed, at most `timeout`; shutdown
    /// ends with this so the last requests' lines do not go down with the process. False when
    /// the writer did not confirm in time.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = tokio::sync::oneshot::channel();
        let confirmed = async {
            let mut marker = Entry::Flush(ack);
            // A full queue gets room as the writer drains it; no thread is blocked meanwhile,
            // so a writer stuck on its output cannot hold the process up past `timeout`.
            loop {
                match self.queue.try_send(marker) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        marker = back;
                        tokio::time::sleep(BATCH_PAUSE).await;
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            done.await.is_ok()
        };
        tokio::time::timeout(timeout, confirmed)
            .await
            .unwrap_or(false)
    }
}

/// Writes what is queued in one batch, flushes, answers the flush requests of the batch, rests
/// for [`BATCH_PAUSE`], and waits for more.
fn write_lines(entries: &Receiver<Entry>, mut out: BufWriter<Box<dyn Write + Send>>) {
    let mut failing = false;
    let mut waiting = Vec::new();
    while let Ok(first) = entries.recv() {
        let mut result = Ok(());
        for entry in std::iter::once(first).chain(std::iter::from_fn(|| entries.try_recv().ok())) {
            match entry {
                Entry::Line(line) => result = result.and_then(|()| out.write_all(&line)),
                Entry::Flush(ack) => waiting.push(ack),
            }
        }
        match result.and_then(|()| out.flush()) {
            // Warn when writing starts failing, not on every line after.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot write the access log");
                failing = true;
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
        for ack in waiting.drain(..) {
            let _ = ack.send(());
        }
        std::thread::sleep(BATCH_PAUSE);
    }
}

/// `SystemTime` as RFC 3339 UTC with milliseconds (`2026-11-26T21:41:21.123Z`).
pub fn rfc3339(time: SystemTime) -> String {
    Rfc3339::of(time).as_str().to_owned()
}

/// An RFC 3339 UTC time with milliseconds, formatted in place: the access log writes one per
/// request, and `format!` with its padding cost more than the rest of the line's fields.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    /// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (years 0 to 9999).
    pub fn of(time: SystemTime) -> Rfc3339 {
        let since = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut digits = |at: usize, width: usize, mut value: u64| {
            for slot in out[at..at + width].iter_mut().rev() {
                *slot = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        digits(0, 4, year.clamp(0, 9999) as u64);
        digits(5, 2, month as u64);
        digits(8, 2, day as u64);
        digits(11, 2, rest / 3600);
        digits(14, 2, rest % 3600 / 60);
        digits(17, 2, rest % 60);
        digits(20, 3, u64::from(since.subsec_millis()));
        Rfc3339(out)
    }

    /// The formatted time.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc_dates() {
        let at = |s: u64, ms: u64| {
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_729_281, 123), "2026-11-26T21:41:21.123Z");
        assert_eq!(at(253_402_300_799, 999), "9999-12-31T23:59:59.999Z");
    }
}
