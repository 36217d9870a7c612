//! Request building through the real gateway: which parts of an HTTP request (body rule, path
//! variables, query parameters, content type, size) become which fields of the gRPC request.
//! Echo returns what the backend received; SearchPolicies returns its decoded request as `query`.

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
use serde_json::{Value, json};

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

/// The decoded SearchPolicies request for a `GET /v1/policies:search?{query}` (asserts 200).
async fn searched(env: &TestEnv, query: &str) -> Value {
    let reply = env.get(&format!("/v1/policies:search?{query}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["policies"], json!([]), "{body}");
    body["query"].clone()
}

/// The decoded request of an empty search with the given fields replaced or added.
fn query_with(fields: Value) -> Value {
    let mut expected = json!({
        "parent": "", "states": [], "ids": [], "limit": "0", "cursor": "", "includeRevoked": false
    });
    if let (Some(target), Value::Object(fields)) = (expected.as_object_mut(), fields) {
        target.extend(fields);
    }
    expected
}

async fn search_error(env: &TestEnv, query: &str) -> Reply {
    env.get(&format!("/v1/policies:search?{query}")).await
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
        "invalid JSON: unknown field `stringValue` in tai.EchoNested",
        None,
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
async fn binds_query_parameters_by_proto_name_and_by_json_name() {
    let env = TestEnv::start().await;
    let expected = query_with(json!({"includeRevoked": true, "minVersion": 3}));
    assert_eq!(
        searched(&env, "include_revoked=true&min_version=3").await,
        expected
    );
    assert_eq!(
        searched(&env, "includeRevoked=true&minVersion=3").await,
        expected
    );
}

#[tokio::test]
async fn binds_nested_query_parameters_written_with_dots() {
    let env = TestEnv::start().await;
    let expected = query_with(json!({"filter": {"namePrefix": "n", "policyTypes": ["a", "b"]}}));
    for query in [
        "filter.name_prefix=n&filter.policy_types=a&filter.policy_types=b",
        "filter.namePrefix=n&filter.policyTypes=a&filter.policyTypes=b",
    ] {
        assert_eq!(searched(&env, query).await, expected, "{query}");
    }
}

#[tokio::test]
async fn binds_repeated_fields_by_repeating_the_parameter_without_splitting_commas() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "ids=a&ids=b,c").await,
        query_with(json!({"ids": ["a", "b,c"]}))
    );
}

#[tokio::test]
async fn parses_enum_query_values_by_name_or_number() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "states=POLICY_STATE_ACTIVE&states=1").await,
        query_with(json!({"states": ["POLICY_STATE_ACTIVE", "POLICY_STATE_PROPOSED"]}))
    );
}

#[tokio::test]
async fn rejects_an_unknown_enum_name_in_the_query() {
    let env = TestEnv::start().await;
    assert_error(
        &search_error(&env, "states=BOGUS").await,
        StatusCode::BAD_REQUEST,
        "invalid query parameter `states`: `BOGUS` is not a value of enum tai.PolicyState",
        Some("states"),
    );
}

#[tokio::test]
async fn parses_well_known_types_from_their_json_string_forms_in_the_query() {
    let env = TestEnv::start().await;
    let query =
        "created_after=2024-05-01T10:00:00Z&max_age=1.5s&read_mask=policyName,rules&min_version=3";
    assert_eq!(
        searched(&env, query).await,
        query_with(json!({
            "createdAfter": "2024-05-01T10:00:00Z", "maxAge": "1.500s",
            "readMask": "policyName,rules", "minVersion": 3
        }))
    );
}

/// The FieldMask in the query is in JSON form (lowerCamel) and reaches the backend in proto form:
/// UpdatePolicy's stub only knows `policy_name`, so it would refuse `policyName`.
#[tokio::test]
async fn converts_a_lower_camel_field_mask_in_the_query_to_proto_paths() {
    let env = TestEnv::start().await;
    env.post_json(
        "/v1/policies/propose",
        r#"{"id":"p1","policyName":"old","policyType":"access"}"#,
    )
    .await;
    let reply = env
        .send(
            Method::PATCH,
            "/v1/policies/p1?update_mask=policyName",
            JSON,
            Some(r#"{"policyName":"new","policyType":"ignored"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let policy = reply.json();
    assert_eq!(
        (&policy["policyName"], &policy["policyType"]),
        (&json!("new"), &json!("access"))
    );
}

#[tokio::test]
async fn keeps_int64_query_values_exact_beyond_two_to_the_53() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "limit=9007199254740993").await,
        query_with(json!({"limit": "9007199254740993"}))
    );
}

#[tokio::test]
async fn decodes_base64_bytes_in_the_query_standard_or_url_safe() {
    let env = TestEnv::start().await;
    let expected = query_with(json!({"cursor": "AAEC/+8="}));
    // A literal `+` stays `+` by default, so unencoded standard base64 works too.
    for query in ["cursor=AAEC%2F%2B8%3D", "cursor=AAEC_-8", "cursor=AAEC/+8="] {
        assert_eq!(searched(&env, query).await, expected, "{query}");
    }
}

