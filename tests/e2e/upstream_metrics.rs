//! The upstream resilience state as operators see it: `/metrics` lines for breakers, retries,
//! budgets, in-flight calls and failure reasons, after faults injected through the stubs'
//! `x-stub-*` metadata; `/routes` and `/config` showing retry policies, endpoints and resilience
//! settings; endpoints given as a host name (`localhost`) resolved into one endpoint per address;
//! and the `x-request-timeout` client deadline header.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tai_gateway::upstream::Upstream;
use tokio::time::Instant;

use crate::admin::admin_get;
use crate::harness::{Reply, TestEnv, start_stubs};
use crate::resilience::config;

const ECHO: &str = "tai.Governor/Echo";

async fn start(upstream: &str, route: &str) -> TestEnv {
    let stubs = start_stubs().await;
    let upstream = upstream.replace("{gov}", &stubs.governor_addr.to_string());
    let text = config(&stubs, &upstream, route);
    TestEnv::start_on(stubs, &text).await
}

fn governor(env: &TestEnv) -> Arc<Upstream> {
    env.gateway.gateway.runtime().upstreams["governor"].clone()
}

async fn get(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> Reply {
    env.send(Method::GET, path, headers, None).await
}

/// The `/metrics` text.
async fn scrape(env: &TestEnv) -> String {
    let reply = admin_get(env, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

fn assert_lines(text: &str, lines: &[String]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test]
async fn an_open_breaker_shows_as_gauge_transition_and_circuit_open_failures() {
    let env = start(
        "    address: {gov}\n    retry: {max_retries: 0}\n    circuit_breaker: {consecutive_failures: 2, open_for: 60s}\n",
        "",
    )
    .await;
    let gov = env.stubs.governor_addr;
    let coord = env.stubs.coordinator_addr;
    let before = scrape(&env).await;
    assert_lines(
        &before,
        &[
            "# TYPE tai_gateway_upstream_circuit_breaker_state gauge".to_owned(),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_state{{upstream="governor",endpoint="{gov}",state="closed"}} 1"#
            ),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_state{{upstream="governor",endpoint="{gov}",state="open"}} 0"#
            ),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_state{{upstream="coordinator",endpoint="{coord}",state="closed"}} 1"#
            ),
        ],
    );

    for i in 0..2 {
        let reply = get(&env, "/v1/echo/x", &[("x-stub-fail-code", "UNAVAILABLE")]).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{i}");
    }
    for _ in 0..3 {
        let fast = get(&env, "/v1/echo/x", &[]).await;
        assert_eq!(
            fast.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            fast.body
        );
        assert_eq!(fast.header("x-tai-attempts"), Some("0"));
    }
    assert_eq!(
        env.stubs.store().calls(ECHO),
        2,
        "an open breaker sends nothing"
    );

    let text = scrape(&env).await;
    let ep = format!(r#"upstream="governor",endpoint="{gov}""#);
    assert_lines(
        &text,
        &[
            format!(r#"tai_gateway_upstream_circuit_breaker_state{{{ep},state="closed"}} 0"#),
            format!(r#"tai_gateway_upstream_circuit_breaker_state{{{ep},state="open"}} 1"#),
            format!(r#"tai_gateway_upstream_circuit_breaker_state{{{ep},state="half_open"}} 0"#),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_state{{upstream="coordinator",endpoint="{coord}",state="closed"}} 1"#
            ),
            "# TYPE tai_gateway_upstream_circuit_breaker_transitions_total counter".to_owned(),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_transitions_total{{{ep},to_state="open"}} 1"#
            ),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_transitions_total{{{ep},to_state="half_open"}} 0"#
            ),
            format!(
                r#"tai_gateway_upstream_circuit_breaker_transitions_total{{{ep},to_state="closed"}} 0"#
            ),
            r#"tai_gateway_upstream_failures_total{upstream="governor",reason="circuit_open"} 3"#
                .to_owned(),
            r#"tai_gateway_upstream_attempts_total{upstream="governor"} 2"#.to_owned(),
            r#"tai_gateway_upstream_requests_in_flight{upstream="governor"} 0"#.to_owned(),
            r#"tai_gateway_upstream_endpoints{upstream="governor"} 1"#.to_owned(),
            format!("tai_gateway_upstream_endpoint_healthy{{{ep}}} 1"),
            format!("tai_gateway_upstream_endpoint_ejections_total{{{ep}}} 0"),
            format!("tai_gateway_upstream_endpoint_restorations_total{{{ep}}} 0"),
            r#"tai_gateway_upstream_retries_total{upstream="governor"} 0"#.to_owned(),
            r#"tai_gateway_upstream_requests_total{upstream="governor"} 5"#.to_owned(),
        ],
    );

    // `/routes` shows the breaker of each endpoint behind a binding.
    let routes = admin_get(&env, "/routes").await.json();
    let echo = routes
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["template"] == "/v1/echo/{string_value}")
        .cloned()
        .expect("echo GET binding");
    assert_eq!(echo["upstream_endpoints"][0]["endpoint"], gov.to_string());
    assert_eq!(echo["upstream_endpoints"][0]["circuit_breaker"], "open");
    assert_eq!(echo["upstream_endpoints"][0]["healthy"], true);
}

