//! When a consumer delivers an entry again and when it gives up on it: the options of a consumer
//! and the verdict on each pending entry, from Redis' delivery count and idle time. Pure.

use std::time::Duration;

use super::event::{DEAD_LETTERS, STREAM};

/// How a consumer reads, and when it gives up on an event.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The stream read (`tai-events`).
    pub stream: String,
    /// Where events go after `max_deliveries` failed deliveries (`tai-events-dlq`).
    pub dead_letters: String,
    /// The consumer group: one per service; created (with the stream) if missing.
    pub group: String,
    /// This consumer's name in the group: keep it stable across restarts, so a restarted
    /// consumer takes its own unacknowledged entries back at once.
    pub consumer: String,
    /// Wait before the second delivery of an event that failed; doubles per delivery (1 s).
    /// Also how long a delivery may stay unacknowledged before another consumer of the group
    /// may take it over (its consumer is presumed gone): keep handlers well under it.
    pub backoff: Duration,
    /// Failed deliveries after which an event goes to the dead letters (3).
    pub max_deliveries: u64,
    /// Entries read per `XREADGROUP` (100).
    pub batch: usize,
    /// Longest `BLOCK` of one read (5 s); shorter while a redelivery is coming due.
    pub block: Duration,
}

impl ConsumerOptions {
    /// Consumer `consumer` of `group` on `tai-events`, with the default backoff and limits.
    pub fn new(group: &str, consumer: &str) -> ConsumerOptions {
        ConsumerOptions {
            stream: STREAM.to_owned(),
            dead_letters: DEAD_LETTERS.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            backoff: Duration::from_secs(1),
            max_deliveries: 3,
            batch: 100,
            block: Duration::from_secs(5),
        }
    }

    /// How long an entry delivered `deliveries` times waits before the next delivery:
    /// `backoff × 2^(deliveries − 1)`.
    pub fn backoff_after(&self, deliveries: u64) -> Duration {
        let doublings = u32::try_from(deliveries.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        self.backoff.saturating_mul(1 << doublings)
    }

    /// What to do with a pending entry delivered `deliveries` times and idle for `idle`.
    pub fn verdict(&self, deliveries: u64, idle: Duration) -> Verdict {
        let due = self.backoff_after(deliveries);
        if idle < due {
            Verdict::Wait(due - idle)
        } else if deliveries >= self.max_deliveries {
            Verdict::DeadLetter
        } else {
            Verdict::Redeliver(due)
        }
    }
}

/// What happens to a pending entry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not due yet: due in this long.
    Wait(Duration),
    /// Due: claim it (it must still have been idle this long) and deliver it again.
    Redeliver(Duration),
    /// Delivered `max_deliveries` times without an acknowledgement: to the dead letters.
    DeadLetter,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(backoff_ms: u64) -> ConsumerOptions {
        ConsumerOptions {
            backoff: Duration::from_millis(backoff_ms),
            ..ConsumerOptions::new("audit", "a")
        }
    }

    #[test]
    fn backoff_doubles_per_delivery() {
        let o = options(1000);
        let ms: Vec<u128> = (1..=4).map(|n| o.backoff_after(n).as_millis()).collect();
        assert_eq!(ms, [1000, 2000, 4000, 8000]);
        assert_eq!(o.backoff_after(0), Duration::from_secs(1));
        assert!(o.backoff_after(u64::MAX) >= Duration::from_secs(1 << 20));
    }

    #[test]
    fn an_entry_waits_its_backoff_then_is_redelivered_then_dead_lettered() {
        let o = options(50);
        let ms = Duration::from_millis;
        assert_eq!(o.verdict(1, ms(10)), Verdict::Wait(ms(40)));
        assert_eq!(o.verdict(1, ms(50)), Verdict::Redeliver(ms(50)));
        assert_eq!(o.verdict(2, ms(60)), Verdict::Wait(ms(40)));
        assert_eq!(o.verdict(2, ms(100)), Verdict::Redeliver(ms(100)));
        assert_eq!(o.verdict(3, ms(150)), Verdict::Wait(ms(50)));
        assert_eq!(o.verdict(3, ms(200)), Verdict::DeadLetter);
    }
}
