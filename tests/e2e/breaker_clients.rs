//! Circuit breakers tell one client's bad input from a sick endpoint: `INTERNAL` answers to one
//! client (an invalid protobuf message sent by a native gRPC client; `x-stub-fail-code` standing
//! for JSON the backend chokes on) never open the breaker for everyone, while the same answers to several distinct clients
//! (told apart by `X-Forwarded-For` behind a trusted proxy), and a killed backend, still open it
//! after five failures. Default breaker numbers throughout (5 failures, 30 s, 2 successes).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tai_stubs::StubServers;
use tokio::time::Instant;

use crate::admin::admin_get;
use crate::harness::{Reply, TestEnv, default_config, h2c_client, start_stubs};
use crate::resilience::Proxy;

const ECHO: &str = "tai.Governor/Echo";

/// A gRPC message frame whose payload (`ff ff ff`) is not valid protobuf: field 31, wire type 7.
const INVALID_PROTOBUF: &[u8] = b"\x00\x00\x00\x00\x03\xff\xff\xff";

/// The state (`closed`, `open`, `half_open`) whose `tai_gateway_upstream_circuit_breaker_state`
/// series reads 1 for the governor's one endpoint; exactly one of the three must.
async fn breaker_state(env: &TestEnv, endpoint: std::net::SocketAddr) -> String {
    let metrics = admin_get(env, "/metrics").await.body;
    let prefix = format!(
        "tai_gateway_upstream_circuit_breaker_state{{upstream=\"governor\",endpoint=\"{endpoint}\",state=\""
    );
    let current: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix("\"} 1"))
        .collect();
    assert_eq!(current.len(), 1, "not one `{prefix}…` at 1 in:\n{metrics}");
    current[0].to_owned()
}