#[tokio::test]
async fn parses_bool_query_values_true_and_false_only() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "include_revoked=true").await,
        query_with(json!({"includeRevoked": true}))
    );
    assert_error(
        &search_error(&env, "include_revoked=1").await,
        StatusCode::BAD_REQUEST,
        "invalid query parameter `include_revoked`: `1` is not a bool (use true or false)",
        Some("include_revoked"),
    );
}

#[tokio::test]
async fn rejects_an_unknown_query_parameter_naming_it() {
    let env = TestEnv::start().await;
    assert_error(
        &search_error(&env, "limit=2&bogus=1").await,
        StatusCode::BAD_REQUEST,
        "unknown query parameter `bogus`",
        Some("bogus"),
    );
}

#[tokio::test]
async fn ignores_unknown_query_parameters_when_the_route_says_so() {
    let env = TestEnv::start_with(governor_transcoding(&[
        "ignore_unknown_query_parameters: true",
    ]))
    .await;
    assert_eq!(
        searched(&env, "bogus=1&limit=2&filter.bogus=x").await,
        query_with(json!({"limit": "2"}))
    );
}

#[tokio::test]
async fn accepts_access_token_without_binding_it() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "access_token=secret&limit=3").await,
        query_with(json!({"limit": "3"}))
    );
    let reply = env.get("/v1/echo/abc?access_token=secret").await;
    assert_eq!(echoed(&reply), echo_with(json!({"stringValue": "abc"})));
}

#[tokio::test]
async fn rejects_a_repeated_query_parameter_for_a_singular_field() {
    let env = TestEnv::start().await;
    assert_error(
        &search_error(&env, "limit=1&limit=2").await,
        StatusCode::BAD_REQUEST,
        "query parameter `limit` is repeated but its field is not",
        Some("limit"),
    );
}

#[tokio::test]
async fn rejects_a_query_parameter_naming_a_field_the_body_carries() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::POST,
            "/v1/policies:search?limit=1",
            JSON,
            Some("{}"),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "query parameter `limit` names a field carried by the request body",
        Some("limit"),
    );
    let nested = env
        .send(
            Method::PUT,
            "/v1/echo/5/nested?nested.name=q",
            JSON,
            Some(r#"{"name":"n"}"#),
        )
        .await;
    assert_error(
        &nested,
        StatusCode::BAD_REQUEST,
        "query parameter `nested.name` names a field carried by the request body",
        Some("nested.name"),
    );
}

#[tokio::test]
async fn binds_query_parameters_to_fields_outside_a_body_field() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::PUT,
            "/v1/echo/5/nested?stringValue=q&color=COLOR_GREEN",
            JSON,
            Some(r#"{"name":"n"}"#),
        )
        .await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({
            "int64Value": "5", "stringValue": "q", "color": "COLOR_GREEN",
            "nested": {"name": "n", "values": []}
        }))
    );
}

#[tokio::test]
async fn rejects_a_query_parameter_contradicting_a_path_variable() {
    let env = TestEnv::start().await;
    assert_error(
        &env.get("/v1/echo/abc?string_value=xyz").await,
        StatusCode::BAD_REQUEST,
        "invalid query parameter `string_value`: the URL path sets this field to a different value",
        Some("string_value"),
    );
}

#[tokio::test]
async fn rejects_query_parameters_setting_two_members_of_one_oneof() {
    let env = TestEnv::start().await;
    assert_error(
        &env.get("/v1/echo/abc?choice_text=a&choice_number=1").await,
        StatusCode::BAD_REQUEST,
        "invalid query parameter `choice_number`: `choice_text` and `choice_number` are members of oneof `choice`; only one may be set",
        Some("choice_number"),
    );
    let one = env.get("/v1/echo/abc?choiceNumber=1").await;
    assert_eq!(
        echoed(&one),
        echo_with(json!({"stringValue": "abc", "choiceNumber": 1}))
    );
}

#[tokio::test]
async fn keeps_plus_literal_in_query_values_by_default() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "filter.name_prefix=a+b%20c").await,
        query_with(json!({"filter": {"namePrefix": "a+b c", "policyTypes": []}}))
    );
}

#[tokio::test]
async fn decodes_plus_as_a_space_when_query_unescape_plus_is_set() {
    let env = TestEnv::start_with(governor_transcoding(&["query_unescape_plus: true"])).await;
    assert_eq!(
        searched(&env, "filter.name_prefix=a+b%2Bc").await,
        query_with(json!({"filter": {"namePrefix": "a b+c", "policyTypes": []}}))
    );
}

#[tokio::test]
async fn decodes_percent_encoded_query_names_and_values() {
    let env = TestEnv::start().await;
    assert_eq!(
        searched(&env, "%66ilter.name%5Fprefix=%E2%9C%93%26%3D").await,
        query_with(json!({"filter": {"namePrefix": "✓&=", "policyTypes": []}}))
    );
}

#[tokio::test]
async fn rejects_malformed_percent_encoding_in_a_query_value() {
    let env = TestEnv::start().await;
    assert_error(
        &search_error(&env, "filter.name_prefix=%zz").await,
        StatusCode::BAD_REQUEST,
        "invalid query parameter `filter.name_prefix`: malformed percent-encoding in `%zz`",
        Some("filter.name_prefix"),
    );
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
