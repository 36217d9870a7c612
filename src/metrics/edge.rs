//! Rate-limit state read at scrape time: the keys each named limit holds now and the keys it
//! evicted to stay under its `max_keys` (nothing is counted twice: the limiters keep the numbers,
//! this only formats them). Label values are limit names from the config.

use std::fmt::Write as _;

use super::text::{header, label_text};
use crate::edge::rate_limit::Limiters;

/// Appends `tai_gateway_rate_limit_keys{limit}` and `tai_gateway_rate_limit_evictions_total{limit}`
/// for every named limit, sorted by name.
pub fn render_rate_limits(out: &mut String, limiters: &Limiters) {
    let mut all: Vec<_> = limiters
        .iter()
        .map(|l| (l.name(), l.key_count() as u64, l.evictions()))
        .collect();
    all.sort_unstable();
    let families = [
        (
            "tai_gateway_rate_limit_keys",
            "Keys (clients, subjects, header values) a rate limit holds state for.",
            "gauge",
        ),
        (
            "tai_gateway_rate_limit_evictions_total",
            "Keys a rate limit evicted, least recently used first, to stay within its max_keys.",
            "counter",
        ),
    ];
    for (i, (name, help, kind)) in families.into_iter().enumerate() {
        header(out, name, help, kind);
        for &(limit, keys, evictions) in &all {
            let labels = label_text(&[("limit", limit.to_owned())], None);
            let value = if i == 0 { keys } else { evictions };
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    }
    render_global_decisions(out, limiters);
}

/// `tai_gateway_rate_limit_global_decisions_total{limit,decision}` for every global limit.
fn render_global_decisions(out: &mut String, limiters: &Limiters) {
    let mut global: Vec<_> = limiters
        .iter()
        .filter_map(|l| Some((l.name(), l.global_decisions()?)))
        .collect();
    if global.is_empty() {
        return;
    }
    global.sort_unstable_by_key(|(name, _)| *name);
    let name = "tai_gateway_rate_limit_global_decisions_total";
    let help = "Decisions of global limits: allowed or refused by Redis, refused here while a key is remembered over its limit, or decided here without Redis (on_redis_error).";
    header(out, name, help, "counter");
    for (limit, d) in global {
        let kinds = [
            ("allowed", &d.allowed),
            ("refused", &d.refused),
            ("remembered", &d.remembered),
            ("fallback", &d.fallback),
        ];
        for (decision, count) in kinds {
            let labels = label_text(
                &[
                    ("limit", limit.to_owned()),
                    ("decision", decision.to_owned()),
                ],
                None,
            );
            let value = count.load(std::sync::atomic::Ordering::Relaxed);
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LimitConfig, LimitKey, RateLimitConfig};
    use std::time::Duration;

    #[test]
    fn every_limit_gets_a_key_gauge_and_an_eviction_counter_sorted_by_name() {
        let limit = |name: &str| LimitConfig {
            name: name.to_owned(),
            per_period: 1,
            period: Duration::from_secs(1),
            burst: 1,
            key: LimitKey::Ip,
            max_keys: 10,
            max_key_bytes: 10,
            scope: crate::config::LimitScope::Local,
            on_redis_error: crate::config::OnRedisError::Local,
        };
        let limiters = Limiters::new(&RateLimitConfig {
            limits: vec![limit("b"), limit("a")],
            ..RateLimitConfig::default()
        });
        let mut out = String::new();
        render_rate_limits(&mut out, &limiters);
        assert!(out.contains(
            "# TYPE tai_gateway_rate_limit_keys gauge\n\
             tai_gateway_rate_limit_keys{limit=\"a\"} 0\n\
             tai_gateway_rate_limit_keys{limit=\"b\"} 0\n"
        ));
        assert!(out.ends_with(
            "# TYPE tai_gateway_rate_limit_evictions_total counter\n\
             tai_gateway_rate_limit_evictions_total{limit=\"a\"} 0\n\
             tai_gateway_rate_limit_evictions_total{limit=\"b\"} 0\n"
        ));
    }
}
