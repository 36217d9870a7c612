//! The drain: one task that publishes the spool's durable records in order and acknowledges
//! them, retrying a failed publish with backoff for as long as it takes — a record leaves the
//! spool only once the publisher said it has it, so nothing is lost while Redis is down, slow,
//! full (OOM) or read-only; it is published when Redis takes writes again.
//!
//! A failed batch is sent again whole (some of it may have arrived: duplicates, which consumers
//! drop by `event_id`) and halved each time it fails, down to one record, so a batch too large to
//! pass within `redis.timeout` cannot stall the drain; successes double it back.
//!
//! On shutdown the drain goes on until the spool is empty or the drain timeout has passed; what
//! is left stays spooled and is published by the next process.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::event::Event;
use super::outbox::Outbox;
use super::publish::Publisher;
use crate::metrics::EventStreamMetrics;

/// Largest batch, in spool bytes.
const BATCH_BYTES: u64 = 256 << 10;
/// Wait after the first failure; doubled after each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    Published,
    Empty,
    Failed,
}

/// What the drain works with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drain<'a> {
    pub(crate) outbox: &'a Outbox,
    pub(crate) publisher: &'a dyn Publisher,
    pub(crate) metrics: &'a EventStreamMetrics,
}

impl Drain<'_> {
    /// Publishes until `stop` resolves (to the drain timeout), then until the spool is empty or
    /// that timeout has passed.
    pub(crate) async fn run(self, stop: impl Future<Output = Duration>) {
        tokio::pin!(stop);
        let (mut deadline, mut pace) = (None::<Instant>, Pace::default());
        while deadline.is_none_or(|d| Instant::now() < d) {
            let wait = match self.round(pace.limit).await {
                Round::Published => {
                    pace.published(self.publisher.name());
                    continue;
                }
                Round::Empty if deadline.is_some() => break,
                Round::Empty => None,
                Round::Failed => Some(pace.failed()),
            };
            let Some(wait) = wait else {
                // Idle: until records arrive, or shutdown starts (then drain what is left).
                tokio::select! {
                    () = self.outbox.wait_for_records() => {}
                    timeout = &mut stop => deadline = Some(Instant::now() + timeout),
                }
                continue;
            };
            let until = Instant::now() + wait;
            if deadline.is_none() {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => continue,
                    timeout = &mut stop => deadline = Some(Instant::now() + timeout),
                }
            }
            tokio::time::sleep_until(deadline.map_or(until, |d| until.min(d))).await;
        }
        let left = self.outbox.backlog();
        if left.entries > 0 {
            tracing::warn!(
                entries = left.entries,
                bytes = left.bytes,
                "events left in the spool at shutdown; the next start publishes them"
            );
        }
    }

    /// Reads one batch and publishes it.
    async fn round(&self, limit: u64) -> Round {
        let name = self.publisher.name();
        let batch = match self.outbox.next_batch(limit).await {
            Ok(Some(batch)) => batch,
            Ok(None) => return Round::Empty,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event spool");
                self.metrics.publish_failed(name, "spool_read");
                return Round::Failed;
            }
        };
        let events = self.parse(&batch.payloads);
        let started = Instant::now();
        let result = if events.is_empty() {
            Ok(())
        } else {
            self.publisher.publish(&events).await
        };
        self.metrics.publish_call(name, started.elapsed());
        if let Err(e) = result {
            self.metrics.publish_failed(name, e.reason());
            tracing::warn!(error = %e, publisher = name, events = events.len(), "publishing events failed; retrying with backoff");
            return Round::Failed;
        }
        for event in &events {
            self.metrics.published(&event.event_type);
        }
        if let Err(e) = self.outbox.ack(&batch) {
            // The records are published; a lost cursor only means duplicates after a restart.
            tracing::warn!(error = %e, "cannot write the event spool cursor");
        }
        Round::Published
    }

    /// The events of a batch. A record whose checksum matched but whose JSON does not read as
    /// an event (written by an incompatible version) is logged whole and counted, never
    /// published half understood.
    fn parse(&self, payloads: &[Vec<u8>]) -> Vec<Event> {
        let mut events = Vec::with_capacity(payloads.len());
        for payload in payloads {
            match serde_json::from_slice::<Event>(payload) {
                Ok(event) => events.push(event),
                Err(e) => {
                    self.metrics.corrupt(1);
                    let record = String::from_utf8_lossy(payload);
                    tracing::error!(error = %e, %record, "spooled record is not an event; not published");
                }
            }
        }
        events
    }
}

