//! Rate-limit state read at scrape time: the key count of each named limit, as the maintenance
//! task last recorded it (nothing is counted twice: the limiters keep the numbers, this only
//! formats them). Label values are limit names from the config.

use std::fmt::Write as _;

use super::text::{header, label_text};
use crate::edge::rate_limit::Limiters;

/// Appends `tai_gateway_rate_limit_keys{limit}` for every named limit, sorted by name.
pub fn render_rate_limit_keys(out: &mut String, limiters: &Limiters) {
    let name = "tai_gateway_rate_limit_keys";
    header(
        out,
        name,
        "Keys (clients, subjects, header values) a rate limit holds state for, after the last prune.",
        "gauge",
    );
    let mut all: Vec<(&str, usize)> = limiters.iter().map(|l| (l.name(), l.key_count())).collect();
    all.sort_unstable();
    for (limit, keys) in all {
        let labels = label_text(&[("limit", limit.to_owned())], None);
        let _ = writeln!(out, "{name}{labels} {keys}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LimitConfig, LimitKey, RateLimitConfig};
    use std::time::Duration;

    #[test]
    fn every_limit_gets_a_key_gauge_sorted_by_name() {
        let limit = |name: &str| LimitConfig {
            name: name.to_owned(),
            per_period: 1,
            period: Duration::from_secs(1),
            burst: 1,
            key: LimitKey::Ip,
        };
        let limiters = Limiters::new(&RateLimitConfig {
            trusted_proxy_hops: 0,
            prune_interval: Duration::from_secs(10),
            limits: vec![limit("b"), limit("a")],
        });
        let mut out = String::new();
        render_rate_limit_keys(&mut out, &limiters);
        assert!(out.ends_with(
            "tai_gateway_rate_limit_keys{limit=\"a\"} 0\ntai_gateway_rate_limit_keys{limit=\"b\"} 0\n"
        ));
    }
}