/// Asserts that another client's call still gets 200 and the breaker reads closed.
async fn assert_still_closed(env: &TestEnv) {
    let other = env
        .send(
            Method::GET,
            "/v1/echo/other",
            &[("x-forwarded-for", "198.51.100.77")],
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    assert_eq!(breaker_state(env, env.stubs.governor_addr).await, "closed");
    let stats = env.gateway.gateway.runtime().upstreams["governor"].stats();
    assert_eq!(stats.breaker_opened, 0);
}

/// Stubs + gateway on the default config, one trusted proxy in front of the gateway.
async fn behind_a_proxy() -> TestEnv {
    let stubs = start_stubs().await;
    let text = format!(
        "{}rate_limits:\n  trusted_proxy_hops: 1\n",
        default_config(&stubs)
    );
    TestEnv::start_on(stubs, &text).await
}

/// Posts one raw gRPC frame to `/tai.Governor/Echo` over h2c and returns the `grpc-status` the
/// client sees (a trailers-only answer carries it in its head, others in the trailers).
async fn grpc_echo_raw(env: &TestEnv, frame: &'static [u8]) -> String {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/{ECHO}", env.base()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(frame)))
        .expect("request");
    let response = h2c_client().request(request).await.expect("send");
    let (parts, body) = response.into_parts();
    assert_eq!(parts.status, StatusCode::OK);
    let collected = body.collect().await.expect("body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = parts
        .headers
        .get("grpc-status")
        .or_else(|| trailers.get("grpc-status"))
        .expect("grpc-status");
    status.to_str().expect("text").to_owned()
}

#[tokio::test]
async fn invalid_protobuf_from_one_grpc_client_never_opens_the_breaker() {
    let env = TestEnv::start().await;
    for i in 0..10 {
        let status = grpc_echo_raw(&env, INVALID_PROTOBUF).await;
        assert_eq!(status, "13", "call {i}: the backend cannot decode it");
    }
    assert_eq!(
        env.stubs.store().calls(ECHO),
        0,
        "the stub never got a message"
    );
    assert_still_closed(&env).await;
}

#[tokio::test]
async fn internal_answers_to_one_json_client_never_open_the_breaker() {
    // What a backend answers to input it chokes on (JSON nested past its recursion limit, say).
    // No trusted proxy: the header is ignored and the client is the socket peer.
    let env = TestEnv::start().await;
    for code in ["INTERNAL", "UNKNOWN", "DATA_LOSS"] {
        for i in 0..10 {
            let reply = post_failing(&env, "192.0.2.1", code).await;
            assert!(reply.status.is_server_error(), "{code} {i}: {}", reply.body);
        }
    }
    assert_eq!(env.stubs.store().calls(ECHO), 30);
    assert_still_closed(&env).await;
}

#[tokio::test]
async fn internal_answers_to_one_client_behind_a_trusted_proxy_never_open_the_breaker() {
    let env = behind_a_proxy().await;
    // The client writes what it likes left of the proxy's entry: still one client.
    for i in 0..10 {
        let forwarded = format!("10.9.9.{i}, 203.0.113.7");
        let reply = post_failing(&env, &forwarded, "INTERNAL").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{i}");
    }
    for i in 0..10 {
        let reply = post_failing(&env, "203.0.113.7", "UNKNOWN").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{i}");
    }
    assert_still_closed(&env).await;
}

/// POSTs an Echo that the stub fails with `code`, from the client `forwarded_for` names.
async fn post_failing(env: &TestEnv, forwarded_for: &str, code: &str) -> Reply {
    env.send(
        Method::POST,
        "/v1/echo",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", forwarded_for),
            ("x-stub-fail-code", code),
        ],
        Some("{}"),
    )
    .await
}

#[tokio::test]
async fn internal_answers_to_three_clients_open_the_breaker_after_five() {
    let env = behind_a_proxy().await;
    for (i, client) in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1"]
        .iter()
        .enumerate()
    {
        let reply = post_failing(&env, client, "INTERNAL").await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{i}");
        assert_eq!(breaker_state(&env, env.stubs.governor_addr).await, "closed");
    }
    let fifth = post_failing(&env, "203.0.113.2", "INTERNAL").await;
    assert_eq!(fifth.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(breaker_state(&env, env.stubs.governor_addr).await, "open");
    let refused = env.get("/v1/echo/after").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("x-tai-attempts"), Some("0"));
    assert_eq!(refused.header("retry-after"), Some("30"));
    assert_eq!(env.stubs.store().calls(ECHO), 5);
}

#[tokio::test]
async fn a_killed_backend_still_opens_the_breaker_for_one_client() {
    let stubs: StubServers = start_stubs().await;
    let proxy = Proxy::to(stubs.governor_addr).await;
    let text = default_config(&stubs).replace(
        &format!("    address: {}\n", stubs.governor_addr),
        &format!("    address: {}\n", proxy.addr),
    );
    let env = TestEnv::start_on(stubs, &text).await;
    let ok = env.get("/v1/echo/before").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    proxy.kill();
    // One client's calls: refused connections (and redial backoff in between) until the breaker
    // has seen five failures.
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = env.get("/v1/echo/dead").await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        if reply.header("x-tai-attempts") == Some("0") {
            assert!(
                reply.body.contains("circuit breaker is open"),
                "{}",
                reply.body
            );
            break;
        }
        assert!(Instant::now() < give_up, "the breaker never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(breaker_state(&env, proxy.addr).await, "open");
}

#[tokio::test]
async fn a_clients_own_short_deadline_never_opens_the_breaker() {
    let env = TestEnv::start().await;
    // The backend takes 200 ms; this client gives it 1 ms (both client deadline headers).
    for header in ["grpc-timeout", "x-request-timeout"] {
        let value = if header == "grpc-timeout" {
            "1m"
        } else {
            "1ms"
        };
        for i in 0..6 {
            let reply = env
                .send(
                    Method::GET,
                    "/v1/echo/hurried",
                    &[(header, value), ("x-stub-delay-ms", "200")],
                    None,
                )
                .await;
            assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{header} {i}");
        }
    }
    assert_still_closed(&env).await;
}

#[tokio::test]
async fn the_routes_own_deadline_passing_still_opens_the_breaker() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    timeout: 50ms\n",
        )
    })
    .await;
    for i in 0..5 {
        let reply = env
            .send(
                Method::GET,
                "/v1/echo/slow",
                &[("x-stub-delay-ms", "500")],
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{i}");
    }
    assert_eq!(breaker_state(&env, env.stubs.governor_addr).await, "open");
}

#[tokio::test]
async fn malformed_stream_elements_from_one_client_never_open_the_breaker() {
    let env = TestEnv::start().await;
    for i in 0..10 {
        let reply = env
            .send(
                Method::POST,
                "/v1/echo:stream",
                &[("content-type", "application/x-ndjson")],
                Some("{\"stringValue\":\"a\"}\n{not json\n"),
            )
            .await;
        assert!(
            reply.status.is_client_error() || reply.status.is_success(),
            "{i}: {} {}",
            reply.status,
            reply.body
        );
    }
    assert_still_closed(&env).await;
}

/// A request body that never sends anything: a client that opens a call and stalls.
struct Stalled;

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn grpc_clients_that_stall_their_request_never_open_the_breaker() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    timeout: 100ms\n",
        )
    })
    .await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Stalled>();
    for i in 0..6 {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/{ECHO}", env.base()))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Stalled)
            .expect("request");
        let response = client.request(request).await.expect("send");
        let status = response.headers().get("grpc-status").cloned();
        assert_eq!(
            status.as_ref().map(|s| s.as_bytes()),
            Some(&b"4"[..]),
            "{i}"
        );
    }
    assert_still_closed(&env).await;
}
