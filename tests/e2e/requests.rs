//! Request building through the real gateway: which parts of an HTTP request (body rule, path
//! variables, query parameters, content type, size) become which fields of the gRPC request.
//! Echo returns what the backend received. Query parameters have their own module, `query_params`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::harness::{Reply, TestEnv};
use crate::json_mapping::{echo_with, echoed, governor_transcoding};

/// Headers of a JSON request.
pub(crate) const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// The JSON text of an error answer: `{"code":…,"message":…,"details":[…]}`, with a
/// `google.rpc.BadRequest` field violation when `field` is given.
pub(crate) fn error_body(code: i32, message: &str, field: Option<&str>) -> String {
    let quoted = |text: &str| serde_json::to_string(text).expect("quote");
    let details = match field {
        Some(field) => format!(
            r#"[{{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{{"field":{},"description":{}}}]}}]"#,
            quoted(field),
            quoted(message)
        ),
        None => "[]".to_owned(),
    };
    format!(
        r#"{{"code":{code},"message":{},"details":{details}}}"#,
        quoted(message)
    )
}

/// Asserts the exact status, content type and body of a gateway error (a 400-class status
/// carries INVALID_ARGUMENT, 413 RESOURCE_EXHAUSTED).
pub(crate) fn assert_error(reply: &Reply, status: StatusCode, message: &str, field: Option<&str>) {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        8
    } else {
        3
    };
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, error_body(code, message, field));
}

/// Sends a prepared request (any body type) over HTTP/1.1 and returns what the client saw.
pub(crate) async fn send_request<B>(request: Request<B>) -> Reply
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client: Client<_, B> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.expect("send request");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("read body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A request body handed over in pieces with no declared length, so HTTP/1.1 sends it with
/// `Transfer-Encoding: chunked` and the gateway cannot refuse it from `Content-Length`.
struct Chunked(VecDeque<Bytes>);

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// `{"stringValue":"aaa…"}` of exactly `len` bytes.
fn echo_body_of(len: usize) -> String {
    let frame = r#"{"stringValue":""}"#.len();
    format!(r#"{{"stringValue":"{}"}}"#, "a".repeat(len - frame))
}

/// `POST /v1/echo` with `body` split into 100-byte chunks and no content length.
fn chunked_echo(env: &TestEnv, body: &str) -> Request<Chunked> {
    let chunks = body
        .as_bytes()
        .chunks(100)
        .map(Bytes::copy_from_slice)
        .collect();
    let body = Chunked(chunks);
    assert_eq!(body.size_hint().exact(), None, "the length must be unknown");
    Request::post(format!("{}/v1/echo", env.base()))
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
}

#[tokio::test]
async fn body_star_carries_the_whole_request_message() {
    let env = TestEnv::start().await;
    let reply = env
        .post_json(
            "/v1/echo",
            r#"{"stringValue":"s","nested":{"name":"n","values":[1]},"repeatedString":["a","b"]}"#,
        )
        .await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({
            "stringValue": "s", "nested": {"name": "n", "values": [1]}, "repeatedString": ["a", "b"]
        }))
    );
}

#[tokio::test]
async fn empty_body_with_body_star_is_an_empty_message() {
    let env = TestEnv::start().await;
    let reply = env.send(Method::POST, "/v1/echo", JSON, None).await;
    assert_eq!(echoed(&reply), echo_with(json!({})));
}

#[tokio::test]
async fn body_field_fills_that_field_and_the_path_fills_the_rest() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::PUT,
            "/v1/echo/5/nested",
            JSON,
            Some(r#"{"name":"n","values":[1,2]}"#),
        )
        .await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"int64Value": "5", "nested": {"name": "n", "values": [1, 2]}}))
    );
}

#[tokio::test]
async fn body_field_body_cannot_set_fields_outside_that_field() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::PUT,
            "/v1/echo/5/nested",
            JSON,
            Some(r#"{"stringValue":"x"}"#),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `stringValue`: unknown field `stringValue` in tai.EchoNested",
        Some("stringValue"),
    );
}

#[tokio::test]
async fn rejects_a_body_on_a_rule_without_body() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::GET,
            "/v1/echo/abc",
            JSON,
            Some(r#"{"int32Value":1}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":3,"message":"this method takes no request body","details":[]}"#
    );
}

#[tokio::test]
async fn rejects_a_path_variable_that_does_not_fit_its_field() {
    let env = TestEnv::start().await;
    for (segment, reason) in [
        (
            "9223372036854775808",
            "9223372036854775808 is out of range for int64",
        ),
        ("abc", "`abc` is not an integer"),
    ] {
        let reply = env
            .send(
                Method::PUT,
                &format!("/v1/echo/{segment}/nested"),
                JSON,
                Some("{}"),
            )
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            &format!("invalid path parameter `int64_value`: {reason}"),
            Some("int64_value"),
        );
    }
}

