//! Checks of the resilience keys: `upstreams.<name>.{retry,circuit_breaker,health_check}` and
//! `routes[].{retryable,retry_on,per_try_timeout}`.

use super::checker::{Checker, place};
use crate::config::raw::{At, RawCircuitBreaker, RawHealthCheck, RawRetry, RawRoute};
use crate::config::resilience::{
    BreakerConfig, HealthCheckConfig, MAX_DISTINCT_CLIENTS, Ratio, RetryConfig, RouteRetryConfig,
    parse_code,
};

fn ratio(c: &mut Checker<'_>, value: &At<f64>, key: &str) -> Option<Ratio> {
    if (0.0..=1.0).contains(&value.value) {
        Some(Ratio(value.value))
    } else {
        c.error(place(value), key, "must be between 0 and 1");
        None
    }
}

fn positive(c: &mut Checker<'_>, value: &At<u32>, key: &str) -> Option<u32> {
    if value.value == 0 {
        c.error(place(value), key, "must be at least 1");
        None
    } else {
        Some(value.value)
    }
}

fn codes(c: &mut Checker<'_>, items: &[At<String>], key: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_code(&item.value) {
            Some(code) => out.push(code),
            None => c.error(
                place(item),
                format!("{key}[{i}]"),
                format!(
                    "`{}` is not a gRPC status code other than OK (use a name such as UNAVAILABLE)",
                    item.value
                ),
            ),
        }
    }
    out
}

/// `upstreams.<name>.retry`, defaults filled in.
pub(super) fn retry(c: &mut Checker<'_>, raw: Option<&RawRetry>, key: &str) -> RetryConfig {
    let mut r = RetryConfig::default();
    let Some(raw) = raw else { return r };
    let key = format!("{key}.retry");
    if let Some(v) = &raw.max_retries {
        r.max_retries = v.value;
    }
    if let Some(v) = &raw.base_backoff
        && let Some(d) = c.duration(v, &format!("{key}.base_backoff"))
    {
        r.base_backoff = d;
    }
    if let Some(v) = &raw.max_backoff
        && let Some(d) = c.duration(v, &format!("{key}.max_backoff"))
    {
        r.max_backoff = d;
    }
    if r.max_backoff < r.base_backoff {
        let at = raw.max_backoff.as_ref().map(place).unwrap_or_default();
        c.error(
            at,
            format!("{key}.max_backoff"),
            "must not be shorter than base_backoff",
        );
    }
    if let Some(v) = &raw.jitter
        && let Some(x) = ratio(c, v, &format!("{key}.jitter"))
    {
        r.jitter = x;
    }
    if let Some(v) = &raw.budget_ratio
        && let Some(x) = ratio(c, v, &format!("{key}.budget_ratio"))
    {
        r.budget_ratio = x;
    }
    if let Some(v) = &raw.budget_min_retries {
        r.budget_min_retries = v.value;
    }
    if let Some(items) = &raw.retryable_codes {
        r.retryable_codes = codes(c, items, &format!("{key}.retryable_codes"));
    }
    r
}

/// `upstreams.<name>.circuit_breaker`, defaults filled in.
pub(super) fn breaker(
    c: &mut Checker<'_>,
    raw: Option<&RawCircuitBreaker>,
    key: &str,
) -> BreakerConfig {
    let mut b = BreakerConfig::default();
    let Some(raw) = raw else { return b };
    let key = format!("{key}.circuit_breaker");
    if let Some(v) = &raw.consecutive_failures
        && let Some(n) = positive(c, v, &format!("{key}.consecutive_failures"))
    {
        b.consecutive_failures = n;
    }
    if let Some(v) = &raw.open_for
        && let Some(d) = c.duration(v, &format!("{key}.open_for"))
    {
        b.open_for = d;
    }
    if let Some(v) = &raw.half_open_successes
        && let Some(n) = positive(c, v, &format!("{key}.half_open_successes"))
    {
        b.half_open_successes = n;
    }
    breaker_codes(c, raw, &key, &mut b);
    b
}

/// `circuit_breaker.{failure_codes,distinct_client_codes,distinct_clients}`: no code in both
/// lists, and a client count a breaker can hold.
fn breaker_codes(c: &mut Checker<'_>, raw: &RawCircuitBreaker, key: &str, b: &mut BreakerConfig) {
    if let Some(items) = &raw.failure_codes {
        b.failure_codes = codes(c, items, &format!("{key}.failure_codes"));
    }
    if let Some(items) = &raw.distinct_client_codes {
        b.distinct_client_codes = codes(c, items, &format!("{key}.distinct_client_codes"));
    }
    if let Some(v) = &raw.distinct_clients {
        if (1..=MAX_DISTINCT_CLIENTS).contains(&v.value) {
            b.distinct_clients = v.value;
        } else {
            let reason = format!("must be between 1 and {MAX_DISTINCT_CLIENTS}");
            c.error(place(v), format!("{key}.distinct_clients"), reason);
        }
    }
    // A code named in both lists is reported where the list that names it was written (the
    // other list may be the default).
    let (listed, list_key) = match (&raw.distinct_client_codes, &raw.failure_codes) {
        (Some(items), _) => (items, "distinct_client_codes"),
        (None, Some(items)) => (items, "failure_codes"),
        (None, None) => return,
    };
    for (i, item) in listed.iter().enumerate() {
        let Some(code) = parse_code(&item.value) else {
            continue;
        };
        if b.failure_codes.contains(&code) && b.distinct_client_codes.contains(&code) {
            c.error(
                place(item),
                format!("{key}.{list_key}[{i}]"),
                format!(
                    "`{}` is in both failure_codes and distinct_client_codes (a code is one or the other)",
                    item.value
                ),
            );
        }
    }
}

