//! An event consumer's counters (see `events::consume`), read at scrape time: deliveries by
//! result, redeliveries, dead-letter moves, and the group's lag and pending entries.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::text::{header, label_text};
use crate::events::ConsumerStats;

/// Appends the families of consumer group `group`'s consumer.
pub fn render_consumer(out: &mut String, group: &str, stats: &ConsumerStats) {
    let labels = |extra: Option<(&str, &str)>| label_text(&[("group", group.to_owned())], extra);
    let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let name = "tai_gateway_event_deliveries_total";
    header(
        out,
        name,
        "Event deliveries to this consumer by result: handled (acknowledged) or failed (redelivered after a backoff, or dead-lettered).",
        "counter",
    );
    for (result, counter) in [("handled", &stats.handled), ("failed", &stats.failed)] {
        let _ = writeln!(
            out,
            "{name}{} {}",
            labels(Some(("result", result))),
            read(counter)
        );
    }
    for (name, help, kind, value) in [
        (
            "tai_gateway_event_redeliveries_total",
            "Entries this consumer claimed for another delivery (after a failure, or from a consumer gone).",
            "counter",
            read(&stats.redelivered),
        ),
        (
            "tai_gateway_event_dead_letters_total",
            "Events this consumer moved to tai-events-dlq after max_deliveries failed deliveries.",
            "counter",
            read(&stats.dead_lettered),
        ),
        (
            "tai_gateway_event_group_pending",
            "Entries delivered to the group and not acknowledged, as last seen.",
            "gauge",
            read(&stats.pending),
        ),
        (
            "tai_gateway_event_group_lag",
            "Entries of tai-events not yet delivered to the group, as last seen (absent while unknown).",
            "gauge",
            read(&stats.lag),
        ),
    ] {
        header(out, name, help, kind);
        if value != u64::MAX {
            let _ = writeln!(out, "{name}{} {value}", labels(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_leaves_an_unknown_lag_out() {
        let stats = ConsumerStats::default();
        stats.handled.store(4, Ordering::Relaxed);
        stats.dead_lettered.store(1, Ordering::Relaxed);
        stats.lag.store(u64::MAX, Ordering::Relaxed);
        let mut out = String::new();
        render_consumer(&mut out, "audit", &stats);
        assert!(out.contains(
            "tai_gateway_event_deliveries_total{group=\"audit\",result=\"handled\"} 4\n"
        ));
        assert!(out.contains("tai_gateway_event_dead_letters_total{group=\"audit\"} 1\n"));
        assert!(out.contains("# TYPE tai_gateway_event_group_lag gauge\n"));
        assert!(!out.contains("tai_gateway_event_group_lag{"));
    }
}