#[tokio::test]
async fn rejects_a_path_variable_and_a_body_field_with_different_values() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::PATCH,
            "/v1/policies/p1",
            JSON,
            Some(r#"{"id":"p2","policyName":"x"}"#),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "`policy.id` has one value in the URL path and a different one in the body",
        Some("policy.id"),
    );
}

#[tokio::test]
async fn accepts_a_path_variable_and_a_body_field_with_the_same_value_or_body_without_it() {
    let env = TestEnv::start().await;
    let proposed = env
        .post_json("/v1/policies/propose", r#"{"id":"p1","policyName":"old"}"#)
        .await;
    assert_eq!(proposed.status, StatusCode::OK, "{}", proposed.body);
    for (body, version) in [
        (r#"{"id":"p1","policyName":"new"}"#, "2"),
        (r#"{"policyName":"newer"}"#, "3"),
    ] {
        let reply = env
            .send(Method::PATCH, "/v1/policies/p1", JSON, Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let mut policy = reply.json();
        let created = policy.as_object_mut().and_then(|p| p.remove("createdAt"));
        assert!(created.is_some_and(|t| t.is_string()), "{}", reply.body);
        let name = if version == "2" { "new" } else { "newer" };
        assert_eq!(
            policy,
            json!({
                "id": "p1", "policyType": "", "policyName": name, "rules": {},
                "version": version, "state": "POLICY_STATE_PROPOSED"
            })
        );
    }
}

#[tokio::test]
async fn accepts_application_json_with_charset_utf_8() {
    let env = TestEnv::start().await;
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
        "application/vnd.tai+json",
    ] {
        let reply = env
            .send(
                Method::POST,
                "/v1/echo",
                &[("content-type", content_type)],
                Some(r#"{"stringValue":"s"}"#),
            )
            .await;
        assert_eq!(
            echoed(&reply),
            echo_with(json!({"stringValue": "s"})),
            "{content_type}"
        );
    }
}

#[tokio::test]
async fn rejects_text_plain_with_415() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::POST,
            "/v1/echo",
            &[("content-type", "text/plain")],
            Some("{}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":3,"message":"unsupported content type `text/plain`; send application/json","details":[]}"#
    );
}

#[tokio::test]
async fn rejects_form_urlencoded_and_non_utf_8_json_with_415() {
    let env = TestEnv::start().await;
    for content_type in [
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
    ] {
        let reply = env
            .send(
                Method::POST,
                "/v1/echo",
                &[("content-type", content_type)],
                Some("stringValue=s"),
            )
            .await;
        assert_error(
            &reply,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("unsupported content type `{content_type}`; send application/json"),
            None,
        );
    }
}

#[tokio::test]
async fn ignores_the_content_type_of_a_request_without_a_body() {
    let env = TestEnv::start().await;
    let get = env
        .send(
            Method::GET,
            "/v1/echo/abc",
            &[("content-type", "text/plain")],
            None,
        )
        .await;
    assert_eq!(echoed(&get), echo_with(json!({"stringValue": "abc"})));
    // POST with `Content-Length: 0`: body `*` makes it an empty message.
    let post = env
        .send(
            Method::POST,
            "/v1/echo",
            &[("content-type", "application/x-www-form-urlencoded")],
            None,
        )
        .await;
    assert_eq!(echoed(&post), echo_with(json!({})));
}

#[tokio::test]
async fn accepts_a_json_body_without_a_content_type_header() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::POST,
            "/v1/echo",
            &[],
            Some(r#"{"stringValue":"s"}"#),
        )
        .await;
    assert_eq!(echoed(&reply), echo_with(json!({"stringValue": "s"})));
}

#[tokio::test]
async fn accepts_a_body_of_exactly_max_request_bytes() {
    let env = TestEnv::start_with(governor_transcoding(&["max_request_bytes: 1KiB"])).await;
    let body = echo_body_of(1024);
    let reply = env.post_json("/v1/echo", &body).await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"stringValue": "a".repeat(1006)}))
    );
}

#[tokio::test]
async fn rejects_a_body_over_max_request_bytes_declared_by_content_length_with_413() {
    let env = TestEnv::start_with(governor_transcoding(&["max_request_bytes: 1KiB"])).await;
    let reply = env.post_json("/v1/echo", &echo_body_of(1025)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":8,"message":"request body exceeds the limit of 1024 bytes","details":[]}"#
    );
}

#[tokio::test]
async fn rejects_a_chunked_body_once_it_passes_max_request_bytes_with_413() {
    let env = TestEnv::start_with(governor_transcoding(&["max_request_bytes: 1KiB"])).await;
    let reply = send_request(chunked_echo(&env, &echo_body_of(2048))).await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body exceeds the limit of 1024 bytes",
        None,
    );
}

#[tokio::test]
async fn accepts_a_chunked_body_under_max_request_bytes() {
    let env = TestEnv::start_with(governor_transcoding(&["max_request_bytes: 1KiB"])).await;
    let reply = send_request(chunked_echo(&env, &echo_body_of(1000))).await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"stringValue": "a".repeat(982)}))
    );
}