/// Failures in a row and the batch size they left.
#[derive(Debug)]
struct Pace {
    failures: u32,
    limit: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            failures: 0,
            limit: BATCH_BYTES,
        }
    }
}

impl Pace {
    /// A batch went through: batches grow back, the backoff starts over.
    fn published(&mut self, publisher: &'static str) {
        if self.failures > 0 {
            let failures = self.failures;
            tracing::info!(failures, publisher, "events are published again");
        }
        self.failures = 0;
        self.limit = (self.limit * 2).min(BATCH_BYTES);
    }

    /// A batch failed: the next is half as large, after a longer wait (returned).
    fn failed(&mut self) -> Duration {
        self.failures += 1;
        self.limit = (self.limit / 2).max(1);
        backoff(self.failures)
    }
}

/// The wait after `failures` failures in a row.
fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::events::event::EventIds;
    use crate::events::publish::{PublishError, PublishFuture};
    use crate::state::redis::Unavailable;

    /// Fails its first `failing` calls, then keeps what it is given.
    #[derive(Debug, Default)]
    struct Flaky {
        failing: AtomicU32,
        calls: Mutex<Vec<Instant>>,
        kept: Mutex<Vec<String>>,
    }

    impl Publisher for Flaky {
        fn name(&self) -> &'static str {
            "test"
        }

        fn publish<'a>(&'a self, events: &'a [Event]) -> PublishFuture<'a> {
            Box::pin(async move {
                self.calls.lock().expect("lock").push(Instant::now());
                let left = self.failing.load(Ordering::SeqCst);
                if left > 0 {
                    self.failing.store(left - 1, Ordering::SeqCst);
                    return Err(PublishError::Unavailable(Unavailable::Open));
                }
                let mut kept = self.kept.lock().expect("lock");
                kept.extend(events.iter().map(|e| e.event_id.clone()));
                Ok(())
            })
        }
    }

    fn event(ids: &EventIds) -> Vec<u8> {
        let event = Event {
            event_id: ids.next(std::time::SystemTime::now()),
            event_type: "policy.proposed".to_owned(),
            aggregate_id: "pol-1".to_owned(),
            time: "2026-01-01T00:00:00.000Z".to_owned(),
            route: "r".to_owned(),
            method: "tai.Governor/ProposePolicy".to_owned(),
            subject: None,
            request_id: "req".to_owned(),
            request: serde_json::json!({}),
            response: serde_json::json!({}),
        };
        serde_json::to_vec(&event).expect("json")
    }

    #[test]
    fn backoff_doubles_from_fifty_milliseconds_up_to_five_seconds() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_publisher_is_retried_with_backoff_and_nothing_is_dropped() {
        let dir = std::env::temp_dir().join(format!("tai-drain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (outbox, _) = Outbox::open(&dir, 1 << 20, 8 << 10).expect("open");
        let ids = EventIds::default();
        for _ in 0..5 {
            let reservation = outbox.reserve().expect("room");
            outbox
                .append(&event(&ids), reservation)
                .await
                .expect("spooled");
        }
        assert_eq!(outbox.backlog().entries, 5);
        let publisher = Flaky::default();
        publisher.failing.store(4, Ordering::SeqCst);
        let metrics = EventStreamMetrics::default();
        let drain = Drain {
            outbox: &outbox,
            publisher: &publisher,
            metrics: &metrics,
        };
        // Stop at once: the drain goes on until the spool is empty (within 60 s).
        drain.run(async { Duration::from_secs(60) }).await;
        assert_eq!(publisher.kept.lock().expect("lock").len(), 5);
        assert_eq!(outbox.backlog().entries, 0);
        let calls = publisher.calls.lock().expect("lock").clone();
        let gaps: Vec<u64> = calls
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() as u64)
            .collect();
        // Four failures (50, 100, 200, 400 ms apart), then the halved batches go through.
        assert_eq!(&gaps[..4], &[50, 100, 200, 400]);
        let mut out = String::new();
        metrics.render(&mut out, Default::default());
        assert!(out.contains("tai_gateway_events_publish_failures_total{publisher=\"test\",reason=\"unavailable\"} 4"), "{out}");
        drop(outbox);
        let (reopened, tails) = Outbox::open(&dir, 1 << 20, 8 << 10).expect("reopen");
        assert!(tails.is_empty());
        assert_eq!(
            reopened.backlog().entries,
            0,
            "acknowledged records are not read again"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
