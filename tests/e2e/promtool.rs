//! The `/metrics` exposition passes Prometheus' own checker: a gateway with a caching route, a
//! rate limit and a real `redis-server` serves traffic (success, 404, 400, 429, cache hit), then its
//! scrape is piped into `promtool check metrics` (Debian package `prometheus`; `.ci/run` installs
//! it), which must exit 0 with no lint findings.

use std::io::Write as _;
use std::process::{Command, Stdio};

use http::StatusCode;

use crate::admin::admin_get;
use crate::harness::{TestEnv, default_config, start_stubs};
use crate::redis_server::RedisServer;

/// The families each part of the gateway contributes; every one must be in the scrape.
const FAMILIES: &[&str] = &[
    "tai_gateway_requests_total counter",
    "tai_gateway_request_duration_seconds histogram",
    "tai_gateway_request_bytes histogram",
    "tai_gateway_response_bytes histogram",
    "tai_gateway_upstream_request_duration_seconds histogram",
    "tai_gateway_upstream_attempts_total counter",
    "tai_gateway_upstream_circuit_breaker_state gauge",
    "tai_gateway_upstream_endpoint_healthy gauge",
    "tai_gateway_cache_lookups_total counter",
    "tai_gateway_cache_entries gauge",
    "tai_gateway_rate_limited_total counter",
    "tai_gateway_rate_limit_keys gauge",
    "tai_gateway_redis_breaker_state gauge",
    "tai_gateway_redis_calls_total counter",
    "tai_gateway_connections_open gauge",
    "tai_gateway_build_info gauge",
    "process_cpu_seconds_total counter",
    "process_resident_memory_bytes gauge",
];

/// `promtool check metrics` on `text`: its exit code and everything it printed.
fn promtool_check(text: &str) -> (Option<i32>, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), printed)
}

#[test]
fn promtool_reports_a_lint_problem_it_is_shown() {
    // The check below is only meaningful if promtool does flag conventions: a counter without
    // `_total` must be reported (and fail the run).
    let bad = "# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n";
    let (code, printed) = promtool_check(bad);
    assert_ne!(code, Some(0), "{printed}");
    assert!(printed.contains("_total"), "{printed}");
}

#[tokio::test]
async fn the_exposition_after_traffic_passes_promtool_check_metrics() {
    let redis = RedisServer::start().await;
    let stubs = start_stubs().await;
    let config = default_config(&stubs).replacen(
        "    upstream: governor\n",
        "    upstream: governor\n    cache: { ttl: 5m }\n    rate_limits: [tight]\n",
        1,
    );
    let config = format!(
        "{config}redis:\n  url: {}\n  timeout: 200ms\nrate_limits:\n  limits:\n    tight: {{ rate: 1/h, burst: 3, key: ip }}\n",
        redis.url()
    );
    let env = TestEnv::start_on(stubs, &config).await;
    assert_eq!(env.get("/v1/echo/hello").await.status, StatusCode::OK);
    assert_eq!(env.get("/v1/echo/hello").await.status, StatusCode::OK);
    assert_eq!(env.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    let bad = env
        .post_json("/v1/policies/propose", r#"{"policyName":"n","nope":1}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let refused = env.get("/v1/echo/other").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);

    let reply = admin_get(&env, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.body;
    for family in FAMILIES {
        let line = format!("# TYPE {family}");
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    let (code, printed) = promtool_check(&text);
    assert_eq!(
        (code, printed.as_str()),
        (Some(0), ""),
        "promtool check metrics:\n{printed}\non:\n{text}"
    );
}
