//! What a client sees back on success: bodies (`response_body`, `HttpBody`), the header and
//! metadata allowlists, the request id, and deadlines. Failures are in `errors.rs`.

use std::net::SocketAddr;

use http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Reply, TestEnv};

/// A stored policy with every field fixed, so bodies can be compared whole.
const POLICY: &str = r#"{"id":"p-1","policyType":"access","policyName":"deny-all","rules":{"k":"v"},"createdAt":"2024-05-01T10:00:00Z"}"#;

/// Starts the default environment and stores [`POLICY`].
async fn env_with_policy() -> TestEnv {
    let env = TestEnv::start().await;
    let stored = env.post_json("/v1/policies/propose", POLICY).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    env
}

/// The config with the governor upstream pointed at `addr`.
pub(crate) fn governor_at(config: String, addr: SocketAddr) -> String {
    let mut lines: Vec<String> = config.lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .position(|l| l == "  governor:")
        .expect("governor upstream");
    lines[at + 1] = format!("    address: {addr}");
    lines.join("\n") + "\n"
}

/// The config with `key: value` added to the governor route.
fn governor_route_with(config: String, extra: &str) -> String {
    config.replace(
        "  - service: tai.Governor\n    upstream: governor\n",
        &format!("  - service: tai.Governor\n    upstream: governor\n    {extra}\n"),
    )
}

/// Sends `POST /v1/echo {}` with `headers` and returns what the backend saw as metadata.
async fn metadata_seen(env: &TestEnv, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let reply = env.send(Method::POST, "/v1/echo", &all, Some("{}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut seen = reply.json()["receivedMetadata"].clone();
    // Every call carries the gateway's own `traceparent` (a new trace here: random ids), checked
    // in `traces.rs`; its form is checked here and the rest compared exactly.
    let traceparent = seen
        .as_object_mut()
        .and_then(|m| m.remove("traceparent"))
        .unwrap_or_else(|| panic!("no traceparent in {seen}"));
    let traceparent = traceparent.as_str().expect("text");
    assert!(
        traceparent.len() == 55 && traceparent.starts_with("00-") && traceparent.ends_with("-01"),
        "{traceparent}"
    );
    seen
}

/// `extra` plus the protocol headers every transcoded gRPC call carries (tonic keeps them in its
/// metadata).
/// No `content-length`: neither the client's nor one for the gRPC frame reaches the backend.
fn with_protocol_headers(extra: serde_json::Value, grpc_timeout: &str) -> serde_json::Value {
    let mut all = json!({
        "content-type": "application/grpc",
        "te": "trailers",
        "user-agent": concat!("tai-gateway/", env!("CARGO_PKG_VERSION")),
        "grpc-timeout": grpc_timeout,
        // The gateway reads transcoded answers itself and takes gzip messages.
        "grpc-accept-encoding": "gzip",
    });
    if let (Some(all), serde_json::Value::Object(extra)) = (all.as_object_mut(), extra) {
        all.extend(extra);
    }
    all
}

pub(crate) fn assert_json_error(reply: &Reply, status: StatusCode, body: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, body);
}

// ---- success bodies ----

#[tokio::test]
async fn unary_success_is_200_json_with_every_field() {
    let env = env_with_policy().await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"id":"p-1","policyType":"access","policyName":"deny-all","rules":{"k":"v"},"version":"1","createdAt":"2024-05-01T10:00:00Z","state":"POLICY_STATE_PROPOSED"}"#
    );
}

#[tokio::test]
async fn response_body_returns_only_the_named_field() {
    let env = env_with_policy().await;
    let reply = env.get("/v1/policies/p-1/rules").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, r#"{"k":"v"}"#);
}

#[tokio::test]
async fn http_body_response_is_sent_raw_with_its_own_content_type() {
    let env = env_with_policy().await;
    let reply = env.get("/v1/policies/p-1:export").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        reply.body,
        "id: p-1\nname: deny-all\ntype: access\nstate: POLICY_STATE_PROPOSED\nversion: 1\nrule k: v\n"
    );
}

