//! A consumer in a consumer group of `tai-events`: each service reads the stream in a group of
//! its own, and each entry goes to one consumer of the group, at least once.
//!
//! One round ([`Consumer::step`]):
//! 1. Redeliver what is due. `XPENDING` lists the group's unacknowledged entries with Redis' own
//!    delivery counts and idle times; an entry whose last delivery failed (or whose consumer died
//!    holding it) is due once idle for the backoff of its delivery count (`backoff`, doubling per
//!    delivery), and is claimed (`XCLAIM`, which counts one more delivery) by whichever consumer
//!    looks first. One that has had `max_deliveries` already goes to the dead letters instead.
//! 2. Read new entries (`XREADGROUP … BLOCK`), blocking no longer than the next redelivery is due.
//! 3. Refresh the group's lag (`XINFO GROUPS`).
//!
//! An entry is acknowledged (`XACK`) only after its handler returned `Ok`; a failed delivery is
//! left pending for its redelivery; the delivery that fails the `max_deliveries`-th time moves
//! the entry to `tai-events-dlq` at once (see [`super::dead_letter`]), logged at warn and counted.
//! The idle time lives in Redis, so backoffs survive a restart and any consumer of the group sees
//! the same ones; the consumer's clock plays no part.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::Value;

use super::dead_letter;
use super::entry::{self, Entry};
use super::group::group_info;
use super::redelivery::{ConsumerOptions, Verdict};
use super::stream_error::StreamError;
use crate::config::RedisConfig;
use crate::state::Dedicated;

/// Pending entries looked at per round for redelivery.
const PENDING_SCAN: usize = 1000;
/// A reply may take this much longer than the `BLOCK` that asked for it.
const REPLY_MARGIN: Duration = Duration::from_secs(5);
/// First pause after Redis failed; doubles up to [`LONGEST_PAUSE`] while it keeps failing.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between reconnection attempts.
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// One delivery of an entry to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The entry.
    pub entry: Entry,
    /// Which delivery this is (1 the first time), as Redis counts them.
    pub deliveries: u64,
}

/// Why a handler did not handle a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleError {
    /// This event failed: redeliver it after the backoff; after `max_deliveries`, dead-letter
    /// it with this reason.
    Failed(String),
    /// The handler cannot handle anything now (its disk is full, say): the consumer stops and
    /// the entry stays pending, for this consumer's next start or another consumer.
    Fatal(String),
}

impl From<String> for HandleError {
    fn from(reason: String) -> HandleError {
        HandleError::Failed(reason)
    }
}

/// What a consumer does with each delivery.
pub trait Handler: Send {
    /// Handles one delivery; `Ok` acknowledges it.
    fn handle(
        &mut self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// A closure taking each delivery (by value) is a handler.
impl<F, Fut> Handler for F
where
    F: FnMut(Delivery) -> Fut + Send,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    fn handle(
        &mut self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), HandleError>> + Send {
        self(delivery.clone())
    }
}

/// A consumer's counters, for a process to export ([`crate::metrics::render_consumer`]).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Deliveries handled and acknowledged.
    pub handled: AtomicU64,
    /// Deliveries whose handler failed.
    pub failed: AtomicU64,
    /// Entries claimed for another delivery (after a failure, or from a consumer gone).
    pub redelivered: AtomicU64,
    /// Entries moved to the dead letters.
    pub dead_lettered: AtomicU64,
    /// The group's lag as last seen: entries not yet delivered to it (`u64::MAX`: unknown).
    pub lag: AtomicU64,
    /// The group's pending (delivered, not acknowledged) entries as last seen.
    pub pending: AtomicU64,
}

