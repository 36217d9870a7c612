//! The TAI event stream: an event per successful write, delivered at least once.
//!
//! A write through a route with `events:` that succeeds builds one [`Event`] ([`emit`]), appends
//! it to the local outbox spool ([`outbox`], files in [`spool`]) — the answer waits for the fsync
//! on `before_response` routes — and the [`drain`] task publishes the spool in order through a
//! [`publish::Publisher`]: a Redis Stream with a `redis:` section, a local JSON-lines file
//! without. A record leaves the spool only once the publisher acknowledged it, so Redis down,
//! slow or refusing writes, or the gateway killed between answer and publish, delays events but
//! never loses one; duplicates are possible and `event_id` lets consumers drop them.
//!
//! # Layout
//! - [`event`]: the event record, its id, and its stream-entry fields.
//! - [`emit`]: the per-method plan (type, aggregate id, dropped fields) and building an event.
//! - [`spool`]: the spool's files: framed, checksummed records; recovery of a torn tail.
//! - [`outbox`]: the spool's writer thread (group commit), its bound and reservations.
//! - [`publish`]: the `Publisher` trait, `RedisStreams`, `JsonLines`.
//! - [`drain`]: the task publishing the spool with retry and backoff.
//! - [`entry`]: a stream entry as consumers read it, and the replies that carry entries.
//! - [`redelivery`]: a consumer's options, and when a pending entry is delivered again or
//!   dead-lettered (pure).
//! - [`consume`]: a consumer in a consumer group: acknowledge after handling, redeliver after a
//!   doubling backoff, dead-letter after `max_deliveries`.
//! - [`group`]: a consumer group's consumers, pending entries and lag.
//! - [`dead_letter`]: `tai-events-dlq`: the atomic move, listing, replay.
//! - [`audit`]: the audit subscriber: each event once in an append-only, fsynced JSON-lines file.
//! - [`scrape`]: a consumer process' `GET /metrics`.
//! - [`tail`]: a read-only follower with type and aggregate filters, for operators.
//! - [`commands`]: what `tai-gateway events …` does, returning the text it prints.
//! - [`stream_error`]: the consuming side's failures.

pub mod audit;
pub mod commands;
pub mod consume;
pub mod dead_letter;
mod drain;
pub mod emit;
pub mod entry;
pub mod event;
pub mod group;
pub mod outbox;
pub mod publish;
pub mod redelivery;
pub mod scrape;
pub mod spool;
pub mod stream_error;
pub mod tail;

pub use consume::{Consumer, ConsumerStats, Delivery, HandleError, Handler};
pub use event::{DEAD_LETTERS, Event, EventIds, STREAM};
pub use redelivery::ConsumerOptions;
pub use stream_error::StreamError;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{Config, EventsConfig};
use crate::metrics::{BacklogFigures, EventStreamMetrics};
use crate::state::redis::Redis;
use emit::{EventPlan, Written};
use outbox::{Backlog, Outbox, Reservation, SpoolError};
use publish::{JsonLines, Publisher, RedisStreams};

/// The process' event outbox and what is recorded about it; one per gateway process.
#[derive(Debug)]
pub struct Events {
    outbox: Outbox,
    ids: EventIds,
    metrics: EventStreamMetrics,
    max_event_bytes: usize,
}

impl Events {
    /// Whether a process serving `config` records events: some route has `events:`. (A process
    /// started without any does not open a spool; events turned on by a reload need a restart.)
    pub fn wanted(config: &Config) -> bool {
        config.routes.iter().any(|r| r.events.is_some())
    }

    /// Opens the spool `config` names, recovering what a previous process left. A damaged tail
    /// (a record torn by a crash) is moved aside, logged with where it went, and counted.
    pub fn open(config: &EventsConfig) -> std::io::Result<Arc<Events>> {
        let (outbox, tails) = Outbox::open(
            &config.spool_dir,
            config.max_spool_bytes,
            config.max_event_bytes,
        )?;
        let metrics = EventStreamMetrics::default();
        for tail in &tails {
            tracing::error!(
                segment = %tail.segment.display(),
                offset = tail.offset,
                bytes = tail.bytes,
                moved_to = %tail.moved_to.display(),
                reason = tail.reason,
                "event spool: a damaged tail was moved aside; the records before it are published"
            );
            metrics.corrupt(1);
        }
        let backlog = outbox.backlog();
        if backlog.entries > 0 {
            tracing::info!(
                entries = backlog.entries,
                "event spool: publishing events left by the previous process"
            );
        }
        Ok(Arc::new(Events {
            outbox,
            ids: EventIds::default(),
            metrics,
            max_event_bytes: config.max_event_bytes,
        }))
    }

    /// The publisher for `config`: the Redis stream when the gateway has a Redis client, else
    /// the local JSON-lines file.
    pub fn publisher(config: &EventsConfig, redis: Option<&Arc<Redis>>) -> Arc<dyn Publisher> {
        match redis {
            Some(redis) => Arc::new(RedisStreams::new(
                redis.clone(),
                &config.stream,
                config.retention,
            )),
            None => Arc::new(JsonLines::new(&config.file)),
        }
    }

    /// Publishes the spool through `publisher` until `stop` resolves (to the drain timeout),
    /// then until the spool is empty or that timeout has passed.
    pub async fn drain(&self, publisher: &dyn Publisher, stop: impl Future<Output = Duration>) {
        let drain = drain::Drain {
            outbox: &self.outbox,
            publisher,
            metrics: &self.metrics,
        };
        drain.run(stop).await;
    }

    /// Room for one `before_response` event, taken before the write's backend call.
    pub fn reserve(&self) -> Result<Reservation, SpoolError> {
        self.outbox.reserve()
    }

    /// The event of a successful write as spool bytes (truncated by the size rule if needed).
    pub fn record(&self, plan: &EventPlan, written: &Written<'_>) -> Vec<u8> {
        let mut event = plan.event(&self.ids, written, SystemTime::now());
        let (bytes, truncated) = emit::encode_bounded(&mut event, self.max_event_bytes);
        if truncated {
            self.metrics.truncated(&plan.route);
            tracing::warn!(event_id = %event.event_id, route = %plan.route, limit = self.max_event_bytes, "event over events.max_event_bytes: its messages were truncated");
        }
        bytes
    }

    /// Spools `record` in `reservation`'s room and waits until it is durable.
    pub async fn append(&self, record: &[u8], reservation: Reservation) -> Result<(), SpoolError> {
        self.outbox.append(record, reservation).await
    }

    /// Spools `record` without waiting (`best_effort`); one that does not fit is dropped,
    /// counted and logged.
    pub fn offer(&self, plan: &EventPlan, record: &[u8]) {
        if let Err(e) = self.outbox.offer(record) {
            self.metrics.dropped(&plan.route);
            tracing::warn!(error = %e, route = %plan.route, "best_effort event dropped");
        }
    }

    /// Waits until every event handed over so far is written to the spool.
    pub async fn flush(&self) {
        self.outbox.flush().await;
    }

    /// The spool's backlog now.
    pub fn backlog(&self) -> Backlog {
        self.outbox.backlog()
    }

    /// The event-stream metric families, backlog included.
    pub fn render_metrics(&self, out: &mut String) {
        let backlog = self.backlog();
        let figures = BacklogFigures {
            entries: backlog.entries,
            bytes: backlog.bytes,
            max_bytes: backlog.max_bytes,
        };
        self.metrics.render(out, figures);
    }

    /// The event-stream metrics.
    pub fn metrics(&self) -> &EventStreamMetrics {
        &self.metrics
    }
}
