//! Where the edge (TLS, JWT, rate limits) meets operations (reload, metrics, access log, admin):
//! a reload keeps the buckets of unchanged limits; 429s and auth failures are counted by limit
//! and reason on `/metrics` (with the per-limit key gauge); the access log names the token's
//! subject and the endpoint actually called; `/routes` and `/config` show auth and limits with
//! secrets redacted; refused requests never reach the backend nor its breaker.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::admin::admin_get;
use crate::harness::{Reply, TestEnv, default_config, start_stubs};

/// A `RequestAction` body the coordinator stub accepts.
/// (after [`propose`] made policy `pol-1`).
const ACTION: &str = r#"{"agentId":"agent-1","action":"deploy","policyId":"pol-1"}"#;

/// Proposes policy `pol-1` (one request on the governor route, counted by `tight`).
async fn propose(env: &TestEnv) {
    let reply = env
        .post_json("/v1/policies/propose", r#"{"policyName":"p"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!!";

/// The default test config with the governor route limited by `tight` (burst 2 per IP, optional
/// token), the coordinator route requiring a token with `policy:write`, an HS256 provider, and
/// `extra` appended.
fn config(stubs: &tai_stubs::StubServers, burst: u32, extra: &str) -> String {
    let text = default_config(stubs)
        .replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    rate_limits: [tight]\n    auth: { mode: optional }\n",
        )
        .replace(
            "  - service: tai.Coordinator\n    upstream: coordinator\n",
            "  - service: tai.Coordinator\n    upstream: coordinator\n    rate_limits: [per_sub]\n    auth: { mode: required, providers: [hs], require_scopes: [policy:write] }\n",
        );
    format!(
        "{text}auth:\n  realm: edge-ops\n  providers:\n    hs:\n      issuer: hs-issuer\n      algorithms: [HS256]\n      shared_secret: \"{SECRET}\"\n\
         rate_limits:\n  prune_interval: 10ms\n  limits:\n    tight: {{ rate: 1/h, burst: {burst}, key: ip }}\n    per_sub: {{ rate: 1/h, burst: 100, key: \"claim:sub\" }}\n{extra}"
    )
}

async fn start(burst: u32, extra: &str) -> TestEnv {
    let stubs = start_stubs().await;
    let text = config(&stubs, burst, extra);
    TestEnv::start_on(stubs, &text).await
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn token(secret: &str, scope: &str, exp: i64) -> String {
    let claims = json!({ "iss": "hs-issuer", "sub": "alice", "scope": scope, "exp": exp });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).expect("hmac key"),
    )
    .expect("sign")
}

/// `POST /v1/actions` (coordinator, token required) with this bearer token, if any.
async fn act(env: &TestEnv, bearer: Option<&str>) -> Reply {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    env.send(Method::POST, "/v1/actions", &headers, Some(ACTION))
        .await
}

/// Polls `/metrics` until it has every line of `want` (bounded; the key gauge is refreshed by
/// the maintenance task once a second).
async fn wait_for_metrics(env: &TestEnv, want: &[&str]) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = admin_get(env, "/metrics").await.body;
        if want.iter().all(|line| text.lines().any(|l| l == *line)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("metrics never showed {want:?}:\n{text}");
}

fn series<'t>(text: &'t str, family: &str) -> Vec<&'t str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .collect()
}

#[tokio::test]
async fn a_reload_with_an_unrelated_change_keeps_an_exhausted_bucket() {
    let env = start(2, "").await;
    for _ in 0..2 {
        assert_eq!(env.get("/v1/echo/x").await.status, StatusCode::OK);
    }
    assert_eq!(
        env.get("/v1/echo/x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let before = env.gateway.gateway.runtime();
    // Unrelated change: one more forwarded header (and every provider line moves down).
    let path = env.dir.path().join("gateway.yaml");
    let text = std::fs::read_to_string(&path).expect("read config");
    let changed = text.replace(
        "request_to_metadata: [x-tenant-id, x-stub-*]",
        "request_to_metadata: [x-tenant-id, x-stub-*, x-extra]",
    );
    assert_ne!(changed, text);
    std::fs::write(&path, &changed).expect("write config");
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{:?}", status.errors);
    let after = env.gateway.gateway.runtime();
    assert!(!std::sync::Arc::ptr_eq(&before, &after), "a new runtime");
    assert!(std::sync::Arc::ptr_eq(
        before.rate_limits.get("tight").expect("tight"),
        after.rate_limits.get("tight").expect("tight"),
    ));
    let refused = env.get("/v1/echo/x").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );

    // A changed limit starts afresh: its new burst passes.
    std::fs::write(&path, changed.replace("burst: 2,", "burst: 3,")).expect("write config");
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{:?}", status.errors);
    assert_eq!(env.get("/v1/echo/x").await.status, StatusCode::OK);
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 3);
}