/// `upstreams.<name>.health_check`: `None` when absent (checks off).
pub(super) fn health_check(
    c: &mut Checker<'_>,
    raw: Option<&RawHealthCheck>,
    key: &str,
) -> Option<HealthCheckConfig> {
    let raw = raw?;
    let mut h = HealthCheckConfig::default();
    let key = format!("{key}.health_check");
    if let Some(v) = &raw.interval
        && let Some(d) = c.duration(v, &format!("{key}.interval"))
    {
        h.interval = d;
    }
    if let Some(v) = &raw.timeout
        && let Some(d) = c.duration(v, &format!("{key}.timeout"))
    {
        h.timeout = d;
    }
    if let Some(v) = &raw.unhealthy_threshold
        && let Some(n) = positive(c, v, &format!("{key}.unhealthy_threshold"))
    {
        h.unhealthy_threshold = n;
    }
    if let Some(v) = &raw.healthy_threshold
        && let Some(n) = positive(c, v, &format!("{key}.healthy_threshold"))
    {
        h.healthy_threshold = n;
    }
    if let Some(v) = &raw.service {
        h.service = v.value.clone();
    }
    Some(h)
}

/// `routes[i].{retryable,retry_on,per_try_timeout}`.
pub(super) fn route_retry(c: &mut Checker<'_>, r: &RawRoute, key: &str) -> RouteRetryConfig {
    RouteRetryConfig {
        retryable: r.retryable,
        retry_on: r
            .retry_on
            .as_ref()
            .map(|items| codes(c, items, &format!("{key}.retry_on"))),
        per_try_timeout: r
            .per_try_timeout
            .as_ref()
            .and_then(|v| c.duration(v, &format!("{key}.per_try_timeout"))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{parse, parse_with_problems};
    use crate::config::{BreakerConfig, Ratio, RetryConfig};

    fn config(upstream: &str, route: &str) -> String {
        format!(
            "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n{upstream}routes:\n  - service: s.A\n    upstream: a\n{route}"
        )
    }

    fn problems(text: &str) -> Vec<String> {
        let (_, problems) = parse_with_problems(Path::new("g.yaml"), text).expect("YAML");
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn address_is_one_endpoint_and_defaults_are_the_design_numbers() {
        let c = parse(Path::new("g.yaml"), &config("    address: h:1\n", "")).expect("valid");
        let u = &c.upstreams[0];
        assert_eq!(u.endpoints, ["h:1"]);
        assert_eq!(u.authority, "h:1");
        assert_eq!(u.retry, RetryConfig::default());
        assert_eq!(u.retry.max_retries, 3);
        assert_eq!(u.circuit_breaker, BreakerConfig::default());
        assert_eq!(u.circuit_breaker.open_for, Duration::from_secs(30));
        assert_eq!(u.health_check, None);
        assert_eq!(c.routes[0].retry.retryable, None);
    }

    #[test]
    fn every_resilience_key_is_read() {
        let upstream = "    endpoints: [h:1, \"http://h:2\"]\n    retry: {max_retries: 1, base_backoff: 10ms, max_backoff: 1s, jitter: 0, budget_ratio: 0.5, budget_min_retries: 3, retryable_codes: [unavailable, RESOURCE_EXHAUSTED]}\n    circuit_breaker: {consecutive_failures: 2, open_for: 1s, half_open_successes: 1}\n    health_check: {interval: 1s, service: tai.Governor}\n";
        let route = "    retryable: true\n    retry_on: [ABORTED]\n    per_try_timeout: 200ms\n";
        let c = parse(Path::new("g.yaml"), &config(upstream, route)).expect("valid");
        let u = &c.upstreams[0];
        assert_eq!(u.endpoints, ["h:1", "h:2"]);
        assert_eq!(u.retry.max_retries, 1);
        assert_eq!(u.retry.jitter, Ratio(0.0));
        assert_eq!(u.retry.budget_ratio, Ratio(0.5));
        assert_eq!(u.retry.retryable_codes, [14, 8]);
        assert_eq!(u.circuit_breaker.consecutive_failures, 2);
        let h = u.health_check.as_ref().expect("health check on");
        assert_eq!(
            (h.interval, h.timeout),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        assert_eq!(h.service, "tai.Governor");
        let r = &c.routes[0].retry;
        assert_eq!(r.retryable, Some(true));
        assert_eq!(r.retry_on.as_deref(), Some(&[10][..]));
        assert_eq!(r.per_try_timeout, Some(Duration::from_millis(200)));
    }

    #[test]
    fn bad_resilience_values_are_reported_at_their_place() {
        let upstream = "    address: h:1\n    retry: {jitter: 1.5, retryable_codes: [OK, NOPE]}\n    circuit_breaker: {consecutive_failures: 0}\n";
        let route = "    retry_on: [13]\n    per_try_timeout: 0s\n";
        assert_eq!(
            problems(&config(upstream, route)),
            [
                "g.yaml:9:21: upstreams.a.retry.jitter: must be between 0 and 1",
                "g.yaml:9:44: upstreams.a.retry.retryable_codes[0]: `OK` is not a gRPC status code other than OK (use a name such as UNAVAILABLE)",
                "g.yaml:9:48: upstreams.a.retry.retryable_codes[1]: `NOPE` is not a gRPC status code other than OK (use a name such as UNAVAILABLE)",
                "g.yaml:10:45: upstreams.a.circuit_breaker.consecutive_failures: must be at least 1",
                "g.yaml:15:22: routes[0].per_try_timeout: must be greater than zero",
            ]
        );
    }

    #[test]
    fn breaker_failure_codes_and_distinct_clients_are_read() {
        let c = parse(Path::new("g.yaml"), &config("    address: h:1\n", "")).expect("valid");
        let b = &c.upstreams[0].circuit_breaker;
        assert_eq!(b.failure_codes, [14, 4]);
        assert_eq!(b.distinct_client_codes, [13, 2, 15]);
        assert_eq!(b.distinct_clients, 3);
        let upstream = "    address: h:1\n    circuit_breaker: {failure_codes: [UNAVAILABLE, INTERNAL], distinct_client_codes: [unknown], distinct_clients: 2}\n";
        let c = parse(Path::new("g.yaml"), &config(upstream, "")).expect("valid");
        let b = &c.upstreams[0].circuit_breaker;
        assert_eq!(b.failure_codes, [14, 13]);
        assert_eq!(b.distinct_client_codes, [2]);
        assert_eq!(b.distinct_clients, 2);
    }

    #[test]
    fn bad_breaker_codes_are_reported_at_their_place() {
        let upstream = "    address: h:1\n    circuit_breaker: {failure_codes: [INTERNAL, NOPE], distinct_clients: 0}\n";
        assert_eq!(
            problems(&config(upstream, "")),
            [
                "g.yaml:9:39: upstreams.a.circuit_breaker.failure_codes[0]: `INTERNAL` is in both failure_codes and distinct_client_codes (a code is one or the other)",
                "g.yaml:9:49: upstreams.a.circuit_breaker.failure_codes[1]: `NOPE` is not a gRPC status code other than OK (use a name such as UNAVAILABLE)",
                "g.yaml:9:74: upstreams.a.circuit_breaker.distinct_clients: must be between 1 and 16",
            ]
        );
    }

    #[test]
    fn resolve_interval_defaults_to_30s_and_must_be_a_positive_duration() {
        let c = parse(Path::new("g.yaml"), &config("    address: h:1\n", "")).expect("valid");
        assert_eq!(c.upstreams[0].resolve_interval, Duration::from_secs(30));
        let text = config("    address: h:1\n    resolve_interval: 5s\n", "");
        let c = parse(Path::new("g.yaml"), &text).expect("valid");
        assert_eq!(c.upstreams[0].resolve_interval, Duration::from_secs(5));
        let zero = config("    address: h:1\n    resolve_interval: 0s\n", "");
        assert_eq!(
            problems(&zero),
            ["g.yaml:9:23: upstreams.a.resolve_interval: must be greater than zero"]
        );
    }

    #[test]
    fn address_and_endpoints_are_exclusive_and_one_is_needed() {
        let both = config("    address: h:1\n    endpoints: [h:2]\n", "");
        assert_eq!(
            problems(&both),
            [
                "g.yaml:8:14: upstreams.a.address: give either `address` or `endpoints`, not both",
                "g.yaml:12:15: routes[0].upstream: upstream is invalid (see its own error)",
            ]
        );
        let neither = config("    connect_timeout: 1s\n", "");
        assert!(
            problems(&neither)
                .iter()
                .any(|p| p == "g.yaml: upstreams.a: needs `address` or `endpoints`"),
            "{:?}",
            problems(&neither)
        );
        let twice = config("    endpoints: [h:1, h:1]\n", "");
        assert_eq!(
            problems(&twice)[0],
            "g.yaml:8:22: upstreams.a.endpoints[1]: `h:1` is listed twice"
        );
    }
}
