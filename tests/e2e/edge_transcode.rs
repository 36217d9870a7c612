//! Issue 18, transcoding edge cases found by probing: an empty `google.protobuf.Any`, map fields
//! bound from the query string, and a protobuf 7 `descriptor.proto` in an include root.

use http::StatusCode;
use serde_json::json;

use crate::harness::TestEnv;
use crate::json_mapping::{echo_with, echoed};
use crate::requests::assert_error;

/// Reproduction (before the fix): `curl -X POST /v1/echo -d '{"anyValue":{}}'` reached the
/// backend, which echoed the empty Any, and the answer could not be printed:
/// `502 {"code":13,"message":"cannot transcode the backend response: upstream reply cannot be
/// printed as JSON: unsupported type url '': missing at least one '/'"}`, after the write.
/// The proto3 JSON mapping prints an empty Any as `{}`, at any depth.
#[tokio::test]
async fn an_empty_any_is_echoed_as_an_empty_object() {
    let env = TestEnv::start().await;
    let reply = env.post_json("/v1/echo", r#"{"anyValue":{}}"#).await;
    assert_eq!(echoed(&reply), echo_with(json!({"anyValue": {}})));

    let any_in_any =
        r#"{"anyValue":{"@type":"type.googleapis.com/google.protobuf.Any","value":{}}}"#;
    let reply = env.post_json("/v1/echo", any_in_any).await;
    assert_eq!(
        echoed(&reply),
        echo_with(
            json!({"anyValue": {"@type": "type.googleapis.com/google.protobuf.Any", "value": {}}})
        )
    );
}

/// Reproduction: an `Any` packing a message whose own `Any` is empty also answered 502.
#[tokio::test]
async fn an_empty_any_inside_an_any_payload_is_echoed() {
    let env = TestEnv::start().await;
    let nested = r#"{"anyValue":{"@type":"type.googleapis.com/tai.EchoMessage","anyValue":{}}}"#;
    let reply = env.post_json("/v1/echo", nested).await;
    let echoed = echoed(&reply);
    assert_eq!(echoed["anyValue"]["anyValue"], json!({}), "{}", reply.body);
    assert_eq!(
        echoed["anyValue"]["@type"],
        json!("type.googleapis.com/tai.EchoMessage")
    );
}

/// An `Any` that would not print back as sent is refused before the backend is called: the
/// type-URL prefix the gateway uses to print empty Any values (it would come back as `{}`).
#[tokio::test]
async fn an_any_that_cannot_round_trip_is_refused_before_the_backend() {
    let env = TestEnv::start().await;
    let body =
        r#"{"anyValue":{"@type":"empty-any.tai-gateway.invalid/tai.EchoNested","name":"x"}}"#;
    let reply = env.post_json("/v1/echo", body).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `anyValue`: `@type` `empty-any.tai-gateway.invalid/tai.EchoNested` uses the prefix reserved for empty Any values",
        Some("anyValue"),
    );
    assert_eq!(
        reply.header("x-stub-service"),
        None,
        "the backend was called"
    );
}