/// A consumer of one group, on a connection of its own.
pub struct Consumer {
    redis: RedisConfig,
    options: ConsumerOptions,
    conn: Dedicated,
    stats: Arc<ConsumerStats>,
    /// Why each entry this consumer failed last failed: the reason a dead letter carries.
    reasons: HashMap<String, String>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Connects to the Redis `redis` names and joins the group (creating it, and the stream,
    /// when missing: a new group starts with the oldest entry the stream holds, so a service
    /// started for the first time misses nothing still retained).
    pub async fn connect(
        redis: &RedisConfig,
        options: ConsumerOptions,
    ) -> Result<Consumer, StreamError> {
        let conn = Dedicated::open(redis, options.block + REPLY_MARGIN).await?;
        let mut consumer = Consumer {
            redis: redis.clone(),
            options,
            conn,
            stats: Arc::new(ConsumerStats {
                lag: AtomicU64::new(u64::MAX),
                ..ConsumerStats::default()
            }),
            reasons: HashMap::new(),
        };
        consumer.join().await?;
        Ok(consumer)
    }

    /// The counters (shared: they keep counting while the consumer runs).
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Rounds until `shutdown` resolves or the handler gives up (`Err(Handler)`). Redis failing
    /// is not an end: the consumer reconnects, pausing 100 ms doubling to 10 s. Stopping mid-
    /// delivery leaves the entry pending, so it is delivered again (at least once).
    pub async fn run<H: Handler>(
        mut self,
        handler: &mut H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StreamError> {
        tokio::pin!(shutdown);
        let mut pause = FIRST_PAUSE;
        loop {
            let round = tokio::select! {
                () = &mut shutdown => return Ok(()),
                round = self.step(handler) => round,
            };
            match round {
                Ok(()) => pause = FIRST_PAUSE,
                Err(e @ StreamError::Handler(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, group = %self.options.group, retry_in_ms = pause.as_millis() as u64, "event consumer: redis failed");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(LONGEST_PAUSE);
                    if let Err(e) = self.reconnect().await {
                        tracing::debug!(error = %e, "event consumer: reconnect failed");
                    }
                }
            }
        }
    }

    /// One round: redeliver what is due, read and handle new entries, refresh the lag.
    pub async fn step<H: Handler>(&mut self, handler: &mut H) -> Result<(), StreamError> {
        let next_due = self.redeliver(handler).await?;
        let block = next_due
            .map_or(self.options.block, |due| due.min(self.options.block))
            .max(Duration::from_millis(1));
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.options.group)
            .arg(&self.options.consumer)
            .arg("COUNT")
            .arg(self.options.batch)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.options.stream)
            .arg(">")
            .query_async(&mut self.conn)
            .await?;
        // A new entry that fails here is seen by the next round's `XPENDING`.
        for entry in entry::read_reply(reply)? {
            self.deliver(handler, entry, 1).await?;
        }
        self.refresh_lag().await
    }

    /// Connects again and joins the group again (a Redis restarted empty lost it).
    async fn reconnect(&mut self) -> Result<(), StreamError> {
        self.conn = Dedicated::open(&self.redis, self.options.block + REPLY_MARGIN).await?;
        self.join().await
    }

    /// `XGROUP CREATE … 0 MKSTREAM`; a group that exists already is fine.
    async fn join(&mut self) -> Result<(), StreamError> {
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.options.stream)
            .arg(&self.options.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Claims and delivers the group's pending entries that are due, dead-letters those out of
    /// deliveries; returns how soon the next one comes due.
    async fn redeliver<H: Handler>(
        &mut self,
        handler: &mut H,
    ) -> Result<Option<Duration>, StreamError> {
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&self.options.stream)
            .arg(&self.options.group)
            .arg("-")
            .arg("+")
            .arg(PENDING_SCAN)
            .query_async(&mut self.conn)
            .await?;
        if pending.len() < PENDING_SCAN {
            // The whole list: forget the reasons of entries acknowledged elsewhere meanwhile.
            self.reasons
                .retain(|id, _| pending.iter().any(|(pending_id, ..)| pending_id == id));
        }
        let mut next_due: Option<Duration> = None;
        for (id, _owner, idle_ms, deliveries) in pending {
            match self
                .options
                .verdict(deliveries, Duration::from_millis(idle_ms))
            {
                Verdict::Wait(due) => next_due = Some(next_due.map_or(due, |d| d.min(due))),
                Verdict::DeadLetter => {
                    let reason = self.reasons.remove(&id).unwrap_or_else(|| {
                        format!("not acknowledged after {deliveries} deliveries")
                    });
                    self.dead_letter(&id, &reason, deliveries).await?;
                }
                Verdict::Redeliver(idle) => {
                    for entry in self.claim(&id, idle).await? {
                        self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
                        if let Some(due) = self.deliver(handler, entry, deliveries + 1).await? {
                            next_due = Some(next_due.map_or(due, |d| d.min(due)));
                        }
                    }
                }
            }
        }
        Ok(next_due)
    }