#[tokio::test]
async fn rate_limit_and_auth_refusals_are_counted_by_limit_and_reason() {
    let env = start(1, "").await;
    propose(&env).await;
    for _ in 0..2 {
        assert_eq!(
            env.get("/v1/echo/x").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let cases = [
        (None, StatusCode::UNAUTHORIZED),
        (
            Some(token(SECRET, "policy:write", now() - 3600)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some(token(
                "another-secret-of-at-least-32-bytes!!!",
                "policy:write",
                now() + 600,
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (Some("not.a.jwt".to_owned()), StatusCode::UNAUTHORIZED),
        (
            Some(token(SECRET, "policy:read", now() + 600)),
            StatusCode::FORBIDDEN,
        ),
        (
            Some(token(SECRET, "policy:write", now() + 600)),
            StatusCode::OK,
        ),
    ];
    for (bearer, want) in cases {
        let reply = act(&env, bearer.as_deref()).await;
        assert_eq!(reply.status, want, "{bearer:?}: {}", reply.body);
    }
    let text = wait_for_metrics(
        &env,
        &[
            "tai_gateway_rate_limit_keys{limit=\"per_sub\"} 1",
            "tai_gateway_rate_limit_keys{limit=\"tight\"} 1",
        ],
    )
    .await;
    assert_eq!(
        series(&text, "tai_gateway_rate_limited_total"),
        ["tai_gateway_rate_limited_total{limit=\"tight\"} 2"]
    );
    assert_eq!(
        series(&text, "tai_gateway_auth_failures_total"),
        [
            "tai_gateway_auth_failures_total{reason=\"bad_signature\"} 1",
            "tai_gateway_auth_failures_total{reason=\"expired\"} 1",
            "tai_gateway_auth_failures_total{reason=\"insufficient_scope\"} 1",
            "tai_gateway_auth_failures_total{reason=\"malformed\"} 1",
            "tai_gateway_auth_failures_total{reason=\"missing\"} 1",
        ]
    );
    assert!(text.contains(
        "# TYPE tai_gateway_rate_limit_keys gauge\n\
         tai_gateway_rate_limit_keys{limit=\"per_sub\"} 1\n\
         tai_gateway_rate_limit_keys{limit=\"tight\"} 1\n"
    ));
    // Refusals are neither upstream failures nor breaker events.
    assert!(series(&text, "tai_gateway_upstream_failures_total").is_empty());
    for upstream in env.gateway.gateway.runtime().upstreams.values() {
        for endpoint in upstream.endpoints().iter() {
            assert_eq!(
                endpoint.breaker.state(tokio::time::Instant::now()),
                tai_gateway::upstream::breaker::BreakerState::Closed
            );
        }
    }
    assert_eq!(env.stubs.store().calls("tai.Coordinator/RequestAction"), 1);
}

#[tokio::test]
async fn refusals_never_open_the_breaker() {
    let env = start(1, "").await;
    propose(&env).await;
    // Far more refusals than the default breaker's consecutive-failure threshold.
    for _ in 0..12 {
        assert_eq!(act(&env, None).await.status, StatusCode::UNAUTHORIZED);
        let _ = env.get("/v1/echo/x").await;
    }
    let good = token(SECRET, "policy:write", now() + 600);
    assert_eq!(act(&env, Some(&good)).await.status, StatusCode::OK);
    let text = admin_get(&env, "/metrics").await.body;
    assert!(
        text.lines().any(|l| l
            .starts_with("tai_gateway_upstream_circuit_breaker_state{upstream=\"coordinator\"")
            && l.ends_with(",state=\"closed\"} 1")),
        "{text}"
    );
    assert!(series(&text, "tai_gateway_upstream_failures_total").is_empty());
}

/// Polls the access log file until a line contains `needle` (bounded).
async fn wait_for_line(path: &std::path::Path, needle: &str) -> Value {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(line) = text.lines().find(|l| l.contains(needle))
        {
            return serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no access log line with {needle} in {}", path.display());
}

#[tokio::test]
async fn the_access_log_names_the_subject_and_the_endpoint_called() {
    let stubs = start_stubs().await;
    // The coordinator upstream's first endpoint refuses connections: the call goes to the second.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let coord = stubs.coordinator_addr;
    let text = config(&stubs, 5, "access_log:\n  path: access.log\n").replace(
        &format!("  coordinator:\n    address: {coord}\n"),
        &format!("  coordinator:\n    endpoints: [\"{closed}\", \"{coord}\"]\n"),
    );
    let env = TestEnv::start_on(stubs, &text).await;
    propose(&env).await;
    let good = token(SECRET, "policy:write", now() + 600);
    for i in 0..4 {
        let id = format!("sub-{i}");
        let auth = format!("Bearer {good}");
        let reply = env
            .send(
                Method::POST,
                "/v1/actions",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                    ("x-request-id", &id),
                ],
                Some(ACTION),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let anonymous = env
        .send(Method::GET, "/v1/echo/x", &[("x-request-id", "anon")], None)
        .await;
    assert_eq!(anonymous.status, StatusCode::OK);
    let path = env.dir.path().join("access.log");
    for i in 0..4 {
        let line = wait_for_line(&path, &format!("\"sub-{i}\"")).await;
        assert_eq!(line["subject"], "alice");
        assert_eq!(line["upstream"], "coordinator");
        assert_eq!(line["upstream_endpoint"], coord.to_string(), "{line}");
    }
    let line = wait_for_line(&path, "\"anon\"").await;
    assert_eq!(line["subject"], Value::Null);
    let log = std::fs::read_to_string(&path).expect("log");
    assert!(!log.contains(&good), "the token is never logged");
}

#[tokio::test]
async fn routes_and_config_show_auth_and_limits_without_secrets() {
    let env = start(2, "").await;
    let routes = admin_get(&env, "/routes").await.json();
    let actions = routes
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["template"] == "/v1/actions")
        .expect("actions binding");
    assert_eq!(
        actions["auth"],
        json!({
            "mode": "required",
            "providers": ["hs"],
            "require_scopes": ["policy:write"],
            "require_claims": [],
            "forward_authorization": false,
        })
    );
    assert_eq!(
        actions["rate_limits"],
        json!(["per_sub"]),
        "claim-keyed limits are listed too (they run after authentication)"
    );
    let echo = routes
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["template"] == "/v1/echo/{string_value}")
        .expect("echo binding");
    assert_eq!(echo["auth"]["mode"], "optional");
    assert_eq!(echo["rate_limits"], json!(["tight"]));

    let reply = admin_get(&env, "/config").await;
    assert!(!reply.body.contains(SECRET), "{}", reply.body);
    let config = reply.json();
    let hs = &config["auth"]["providers"][0];
    assert_eq!(hs["name"], "hs");
    assert_eq!(hs["shared_secret"], "<redacted>");
    assert_eq!(hs["algorithms"], json!(["HS256"]));
    assert_eq!(config["auth"]["realm"], "edge-ops");
    let limits = config["rate_limits"]["limits"].as_array().expect("limits");
    let limit = |name: &str| {
        limits
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no limit {name}"))
    };
    assert_eq!(
        limit("tight"),
        json!({ "name": "tight", "rate": "1/3600s", "burst": 2, "key": "ip", "max_keys": 100000 })
    );
    assert_eq!(limit("per_sub")["key"], "claim:sub");
    assert_eq!(limit("per_sub")["max_key_bytes"], 1024);
    assert_eq!(config["rate_limits"]["max_keys"], 100000);
    assert_eq!(config["rate_limits"]["prune_interval"], "10ms");
    assert_eq!(config["routes"][1]["rate_limits"], json!(["per_sub"]));
    assert_eq!(config["routes"][1]["auth"]["mode"], "required");
    assert_eq!(config["listeners"][0]["tls"], Value::Null);
}