#[tokio::test]
async fn retries_budget_exhaustion_and_in_flight_calls_are_exported() {
    let env = start(
        "    address: {gov}\n    retry: {budget_ratio: 0.0, budget_min_retries: 2, base_backoff: 1ms}\n    circuit_breaker: {consecutive_failures: 100}\n",
        "",
    )
    .await;
    let fail = [("x-stub-fail-first", "10"), ("x-stub-fail-key", "k")];
    let reply = get(&env, "/v1/echo/x", &fail).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("x-tai-attempts"), Some("3"));

    // A call held by the stub is in flight while /metrics is scraped.
    let slow = {
        let url = format!(
            "http://{}/v1/echo/slow",
            env.gateway.http_addr.expect("http listener")
        );
        tokio::spawn(async move {
            crate::harness::send_with(
                &crate::harness::http1_client(),
                Method::GET,
                &url,
                &[("x-stub-delay-ms", "3000")],
                None,
            )
            .await
        })
    };
    let upstream = governor(&env);
    let give_up = Instant::now() + Duration::from_secs(5);
    while upstream.stats().in_flight == 0 {
        assert!(Instant::now() < give_up, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = scrape(&env).await;
    assert_lines(
        &text,
        &[
            r#"tai_gateway_upstream_retries_total{upstream="governor"} 2"#.to_owned(),
            r#"tai_gateway_upstream_retry_budget_exhausted_total{upstream="governor"} 1"#
                .to_owned(),
            r#"tai_gateway_upstream_requests_in_flight{upstream="governor"} 1"#.to_owned(),
            r#"tai_gateway_upstream_retries_total{upstream="coordinator"} 0"#.to_owned(),
        ],
    );
    let slow = slow.await.expect("slow call");
    assert_eq!(slow.status, StatusCode::OK, "{}", slow.body);
    assert_lines(
        &scrape(&env).await,
        &[r#"tai_gateway_upstream_requests_in_flight{upstream="governor"} 0"#.to_owned()],
    );
}

#[tokio::test]
async fn per_try_timeouts_and_deadlines_are_failure_reasons_of_their_own() {
    let env = start(
        "    address: {gov}\n",
        "    timeout: 5s\n    per_try_timeout: 100ms\n    retryable: false\n",
    )
    .await;
    let per_try = get(&env, "/v1/echo/slow", &[("x-stub-delay-ms", "10000")]).await;
    assert_eq!(
        per_try.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        per_try.body
    );
    assert_eq!(per_try.header("x-tai-attempts"), Some("1"));
    let deadline = get(
        &env,
        "/v1/echo/slow",
        &[("x-stub-delay-ms", "10000"), ("x-request-timeout", "50ms")],
    )
    .await;
    assert_eq!(
        deadline.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        deadline.body
    );
    assert_lines(
        &scrape(&env).await,
        &[
            r#"tai_gateway_upstream_failures_total{upstream="governor",reason="per_try_timeout"} 1"#
                .to_owned(),
            r#"tai_gateway_upstream_failures_total{upstream="governor",reason="deadline_exceeded"} 1"#
                .to_owned(),
        ],
    );
}

#[tokio::test]
async fn x_request_timeout_bounds_the_call_and_the_shorter_deadline_wins() {
    let env = start("    address: {gov}\n", "    timeout: 300ms\n").await;
    let slow = [("x-stub-delay-ms", "10000")];

    let started = std::time::Instant::now();
    let reply = get(
        &env,
        "/v1/echo/a",
        &[slow[0], ("x-request-timeout", "100ms")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    assert_eq!(
        reply.json()["message"],
        "upstream `governor` did not answer within 100ms"
    );
    assert!(started.elapsed() >= Duration::from_millis(100));

    // The route's 300ms is shorter than the header's 2s.
    let reply = get(&env, "/v1/echo/b", &[slow[0], ("x-request-timeout", "2s")]).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    assert_eq!(
        reply.json()["message"],
        "upstream `governor` did not answer within 300ms"
    );

    // grpc-timeout and x-request-timeout together: the shorter one.
    let reply = get(
        &env,
        "/v1/echo/c",
        &[
            slow[0],
            ("x-request-timeout", "250ms"),
            ("grpc-timeout", "80m"),
        ],
    )
    .await;
    assert_eq!(
        reply.json()["message"],
        "upstream `governor` did not answer within 80ms"
    );

    // A fast call under the bound answers normally.
    let ok = get(&env, "/v1/echo/fast", &[("x-request-timeout", "2s")]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    for bad in ["250", "soon", "0ms", "-1s"] {
        let reply = get(&env, "/v1/echo/bad", &[("x-request-timeout", bad)]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        assert_eq!(reply.json()["code"], 3);
        assert_eq!(
            reply.json()["message"],
            format!(
                "invalid x-request-timeout header `{bad}`: use a positive duration such as 250ms or 2s"
            )
        );
    }
    assert_eq!(
        env.stubs.store().calls(ECHO),
        4,
        "rejected requests never reach the backend"
    );
}

#[tokio::test]
async fn routes_show_retry_policy_and_endpoints_and_config_shows_resilience() {
    let env = start(
        "    endpoints: [\"{gov}\"]\n    resolve_interval: 45s\n    retry: {max_retries: 2, retryable_codes: [UNAVAILABLE, RESOURCE_EXHAUSTED]}\n    circuit_breaker: {consecutive_failures: 7, open_for: 10s}\n    health_check: {interval: 1h}\n",
        "    per_try_timeout: 250ms\n",
    )
    .await;
    let gov = env.stubs.governor_addr.to_string();
    let routes = admin_get(&env, "/routes").await.json();
    let routes = routes.as_array().expect("array");
    let find = |method: &str, template: &str| {
        routes
            .iter()
            .find(|r| r["http_method"] == method && r["template"] == template)
            .cloned()
            .unwrap_or_else(|| panic!("{method} {template} in {routes:?}"))
    };
    let echo = find("GET", "/v1/echo/{string_value}");
    assert_eq!(
        echo["retry"],
        serde_json::json!({
            "retryable": true,
            "retry_on": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            "per_try_timeout": "250ms",
            "max_retries": 2,
            "base_backoff": "25ms",
            "max_backoff": "250ms",
            "budget_ratio": 0.2,
        })
    );
    // (`in_flight` is not compared: the first health check may be on its way.)
    let endpoints = echo["upstream_endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    for (key, value) in [
        ("endpoint", gov.as_str()),
        ("target", gov.as_str()),
        ("circuit_breaker", "closed"),
    ] {
        assert_eq!(endpoints[0][key], value, "{key}");
    }
    assert_eq!(endpoints[0]["healthy"], true);
    assert!(endpoints[0]["in_flight"].is_u64());
    let propose = find("POST", "/v1/policies/propose");
    assert_eq!(propose["retry"]["retryable"], false);
    let action = find("POST", "/v1/actions");
    assert_eq!(
        action["retry"]["retry_on"],
        serde_json::json!(["UNAVAILABLE"])
    );
    assert_eq!(action["retry"]["max_retries"], 3);

    let config = admin_get(&env, "/config").await.json();
    let upstream = &config["upstreams"][1];
    assert_eq!(upstream["name"], "governor");
    assert_eq!(upstream["endpoints"], serde_json::json!([gov]));
    assert_eq!(upstream["resolve_interval"], "45s");
    assert_eq!(upstream["retry"]["max_retries"], 2);
    assert_eq!(upstream["retry"]["budget_ratio"], 0.2);
    assert_eq!(
        upstream["retry"]["retryable_codes"],
        serde_json::json!(["UNAVAILABLE", "RESOURCE_EXHAUSTED"])
    );
    assert_eq!(
        upstream["circuit_breaker"],
        serde_json::json!({
            "consecutive_failures": 7,
            "open_for": "10s",
            "half_open_successes": 2,
            "failure_codes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"],
            "distinct_client_codes": ["INTERNAL", "UNKNOWN", "DATA_LOSS"],
            "distinct_clients": 3,
        })
    );
    assert_eq!(upstream["health_check"]["interval"], "3600s");
    assert_eq!(upstream["health_check"]["unhealthy_threshold"], 2);
    assert_eq!(
        config["upstreams"][0]["health_check"],
        serde_json::Value::Null
    );
    assert_eq!(config["routes"][0]["retry"]["per_try_timeout"], "250ms");
    assert_eq!(
        config["routes"][0]["retry"]["retryable"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn a_host_name_endpoint_becomes_one_endpoint_per_resolved_address() {
    let stubs = start_stubs().await;
    let port = stubs.governor_addr.port();
    let upstream = format!(
        "    address: localhost:{port}\n    resolve_interval: 50ms\n    retry: {{base_backoff: 1ms}}\n"
    );
    let text = config(&stubs, &upstream, "");
    let env = TestEnv::start_on(stubs, &text).await;
    let upstream = governor(&env);
    let v4 = format!("127.0.0.1:{port}");
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let names: Vec<String> = upstream
            .endpoints()
            .iter()
            .map(|e| e.authority.clone())
            .collect();
        if names.contains(&v4) && !names.contains(&format!("localhost:{port}")) {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "localhost never resolved: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for e in upstream.endpoints().iter() {
        assert_eq!(e.target, format!("localhost:{port}"));
        assert!(e.address.is_some_and(|a| a.ip().is_loopback()), "{e:?}");
    }

    // The stub listens on 127.0.0.1 only: a `::1` endpoint, if localhost has one, refuses, and
    // the refused attempt moves to the other endpoint (POST included: it was never sent).
    for i in 0..20 {
        let reply = env
            .post_json("/v1/echo", &format!(r#"{{"stringValue":"{i}"}}"#))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.body);
    }
    assert_eq!(env.stubs.store().calls(ECHO), 20);

    let text = scrape(&env).await;
    assert_lines(
        &text,
        &[format!(
            r#"tai_gateway_upstream_circuit_breaker_state{{upstream="governor",endpoint="{v4}",state="closed"}} 1"#
        )],
    );
    assert!(!text.contains("endpoint=\"localhost:"), "{text}");
    let routes = admin_get(&env, "/routes").await.json();
    let echo = routes
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["template"] == "/v1/echo")
        .cloned()
        .expect("echo POST binding");
    let endpoints = echo["upstream_endpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        endpoints
            .iter()
            .any(|e| e["endpoint"] == v4.as_str() && e["target"] == format!("localhost:{port}")),
        "{endpoints:?}"
    );
}

#[tokio::test]
async fn health_check_ejections_and_restorations_are_counted_per_endpoint() {
    let sick = start_stubs().await;
    let well = start_stubs().await;
    let upstream = format!(
        "    endpoints: [\"{}\", \"{}\"]\n    health_check: {{interval: 20ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1}}\n",
        sick.governor_addr, well.governor_addr
    );
    let text = config(&well, &upstream, "");
    let env = TestEnv::start_on(well, &text).await;
    let upstream = governor(&env);
    let sick_ep = format!(r#"upstream="governor",endpoint="{}""#, sick.governor_addr);
    let well_ep = format!(
        r#"upstream="governor",endpoint="{}""#,
        env.stubs.governor_addr
    );

    sick.health().set("", tai_stubs::ServingStatus::NotServing);
    let give_up = Instant::now() + Duration::from_secs(5);
    while upstream.stats().endpoints_unhealthy != 1 {
        assert!(Instant::now() < give_up, "the endpoint was never ejected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_lines(
        &scrape(&env).await,
        &[
            format!("tai_gateway_upstream_endpoint_healthy{{{sick_ep}}} 0"),
            format!("tai_gateway_upstream_endpoint_healthy{{{well_ep}}} 1"),
            format!("tai_gateway_upstream_endpoint_ejections_total{{{sick_ep}}} 1"),
            format!("tai_gateway_upstream_endpoint_ejections_total{{{well_ep}}} 0"),
            format!("tai_gateway_upstream_endpoint_restorations_total{{{sick_ep}}} 0"),
            r#"tai_gateway_upstream_endpoints{upstream="governor"} 2"#.to_owned(),
        ],
    );

    sick.health().set("", tai_stubs::ServingStatus::Serving);
    while upstream.stats().endpoints_unhealthy != 0 {
        assert!(Instant::now() < give_up, "the endpoint was never restored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_lines(
        &scrape(&env).await,
        &[
            format!("tai_gateway_upstream_endpoint_healthy{{{sick_ep}}} 1"),
            format!("tai_gateway_upstream_endpoint_ejections_total{{{sick_ep}}} 1"),
            format!("tai_gateway_upstream_endpoint_restorations_total{{{sick_ep}}} 1"),
        ],
    );
}