    /// `XCLAIM` of one entry, if it is still idle this long (else another consumer has it).
    async fn claim(&mut self, id: &str, idle: Duration) -> Result<Vec<Entry>, StreamError> {
        let reply: Value = redis::cmd("XCLAIM")
            .arg(&self.options.stream)
            .arg(&self.options.group)
            .arg(&self.options.consumer)
            .arg(idle.as_millis() as u64)
            .arg(id)
            .query_async(&mut self.conn)
            .await?;
        entry::entries(reply)
    }

    /// Hands one delivery to the handler; acknowledges it, dead-letters it, or leaves it pending
    /// and returns when it is due again.
    async fn deliver<H: Handler>(
        &mut self,
        handler: &mut H,
        entry: Entry,
        deliveries: u64,
    ) -> Result<Option<Duration>, StreamError> {
        let delivery = Delivery { entry, deliveries };
        let id = &delivery.entry.id;
        match handler.handle(&delivery).await {
            Ok(()) => {
                let _: u64 = redis::cmd("XACK")
                    .arg(&self.options.stream)
                    .arg(&self.options.group)
                    .arg(id)
                    .query_async(&mut self.conn)
                    .await?;
                self.reasons.remove(id);
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(HandleError::Fatal(reason)) => Err(StreamError::Handler(reason)),
            Err(HandleError::Failed(reason)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                if deliveries >= self.options.max_deliveries {
                    self.dead_letter(id, &reason, deliveries).await?;
                    return Ok(None);
                }
                let due = self.options.backoff_after(deliveries);
                tracing::info!(entry = %id, deliveries, reason = %reason, retry_in_ms = due.as_millis() as u64, "event delivery failed");
                self.reasons.insert(id.clone(), reason);
                Ok(Some(due))
            }
        }
    }

    /// Moves an entry to the dead letters (and acknowledges it), logged at warn and counted.
    async fn dead_letter(
        &mut self,
        id: &str,
        reason: &str,
        deliveries: u64,
    ) -> Result<(), StreamError> {
        let streams = (
            self.options.stream.as_str(),
            self.options.dead_letters.as_str(),
        );
        let moved = dead_letter::move_entry(
            &mut self.conn,
            streams,
            &self.options.group,
            id,
            (reason, deliveries),
        )
        .await?;
        self.reasons.remove(id);
        if let Some(dead_id) = moved {
            self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(entry = %id, dead_letter = %dead_id, group = %self.options.group, deliveries, reason = %reason, "event moved to the dead letters");
        }
        Ok(())
    }

    /// Reads the group's lag and pending count into the stats.
    async fn refresh_lag(&mut self) -> Result<(), StreamError> {
        let (stream, group) = (self.options.stream.clone(), self.options.group.clone());
        if let Some(info) = group_info(&mut self.conn, &stream, &group).await? {
            let lag = info.lag.unwrap_or(u64::MAX);
            self.stats.lag.store(lag, Ordering::Relaxed);
            self.stats.pending.store(info.pending, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_string_is_a_failed_delivery() {
        assert_eq!(
            HandleError::from("bad".to_owned()),
            HandleError::Failed("bad".to_owned())
        );
    }
}
