//! What a client sees when a call fails: every backend status code with its message and details,
//! and the gateway's own errors (backend unreachable or not speaking gRPC, unknown path, method).

use http::{Method, StatusCode};
use serde_json::json;

use crate::backend::{self, Behaviour};
use crate::harness::TestEnv;
use crate::responses::{assert_json_error, governor_at};

// ---- backend errors ----

#[tokio::test]
async fn every_backend_status_code_maps_to_its_http_status() {
    // Several of these codes are endpoint failures: keep the circuit breaker out of the table.
    let env = TestEnv::start_with(|c| {
        c.replace(
            "  governor:\n",
            "  governor:\n    circuit_breaker: {consecutive_failures: 1000}\n",
        )
    })
    .await;
    let table = [
        ("CANCELLED", 1, 499),
        ("UNKNOWN", 2, 500),
        ("INVALID_ARGUMENT", 3, 400),
        ("DEADLINE_EXCEEDED", 4, 504),
        ("NOT_FOUND", 5, 404),
        ("ALREADY_EXISTS", 6, 409),
        ("PERMISSION_DENIED", 7, 403),
        ("RESOURCE_EXHAUSTED", 8, 429),
        ("FAILED_PRECONDITION", 9, 400),
        ("ABORTED", 10, 409),
        ("OUT_OF_RANGE", 11, 400),
        ("UNIMPLEMENTED", 12, 501),
        ("INTERNAL", 13, 500),
        ("UNAVAILABLE", 14, 503),
        ("DATA_LOSS", 15, 500),
        ("UNAUTHENTICATED", 16, 401),
    ];
    for (name, code, http) in table {
        let reply = env
            .send(
                Method::GET,
                "/v1/policies/p-1",
                &[("x-stub-fail-code", name)],
                None,
            )
            .await;
        assert_eq!(reply.status.as_u16(), http, "{name}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("x-stub-service"), Some("governor"), "{name}");
        assert_eq!(
            reply.body,
            format!(r#"{{"code":{code},"message":"injected failure","details":[]}}"#),
            "{name}"
        );
    }
}

#[tokio::test]
async fn backend_error_message_is_percent_decoded() {
    let env = TestEnv::start().await;
    let message = r#"50% off: "quoted" {braces} <tags> `ticks` ?"#;
    let reply = env
        .send(
            Method::GET,
            "/v1/policies/p-1",
            &[
                ("x-stub-fail-code", "ABORTED"),
                ("x-stub-fail-message", message),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(
        reply.json(),
        json!({"code": 10, "message": message, "details": []})
    );
}

#[tokio::test]
async fn non_ascii_backend_error_message_is_decoded_from_utf8_percent_escapes() {
    let addr = backend::start(Behaviour::EncodedMessage).await;
    let env = TestEnv::start_with(|c| governor_at(c, addr)).await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_json_error(
        &reply,
        StatusCode::BAD_REQUEST,
        r#"{"code":9,"message":"café ✓ 100%","details":[]}"#,
    );
}

#[tokio::test]
async fn error_details_follow_the_route_print_options() {
    let env = TestEnv::start_with(|c| c + "transcoding:\n  proto_field_names: true\n").await;
    let reply = env
        .post_json("/v1/policies/propose", r#"{"policyType":"access"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({
            "code": 3,
            "message": "policy_name must not be empty",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [{"field": "policy_name", "description": "must not be empty", "reason": ""}]
            }]
        })
    );
}

// ---- the gateway's own errors ----

#[tokio::test]
async fn unreachable_backend_is_503_unavailable() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let env = TestEnv::start_with(|c| governor_at(c, closed)).await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["code"], 14);
    assert_eq!(body["details"], json!([]));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("upstream `governor` is unreachable: "),
        "{message}"
    );
}

#[tokio::test]
async fn backend_that_is_not_grpc_is_502() {
    let addr = backend::start(Behaviour::Html).await;
    let env = TestEnv::start_with(|c| governor_at(c, addr)).await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_json_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        r#"{"code":13,"message":"upstream `governor` sent an invalid gRPC response: content-type is not application/grpc","details":[]}"#,
    );
}

#[tokio::test]
async fn backend_answer_without_grpc_status_is_502() {
    let addr = backend::start(Behaviour::NoStatus).await;
    let env = TestEnv::start_with(|c| governor_at(c, addr)).await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_json_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        r#"{"code":13,"message":"upstream `governor` sent an invalid gRPC response: no grpc-status in trailers","details":[]}"#,
    );
}

#[tokio::test]
async fn backend_message_that_does_not_decode_is_502() {
    let addr = backend::start(Behaviour::GarbageMessage).await;
    let env = TestEnv::start_with(|c| governor_at(c, addr)).await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["code"], 13);
    assert_eq!(body["details"], json!([]));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("cannot transcode the backend response: "),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_path_is_404() {
    let env = TestEnv::start().await;
    let reply = env.get("/v2/nothing/here").await;
    assert_json_error(
        &reply,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"no route for /v2/nothing/here","details":[]}"#,
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let env = TestEnv::start().await;
    let reply = env.send(Method::PUT, "/v1/echo", &[], None).await;
    assert_json_error(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        r#"{"code":12,"message":"method PUT is not allowed for /v1/echo","details":[]}"#,
    );
    assert_eq!(reply.header("allow"), Some("POST"));
}
