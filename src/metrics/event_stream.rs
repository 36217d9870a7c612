//! The event stream's families (the TAI design's integration points): publish latency and
//! failures, events published by type, dropped and truncated events, corrupt spool records, and
//! the outbox backlog (entries, bytes) read at scrape time.

use std::fmt::Write as _;
use std::time::Duration;

use super::family::{CounterFamily, Family, HistogramFamily, LabelPair};
use super::series::{Counter, Histogram};
use super::text::{counters, header, histograms};

/// Publish call buckets, in seconds: a local fsync to a slow Redis.
const PUBLISH_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The outbox as a scrape sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogFigures {
    /// Events spooled and not yet acknowledged by the publisher.
    pub entries: u64,
    /// Their bytes (framing included).
    pub bytes: u64,
    /// The spool's bound.
    pub max_bytes: u64,
}

/// Every event-stream family.
#[derive(Debug)]
pub struct EventStreamMetrics {
    publish_duration: HistogramFamily<(&'static str, String)>,
    publish_failures: CounterFamily<LabelPair>,
    published: CounterFamily<(&'static str, String)>,
    dropped: CounterFamily<(&'static str, String)>,
    truncated: CounterFamily<(&'static str, String)>,
    corrupt_records: Counter,
}

impl Default for EventStreamMetrics {
    fn default() -> Self {
        EventStreamMetrics {
            publish_duration: Family::new(|| Histogram::new(PUBLISH_BUCKETS_SECONDS)),
            publish_failures: Family::new(Counter::default),
            published: Family::new(Counter::default),
            dropped: Family::new(Counter::default),
            truncated: Family::new(Counter::default),
            corrupt_records: Counter::default(),
        }
    }
}

impl EventStreamMetrics {
    /// One publish call to `publisher` that took `took` (successful or not).
    pub fn publish_call(&self, publisher: &'static str, took: Duration) {
        let key = ("publisher", publisher.to_owned());
        self.publish_duration
            .with(&key, |h| h.observe(took.as_secs_f64()));
    }

    /// A failed publish call, by `reason` (`unavailable`, `refused`, `io`, ...).
    pub fn publish_failed(&self, publisher: &'static str, reason: &'static str) {
        let key = (
            ("publisher", publisher.to_owned()),
            ("reason", reason.to_owned()),
        );
        self.publish_failures.get(&key).add(1);
    }

    /// An event of `event_type` acknowledged by the publisher.
    pub fn published(&self, event_type: &str) {
        self.published
            .with(&("event_type", event_type.to_owned()), |c| c.add(1));
    }

    /// A `best_effort` route's event that did not fit in the spool.
    pub fn dropped(&self, route: &str) {
        self.dropped.get(&("route", route.to_owned())).add(1);
    }

    /// An event over `events.max_event_bytes`, truncated.
    pub fn truncated(&self, route: &str) {
        self.truncated.get(&("route", route.to_owned())).add(1);
    }

    /// Spool records found corrupt (moved aside) or unreadable.
    pub fn corrupt(&self, records: u64) {
        self.corrupt_records.add(records);
    }

    /// Dropped events so far (tests, readiness).
    pub fn dropped_total(&self) -> u64 {
        self.dropped.sorted().iter().map(|(_, c)| c.get()).sum()
    }

    /// The families, and the backlog `figures` read now.
    pub fn render(&self, out: &mut String, figures: BacklogFigures) {
        backlog(out, figures);
        histograms(
            out,
            "tai_gateway_events_publish_duration_seconds",
            "Time of each publish call (a batch of events), successful or not.",
            &self.publish_duration,
        );
        counters(
            out,
            "tai_gateway_events_publish_failures_total",
            "Publish calls that failed and will be retried, by publisher and reason.",
            &self.publish_failures,
        );
        counters(
            out,
            "tai_gateway_events_published_total",
            "Events acknowledged by the stream (or written to the file), by event type.",
            &self.published,
        );
        counters(
            out,
            "tai_gateway_events_dropped_total",
            "Events of best_effort routes that did not fit in the spool, by route.",
            &self.dropped,
        );
        counters(
            out,
            "tai_gateway_events_truncated_total",
            "Events over events.max_event_bytes whose messages were replaced by markers, by route.",
            &self.truncated,
        );
        let name = "tai_gateway_events_spool_corrupt_records_total";
        header(
            out,
            name,
            "Spool records that failed their checksum after a crash (moved aside, not published).",
            "counter",
        );
        let _ = writeln!(out, "{name} {}", self.corrupt_records.get());
    }
}

/// The backlog gauges.
fn backlog(out: &mut String, figures: BacklogFigures) {
    for (name, help, value) in [
        (
            "tai_gateway_events_spool_entries",
            "Events in the outbox spool not yet acknowledged by the stream (or file).",
            figures.entries,
        ),
        (
            "tai_gateway_events_spool_bytes",
            "Bytes of those events.",
            figures.bytes,
        ),
        (
            "tai_gateway_events_spool_max_bytes",
            "The spool's bound (events.max_spool_bytes); before_response writes get 503 at it.",
            figures.max_bytes,
        ),
    ] {
        header(out, name, help, "gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_backlog_and_publish_families() {
        let metrics = EventStreamMetrics::default();
        metrics.publish_call("redis", Duration::from_millis(3));
        metrics.publish_failed("redis", "unavailable");
        metrics.published("policy.proposed");
        metrics.dropped("governor-write");
        let mut out = String::new();
        let figures = BacklogFigures {
            entries: 2,
            bytes: 300,
            max_bytes: 1000,
        };
        metrics.render(&mut out, figures);
        for line in [
            "tai_gateway_events_spool_entries 2\n",
            "tai_gateway_events_spool_bytes 300\n",
            "tai_gateway_events_publish_duration_seconds_count{publisher=\"redis\"} 1\n",
            "tai_gateway_events_publish_failures_total{publisher=\"redis\",reason=\"unavailable\"} 1\n",
            "tai_gateway_events_published_total{event_type=\"policy.proposed\"} 1\n",
            "tai_gateway_events_dropped_total{route=\"governor-write\"} 1\n",
            "tai_gateway_events_spool_corrupt_records_total 0\n",
        ] {
            assert!(out.contains(line), "missing {line} in {out}");
        }
        assert_eq!(metrics.dropped_total(), 1);
    }
}