// ---- request headers to metadata ----

#[tokio::test]
async fn only_allowlisted_request_headers_reach_the_backend() {
    let env = TestEnv::start().await;
    let seen = metadata_seen(
        &env,
        &[
            ("x-request-id", "req-1"),
            ("x-tenant-id", "acme"),
            ("authorization", "Bearer secret"),
            ("cookie", "session=1"),
            ("x-tenant", "not-listed"),
            ("grpc-timeout", "5S"),
        ],
    )
    .await;
    assert_eq!(
        seen,
        with_protocol_headers(
            json!({"x-request-id": "req-1", "x-tenant-id": "acme"}),
            "5000000u"
        )
    );
}

#[tokio::test]
async fn prefix_entry_forwards_every_header_with_that_prefix() {
    let env = TestEnv::start().await;
    let seen = metadata_seen(
        &env,
        &[
            ("x-request-id", "req-2"),
            ("x-stub-note", "one"),
            ("x-stub-other", "two"),
            ("x-stubby", "no"),
            ("grpc-timeout", "5S"),
        ],
    )
    .await;
    assert_eq!(
        seen,
        with_protocol_headers(
            json!({"x-request-id": "req-2", "x-stub-note": "one", "x-stub-other": "two"}),
            "5000000u"
        )
    );
}

/// Issue 11: the request's `content-length` reached the backend as metadata. Connection-level
/// headers never cross, even when a wildcard allowlist names them.
#[tokio::test]
async fn connection_headers_never_reach_the_backend_even_through_a_wildcard() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "request_to_metadata: [x-tenant-id, x-stub-*]",
            "request_to_metadata: [x-*, c*, h*, t*]",
        )
    })
    .await;
    let seen = metadata_seen(&env, &[("x-request-id", "req-9"), ("x-tenant-id", "acme")]).await;
    assert_eq!(
        seen,
        with_protocol_headers(
            json!({"x-request-id": "req-9", "x-tenant-id": "acme"}),
            "10000000u"
        )
    );
}

/// Credentials cross only when the route says so (one rule for every kind of route, see
/// `edge_credentials`): `cookie` by naming it in `request_to_metadata`, `authorization` by
/// `forward_authorization: true` (listing it is not enough).
#[tokio::test]
async fn cookie_is_forwarded_when_listed_and_authorization_when_the_route_forwards_it() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "request_to_metadata: [x-tenant-id, x-stub-*]",
            "request_to_metadata: [authorization, cookie]",
        )
        .replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    auth: { mode: none, forward_authorization: true }\n",
        )
    })
    .await;
    let seen = metadata_seen(
        &env,
        &[
            ("x-request-id", "req-3"),
            ("authorization", "Bearer secret"),
            ("cookie", "session=1"),
            ("x-tenant-id", "acme"),
            ("grpc-timeout", "5S"),
        ],
    )
    .await;
    assert_eq!(
        seen,
        with_protocol_headers(
            json!({"x-request-id": "req-3", "authorization": "Bearer secret", "cookie": "session=1"}),
            "5000000u"
        )
    );
}

// ---- request id ----

#[tokio::test]
async fn request_id_is_generated_when_absent_and_sent_both_ways() {
    let env = TestEnv::start().await;
    let reply = env.post_json("/v1/echo", "{}").await;
    assert_eq!(reply.status, StatusCode::OK);
    let id = reply
        .header("x-request-id")
        .expect("x-request-id")
        .to_owned();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(
        reply.json()["receivedMetadata"]["x-request-id"],
        id.as_str()
    );
    let next = env.post_json("/v1/echo", "{}").await;
    assert_ne!(next.header("x-request-id"), Some(id.as_str()));
}

