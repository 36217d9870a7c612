//! Response-cache state read at scrape time: what the in-process tier holds (its lookups are
//! counted per request, in `tai_gateway_cache_lookups_total`).

use std::fmt::Write as _;

use super::text::header;
use crate::state::cache::ResponseCache;

/// Appends `tai_gateway_cache_entries` and `tai_gateway_cache_bytes`.
pub fn render_cache_usage(out: &mut String, cache: &ResponseCache) {
    let usage = cache.usage();
    let entries = "tai_gateway_cache_entries";
    header(
        out,
        entries,
        "Answers the in-process response cache holds.",
        "gauge",
    );
    let _ = writeln!(out, "{entries} {}", usage.entries);
    let bytes = "tai_gateway_cache_bytes";
    header(
        out,
        bytes,
        "Bytes of the answers the in-process response cache holds (bodies, headers, keys, tags).",
        "gauge",
    );
    let _ = writeln!(out, "{bytes} {}", usage.bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CacheConfig;

    #[test]
    fn an_empty_cache_reports_zero_entries_and_bytes() {
        let mut out = String::new();
        render_cache_usage(&mut out, &ResponseCache::new(&CacheConfig::default()));
        assert!(
            out.contains("# TYPE tai_gateway_cache_entries gauge\ntai_gateway_cache_entries 0\n")
        );
        assert!(out.contains("tai_gateway_cache_bytes 0\n"), "{out}");
    }
}
