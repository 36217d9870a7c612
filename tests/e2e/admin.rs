//! The admin server over real sockets: health and readiness, Prometheus metrics after real
//! requests, `/routes`, `/config`, the access log file, and graceful shutdown of the real binary
//! under load.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{Reply, TempDir, TestEnv, http1_client, send_with, start_stubs};

/// GET on the admin listener.
pub(crate) async fn admin_get(env: &TestEnv, path: &str) -> Reply {
    let addr = env.gateway.admin_addr.expect("admin listener");
    send_with(
        &http1_client(),
        Method::GET,
        &format!("http://{addr}{path}"),
        &[],
        None,
    )
    .await
}

async fn propose(env: &TestEnv) -> Reply {
    env.post_json("/v1/policies/propose", r#"{"policyName":"n"}"#)
        .await
}

#[tokio::test]
async fn healthz_and_ready_answer_on_the_admin_listener_only() {
    let env = TestEnv::start().await;
    let health = admin_get(&env, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, r#"{"status":"ok"}"#);
    let ready = admin_get(&env, "/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, r#"{"status":"ready"}"#);
    for path in ["/metrics", "/config", "/routes", "/reload", "/healthz"] {
        let public = env.get(path).await;
        assert_eq!(
            public.status,
            StatusCode::NOT_FOUND,
            "{path} on the public listener"
        );
    }
    let unknown = admin_get(&env, "/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_expose_every_family_with_route_and_status_labels() {
    let env = TestEnv::start().await;
    for _ in 0..3 {
        assert_eq!(propose(&env).await.status, StatusCode::OK);
    }
    assert_eq!(env.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    let bad = env
        .post_json("/v1/policies/propose", r#"{"policyName":"n","nope":1}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let failed = env
        .send(
            Method::POST,
            "/v1/policies/propose",
            &[
                ("content-type", "application/json"),
                ("x-stub-fail-code", "UNAVAILABLE"),
            ],
            Some("{}"),
        )
        .await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);

    let reply = admin_get(&env, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.body;
    let ok = r#"route="tai.Governor",response_code="200",grpc_response_status="0",listener="http""#;
    for line in [
        format!("tai_gateway_requests_total{{{ok}}} 3"),
        r#"tai_gateway_requests_total{route="unmatched",response_code="404",grpc_response_status="5",listener="http"} 1"#.to_owned(),
        r#"tai_gateway_requests_total{route="tai.Governor",response_code="400",grpc_response_status="3",listener="http"} 1"#.to_owned(),
        r#"tai_gateway_requests_total{route="tai.Governor",response_code="503",grpc_response_status="14",listener="http"} 1"#.to_owned(),
        format!("tai_gateway_request_duration_seconds_count{{{ok}}} 3"),
        format!("tai_gateway_request_duration_seconds_bucket{{{ok},le=\"+Inf\"}} 3"),
        format!("tai_gateway_request_bytes_sum{{{ok}}} 54"),
        format!("tai_gateway_response_bytes_count{{{ok}}} 3"),
        r#"tai_gateway_upstream_request_duration_seconds_count{upstream="governor"} 4"#.to_owned(),
        r#"tai_gateway_upstream_attempts_total{upstream="governor"} 4"#.to_owned(),
        r#"tai_gateway_transcoding_errors_total{kind="request_json"} 1"#.to_owned(),
        r#"tai_gateway_connections_total{listener="admin"} 1"#.to_owned(),
        "# TYPE tai_gateway_config_reloads_total counter".to_owned(),
        "# TYPE tai_gateway_connections_open gauge".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    // Endpoint addresses come from the config (upstream families only); client addresses never.
    assert!(
        !text.contains("/v1/policies")
            && text
                .lines()
                .all(|l| !l.contains("127.0.0.1") || l.contains(",endpoint=\"127.0.0.1:")),
        "no raw paths or client addresses in labels:\n{text}"
    );
}

#[tokio::test]
async fn routes_list_every_binding_with_method_upstream_and_timeout() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "upstream: governor\n",
            "upstream: governor\n    timeout: 3s\n",
        )
    })
    .await;
    let reply = admin_get(&env, "/routes").await;
    assert_eq!(reply.status, StatusCode::OK);
    let routes = reply.json();
    let routes = routes.as_array().expect("array");
    assert_eq!(routes.len(), 23, "{routes:?}");
    let propose = routes
        .iter()
        .find(|r| r["template"] == "/v1/policies/propose")
        .expect("propose binding");
    assert_eq!(propose["http_method"], "POST");
    assert_eq!(propose["grpc_method"], "tai.Governor/ProposePolicy");
    assert_eq!(propose["route"], "tai.Governor");
    assert_eq!(propose["upstream"], "governor");
    assert_eq!(propose["timeout"], "3s");
    let action = routes
        .iter()
        .find(|r| r["template"] == "/v1/actions")
        .expect("actions binding");
    assert_eq!(action["grpc_method"], "tai.Coordinator/RequestAction");
    assert_eq!(action["upstream"], "coordinator");
    assert_eq!(action["timeout"], "10s");
}

#[tokio::test]
async fn config_shows_the_effective_config_as_json() {
    let env = TestEnv::start_with(|c| {
        format!("{c}access_log:\n  enabled: false\nshutdown:\n  drain_timeout: 7s\n")
    })
    .await;
    let config = admin_get(&env, "/config").await.json();
    assert_eq!(
        config["listeners"],
        serde_json::json!([{ "name": "http", "address": "127.0.0.1:0", "tls": null, "routes": null }])
    );
    assert_eq!(config["upstreams"][0]["name"], "coordinator");
    assert_eq!(
        config["upstreams"][1]["address"],
        env.stubs.governor_addr.to_string()
    );
    assert_eq!(config["routes"][0]["service"], "tai.Governor");
    assert_eq!(config["routes"][0]["upstream"], "governor");
    assert_eq!(config["routes"][0]["timeout"], "10s");
    assert_eq!(
        config["routes"][0]["headers"]["request_to_metadata"],
        serde_json::json!(["x-tenant-id", "x-stub-*"])
    );
    assert_eq!(config["access_log"]["enabled"], false);
    assert_eq!(config["shutdown"]["drain_timeout"], "7s");
    assert_eq!(config["reload"]["watch"], true);
}

/// Polls `path` until it holds a line containing `needle` (bounded: the writer thread writes a
/// batch every 10 ms).
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
async fn access_log_writes_one_json_line_per_request_without_secrets() {
    let env = TestEnv::start_with(|c| format!("{c}access_log:\n  path: access.log\n")).await;
    let reply = env
        .send(
            Method::POST,
            "/v1/policies/propose?access_token=s3cr3t-query",
            &[
                ("content-type", "application/json"),
                ("x-request-id", "req-log-1"),
                ("authorization", "Bearer s3cr3t-token"),
            ],
            Some(r#"{"policyName":"n"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let missing = env
        .send(
            Method::GET,
            "/nowhere",
            &[("x-request-id", "req-log-2")],
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let path = env.dir.path().join("access.log");
    let line = wait_for_line(&path, "req-log-1").await;
    assert_eq!(line["request_id"], "req-log-1");
    assert_eq!(line["listener"], "http");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/v1/policies/propose");
    assert_eq!(line["route"], "tai.Governor");
    assert_eq!(line["status"], 200);
    assert_eq!(line["grpc_status"], 0);
    assert_eq!(line["bytes_in"], 18);
    assert_eq!(line["bytes_out"], reply.body.len());
    assert_eq!(line["upstream"], "governor");
    assert_eq!(
        line["upstream_endpoint"],
        env.stubs.governor_addr.to_string()
    );
    assert_eq!(line["attempts"], 1);
    assert!(line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert!(
        line["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:"))
    );
    assert!(
        line["time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24)
    );

    let line = wait_for_line(&path, "req-log-2").await;
    assert_eq!(line["route"], Value::Null);
    assert_eq!(line["status"], 404);
    assert_eq!(line["grpc_status"], 5);
    assert_eq!(line["attempts"], 0);
    assert_eq!(line["upstream"], Value::Null);

    let text = std::fs::read_to_string(&path).expect("read log");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

/// One request on a fresh connection; `Err` when the connection failed.
async fn try_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Result<Reply, String> {
    use http_body_util::BodyExt;
    let mut request = http::Request::builder().method(method).uri(url);
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            body.as_bytes(),
        )))
        .expect("request");
    let response = http1_client()
        .request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

async fn try_get(url: &str) -> Option<Reply> {
    try_request(Method::GET, url, &[], "").await.ok()
}

fn signal(child: &std::process::Child, which: &str) {
    let sent = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

/// SIGTERM while clients keep sending: `/ready` turns 503 while a slow request is in flight,
/// every request that reached the backend gets its 200, refused ones fail at the connection
/// (never with an error status), and the process exits 0.
#[tokio::test]
async fn sigterm_during_load_loses_no_accepted_request_and_exits_zero() {
    let stubs = start_stubs().await;
    let dir = TempDir::new();
    let running = crate::harness::run_binary(&dir, |http_port, admin_port| {
        crate::harness::default_config(&stubs)
            .replacen("127.0.0.1:0", &format!("127.0.0.1:{http_port}"), 1)
            .replacen("127.0.0.1:0", &format!("127.0.0.1:{admin_port}"), 1)
            + "access_log:\n  enabled: false\nshutdown:\n  drain_timeout: 10s\nreload:\n  watch: false\n"
    })
    .await;
    let (mut child, http_port, admin_port) = (running.child, running.http_port, running.admin_port);
    let (path, config) = (running.config_path, running.config);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let url = format!("http://127.0.0.1:{http_port}/v1/policies/propose");

    // SIGHUP reloads (file watching is off here).
    std::fs::write(
        &path,
        config.replace(
            "upstream: governor\n",
            "upstream: governor\n    timeout: 4s\n",
        ),
    )
    .expect("edit config");
    signal(&child, "-HUP");
    let mut reloaded = None;
    for _ in 0..200 {
        let status = try_get(&format!("{admin}/reload"))
            .await
            .expect("reload status")
            .json();
        if status["trigger"] == "signal" {
            reloaded = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reloaded = reloaded.expect("SIGHUP reload within 4 s");
    assert_eq!(reloaded["ok"], true, "{reloaded}");
    let routes = try_get(&format!("{admin}/routes"))
        .await
        .expect("routes")
        .json();
    assert!(
        routes
            .as_array()
            .expect("array")
            .iter()
            .any(|r| r["timeout"] == "4s")
    );

    // Four clients, each at most 500 requests of 20 ms, until their first refused request.
    let answered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, answered) = (url.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            for _ in 0..500 {
                let delay = [("x-stub-delay-ms", "20")];
                match try_request(Method::POST, &url, &delay, r#"{"policyName":"n"}"#).await {
                    Ok(reply) => {
                        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // A slow request (another method, counted apart) in flight when the signal arrives.
    let slow = tokio::spawn({
        let url = format!("http://127.0.0.1:{http_port}/v1/policies");
        async move { try_request(Method::GET, &url, &[("x-stub-delay-ms", "1500")], "").await }
    });
    let store = stubs.store();
    for _ in 0..200 {
        if answered.load(Ordering::SeqCst) >= 8 && store.calls("tai.Governor/ListPolicies") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&child, "-TERM");

    let mut draining = None;
    for _ in 0..100 {
        match try_get(&format!("{admin}/ready")).await {
            Some(reply) if reply.status == StatusCode::SERVICE_UNAVAILABLE => {
                draining = Some(reply);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let draining = draining.expect("/ready answers 503 while draining");
    assert_eq!(draining.body, r#"{"status":"draining"}"#);

    let slow = slow.await.expect("join").expect("slow request answered");
    assert_eq!(slow.status, StatusCode::OK, "{}", slow.body);
    for client in clients {
        client.await.expect("client");
    }
    let status = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("exit within 15 s after SIGTERM")
    .expect("join")
    .expect("wait");
    assert_eq!(status.code(), Some(0));
    let reached = store.calls("tai.Governor/ProposePolicy");
    assert_eq!(
        reached,
        answered.load(Ordering::SeqCst),
        "every request that reached the backend was answered"
    );
    assert!(reached >= 8, "the load ran: {reached} requests");
}

#[tokio::test]
async fn shutdown_returns_only_once_the_last_requests_are_in_the_access_log() {
    let env = TestEnv::start_with(|c| format!("{c}access_log:\n  path: access.log\n")).await;
    for n in 0..20 {
        let id = format!("last-{n}");
        let reply = env
            .send(Method::GET, "/v1/policies", &[("x-request-id", &id)], None)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let TestEnv { gateway, dir, .. } = env;
    gateway.shutdown().await;
    // No polling: the lines are there the moment shutdown returns.
    let text = std::fs::read_to_string(dir.path().join("access.log")).expect("access log");
    for n in 0..20 {
        let id = format!("\"request_id\":\"last-{n}\"");
        assert!(text.contains(&id), "{id} missing from:\n{text}");
    }
}