#[tokio::test]
async fn client_request_id_is_propagated_and_returned() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::POST,
            "/v1/echo",
            &[
                ("content-type", "application/json"),
                ("x-request-id", "client-id-42"),
            ],
            Some("{}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-request-id"), Some("client-id-42"));
    assert_eq!(
        reply.json()["receivedMetadata"]["x-request-id"],
        "client-id-42"
    );
}

#[tokio::test]
async fn request_id_is_returned_on_gateway_errors_too() {
    let env = TestEnv::start().await;
    let reply = env
        .send(Method::GET, "/nowhere", &[("x-request-id", "lost-1")], None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("x-request-id"), Some("lost-1"));
}

// ---- backend metadata to response headers ----

#[tokio::test]
async fn allowlisted_backend_headers_and_trailers_become_response_headers() {
    let env = env_with_policy().await;
    let reply = env
        .send(
            Method::GET,
            "/v1/policies/p-1/rules",
            &[("x-stub-reply-header", "x-stub-extra=1, x-secret=2")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-stub-service"), Some("governor"));
    assert_eq!(reply.header("x-stub-trailer"), Some("done"));
    assert_eq!(reply.header("x-stub-extra"), None);
    assert_eq!(reply.header("x-secret"), None);
    assert_eq!(reply.header("grpc-status"), None);
    assert_eq!(reply.body, r#"{"k":"v"}"#);
}

#[tokio::test]
async fn prefix_entry_returns_every_matching_backend_header() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "metadata_to_response: [x-stub-service, x-stub-trailer]",
            "metadata_to_response: [x-stub-*]",
        )
    })
    .await;
    let reply = env
        .send(
            Method::GET,
            "/v1/policies/nope",
            &[("x-stub-reply-header", "x-stub-extra=1, x-secret=2")],
            None,
        )
        .await;
    assert_json_error(
        &reply,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"policy nope not found","details":[]}"#,
    );
    assert_eq!(reply.header("x-stub-service"), Some("governor"));
    assert_eq!(reply.header("x-stub-extra"), Some("1"));
    assert_eq!(reply.header("x-secret"), None);
}

// ---- deadlines ----

#[tokio::test]
async fn backend_slower_than_the_route_timeout_is_504() {
    let env = TestEnv::start_with(|c| governor_route_with(c, "timeout: 200ms")).await;
    let reply = env
        .send(
            Method::GET,
            "/v1/policies/p-1",
            &[("x-stub-delay-ms", "5000")],
            None,
        )
        .await;
    assert_json_error(
        &reply,
        StatusCode::GATEWAY_TIMEOUT,
        r#"{"code":4,"message":"upstream `governor` did not answer within 200ms","details":[]}"#,
    );
}

#[tokio::test]
async fn shorter_client_grpc_timeout_wins_over_the_route_timeout() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::GET,
            "/v1/policies/p-1",
            &[("x-stub-delay-ms", "5000"), ("grpc-timeout", "100m")],
            None,
        )
        .await;
    assert_json_error(
        &reply,
        StatusCode::GATEWAY_TIMEOUT,
        r#"{"code":4,"message":"upstream `governor` did not answer within 100ms","details":[]}"#,
    );
}

#[tokio::test]
async fn malformed_grpc_timeout_is_400() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::GET,
            "/v1/policies/p-1",
            &[("grpc-timeout", "soon")],
            None,
        )
        .await;
    assert_json_error(
        &reply,
        StatusCode::BAD_REQUEST,
        r#"{"code":3,"message":"invalid grpc-timeout header `soon`","details":[]}"#,
    );
}

#[tokio::test]
async fn backend_receives_the_route_timeout_as_grpc_timeout() {
    let env = TestEnv::start_with(|c| governor_route_with(c, "timeout: 3s")).await;
    let seen = metadata_seen(&env, &[("x-request-id", "req-4")]).await;
    assert_eq!(
        seen,
        with_protocol_headers(json!({"x-request-id": "req-4"}), "3000000u")
    );
}
