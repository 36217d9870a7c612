//! The Prometheus text exposition format: `# HELP` / `# TYPE` headers, label sets with escaped
//! values, and one writer per kind of family.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::family::{CounterFamily, GaugeFamily, HistogramFamily, Labels};
use super::series::{Counter, Gauge, Histogram};

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub(super) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `{a="1",b="2"}` (empty when there are no labels), values escaped per the exposition format.
pub(super) fn label_text(pairs: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a counter family.
pub fn counters<K: Labels>(out: &mut String, name: &str, help: &str, family: &CounterFamily<K>) {
    samples(out, name, help, "counter", &family.sorted(), Counter::get);
}

/// Writes a gauge family.
pub fn gauges<K: Labels>(out: &mut String, name: &str, help: &str, family: &GaugeFamily<K>) {
    samples(out, name, help, "gauge", &family.sorted(), Gauge::get);
}

/// Writes one sample per series of a family, the value `read` takes from it, as a metric of
/// type `kind`.
pub(super) fn samples<K: Labels, V, N: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    series: &[(K, Arc<V>)],
    read: impl Fn(&V) -> N,
) {
    header(out, name, help, kind);
    for (labels, value) in series {
        let _ = writeln!(
            out,
            "{name}{} {}",
            label_text(&labels.pairs(), None),
            read(value)
        );
    }
}

/// Writes a histogram family (cumulative buckets, `+Inf`, `_sum`, `_count`).
pub fn histograms<K: Labels>(
    out: &mut String,
    name: &str,
    help: &str,
    family: &HistogramFamily<K>,
) {
    histograms_of(out, name, help, &family.sorted(), |h| h);
}

/// Writes the histogram `pick` selects from each series of a family.
pub(super) fn histograms_of<K: Labels, V>(
    out: &mut String,
    name: &str,
    help: &str,
    series: &[(K, Arc<V>)],
    pick: fn(&V) -> &Histogram,
) {
    header(out, name, help, "histogram");
    for (labels, value) in series {
        let h = pick(value);
        let pairs = labels.pairs();
        let mut cumulative = 0;
        for (i, bucket) in h.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = h.bounds.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{} {cumulative}",
                label_text(&pairs, Some(("le", &le)))
            );
        }
        let plain = label_text(&pairs, None);
        let sum = f64::from_bits(h.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{plain} {sum}");
        let _ = writeln!(out, "{name}_count{plain} {}", h.count());
    }
}
