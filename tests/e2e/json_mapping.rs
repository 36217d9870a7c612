//! Proto3 JSON mapping through the real gateway: what request bodies are accepted or refused, and
//! how responses are printed under each output option. The Echo RPC returns exactly what the
//! backend decoded, so every assertion is on the round trip a client sees.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::harness::{Reply, TestEnv};
use crate::requests::{JSON, assert_error, send_request};

/// The Echo answer for an empty request with the default `emit_defaults: true`, without the
/// stub's `receivedMetadata` (it holds a generated request id). Zero floats print as `0`, the way
/// grpc-gateway (Go's protojson) prints them.
pub(crate) fn echo_defaults() -> Value {
    json!({
        "stringValue": "", "int32Value": 0, "int64Value": "0", "uint32Value": 0,
        "uint64Value": "0", "sint32Value": 0, "sint64Value": "0", "fixed64Value": "0",
        "floatValue": 0, "doubleValue": 0, "boolValue": false, "bytesValue": "",
        "color": "COLOR_UNSPECIFIED", "repeatedString": [], "repeatedNested": [],
        "stringToInt64": {}, "int32ToString": {}, "colors": [], "customJsonName": ""
    })
}

/// [`echo_defaults`] with the given fields replaced or added.
pub(crate) fn echo_with(fields: Value) -> Value {
    let mut expected = echo_defaults();
    if let (Some(target), Value::Object(fields)) = (expected.as_object_mut(), fields) {
        target.extend(fields);
    }
    expected
}

/// Asserts a 200 JSON answer and returns its body without the stub's `receivedMetadata`.
pub(crate) fn echoed(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let mut body = reply.json();
    let metadata = body.as_object_mut().and_then(|o| {
        o.remove("receivedMetadata")
            .or(o.remove("received_metadata"))
    });
    assert!(
        metadata.as_ref().is_some_and(Value::is_object),
        "no received metadata in {}",
        reply.body
    );
    body
}

/// The default config with `options` (YAML lines) as the governor route's `transcoding:`.
pub(crate) fn governor_transcoding(options: &[&str]) -> impl FnOnce(String) -> String {
    let mut block = String::from("    upstream: governor\n    transcoding:\n");
    for line in options {
        block.push_str("      ");
        block.push_str(line);
        block.push('\n');
    }
    move |config: String| {
        assert!(config.contains("    upstream: governor\n"), "{config}");
        config.replacen("    upstream: governor\n", &block, 1)
    }
}

async fn echo(env: &TestEnv, body: &str) -> Reply {
    env.post_json("/v1/echo", body).await
}

#[tokio::test]
async fn accepts_proto_names_and_lower_camel_names_in_the_body() {
    let env = TestEnv::start().await;
    let expected = echo_with(json!({"stringValue": "s", "int32Value": 7, "boolValue": true}));
    let camel = echo(
        &env,
        r#"{"stringValue":"s","int32Value":7,"boolValue":true}"#,
    )
    .await;
    assert_eq!(echoed(&camel), expected);
    let proto = echo(
        &env,
        r#"{"string_value":"s","int32_value":7,"bool_value":true}"#,
    )
    .await;
    assert_eq!(echoed(&proto), expected);
}

#[tokio::test]
async fn accepts_a_custom_json_name_and_the_proto_name_but_not_the_default_camel_name() {
    let env = TestEnv::start().await;
    let expected = echo_with(json!({"customJsonName": "c"}));
    assert_eq!(
        echoed(&echo(&env, r#"{"customJsonName":"c"}"#).await),
        expected
    );
    assert_eq!(echoed(&echo(&env, r#"{"json_named":"c"}"#).await), expected);
    assert_error(
        &echo(&env, r#"{"jsonNamed":"c"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `jsonNamed`: unknown field `jsonNamed` in tai.EchoMessage",
        Some("jsonNamed"),
    );
}

#[tokio::test]
async fn accepts_int64_as_a_string_and_as_a_number_and_prints_it_as_a_string() {
    let env = TestEnv::start().await;
    let body = r#"{"int64Value":5,"sint64Value":"-9223372036854775808","fixed64Value":"7","int64Wrapper":8,"stringToInt64":{"a":9}}"#;
    assert_eq!(
        echoed(&echo(&env, body).await),
        echo_with(json!({
            "int64Value": "5", "sint64Value": "-9223372036854775808", "fixed64Value": "7",
            "int64Wrapper": "8", "stringToInt64": {"a": "9"}
        }))
    );
    let exact = echo(&env, r#"{"int64Value":9007199254740993}"#).await;
    assert_eq!(
        echoed(&exact),
        echo_with(json!({"int64Value": "9007199254740993"}))
    );
}

#[tokio::test]
async fn accepts_uint64_max_as_a_string_and_as_a_number() {
    let env = TestEnv::start().await;
    let reply = echo(
        &env,
        r#"{"uint64Value":"18446744073709551615","fixed64Value":18446744073709551615}"#,
    )
    .await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({
            "uint64Value": "18446744073709551615", "fixed64Value": "18446744073709551615"
        }))
    );
}

#[tokio::test]
async fn rejects_an_out_of_range_int32_naming_the_field() {
    let env = TestEnv::start().await;
    let reply = echo(&env, r#"{"int32Value":2147483648}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":3,"message":"invalid JSON at `int32Value`: 2147483648 is out of range for int32","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"int32Value","description":"invalid JSON at `int32Value`: 2147483648 is out of range for int32"}]}]}"#
    );
}

#[tokio::test]
async fn rejects_an_out_of_range_int64_instead_of_clamping_it() {
    let env = TestEnv::start().await;
    for body in [
        r#"{"int64Value":9223372036854775808}"#,
        r#"{"int64Value":"9223372036854775808"}"#,
    ] {
        assert_error(
            &echo(&env, body).await,
            StatusCode::BAD_REQUEST,
            "invalid JSON at `int64Value`: 9223372036854775808 is out of range for int64",
            Some("int64Value"),
        );
    }
}

#[tokio::test]
async fn rejects_a_fractional_value_for_an_integer_field() {
    let env = TestEnv::start().await;
    assert_error(
        &echo(&env, r#"{"int32Value":1.5}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `int32Value`: 1.5 is not an integer",
        Some("int32Value"),
    );
}

/// The proto3 JSON mapping accepts exponent notation for integers when the value is integral
/// (as Go's protojson and C++ JsonStringToMessage do), whether written as a number or a string.
#[tokio::test]
async fn accepts_exponent_notation_for_an_integral_int32_value() {
    let env = TestEnv::start().await;
    let expected = echo_with(json!({"int32Value": 100}));
    assert_eq!(echoed(&echo(&env, r#"{"int32Value":1e2}"#).await), expected);
    assert_eq!(
        echoed(&echo(&env, r#"{"int32Value":"1e2"}"#).await),
        expected
    );
    assert_error(
        &echo(&env, r#"{"int32Value":1e10}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `int32Value`: 10000000000 is out of range for int32",
        Some("int32Value"),
    );
}

#[tokio::test]
async fn rejects_duplicate_keys_even_when_spelled_differently() {
    let env = TestEnv::start().await;
    for body in [
        r#"{"stringValue":"a","stringValue":"b"}"#,
        r#"{"string_value":"a","stringValue":"b"}"#,
    ] {
        assert_error(
            &echo(&env, body).await,
            StatusCode::BAD_REQUEST,
            "invalid JSON: duplicate field `stringValue`",
            None,
        );
    }
}

#[tokio::test]
async fn rejects_a_body_that_is_not_a_json_object_but_takes_null_as_empty() {
    let env = TestEnv::start().await;
    for (body, found) in [("[]", "array"), (r#""x""#, "string"), ("1", "number")] {
        assert_error(
            &echo(&env, body).await,
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON: expected tai.EchoMessage, found {found}"),
            None,
        );
    }
    assert_eq!(echoed(&echo(&env, "null").await), echo_defaults());
}

#[tokio::test]
async fn rejects_trailing_garbage_after_the_json_document() {
    let env = TestEnv::start().await;
    assert_error(
        &echo(&env, "{} x").await,
        StatusCode::BAD_REQUEST,
        "invalid JSON: trailing characters at line 1 column 4",
        None,
    );
}

#[tokio::test]
async fn rejects_a_body_that_is_not_utf_8() {
    let env = TestEnv::start().await;
    let body = b"{\"stringValue\":\"a\xff\"}".to_vec();
    let request = Request::post(format!("{}/v1/echo", env.base()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    assert_error(
        &send_request(request).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `stringValue`: invalid unicode code point at line 1 column 18",
        Some("stringValue"),
    );
}

#[tokio::test]
async fn rejects_nesting_beyond_max_json_depth() {
    let env = TestEnv::start_with(governor_transcoding(&["max_json_depth: 5"])).await;
    // Levels: the root object, nested, and three children: five in all.
    let five = r#"{"nested":{"child":{"child":{"child":{"name":"x"}}}}}"#;
    let child = json!({"name": "x", "values": []});
    let mut nested = child;
    for _ in 0..3 {
        nested = json!({"name": "", "values": [], "child": nested});
    }
    assert_eq!(
        echoed(&echo(&env, five).await),
        echo_with(json!({"nested": nested}))
    );
    let six = r#"{"nested":{"child":{"child":{"child":{"child":{"name":"x"}}}}}}"#;
    assert_error(
        &echo(&env, six).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `nested.child.child.child.child`: nesting deeper than 5 levels",
        Some("nested.child.child.child.child"),
    );
}

#[tokio::test]
async fn rejects_an_unknown_field_naming_it() {
    let env = TestEnv::start().await;
    // An unknown top-level field is named in a `google.rpc.BadRequest` like a nested one
    // (issue 11: its `details` used to be empty).
    assert_error(
        &echo(&env, r#"{"stringValue":"a","bogus":1}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `bogus`: unknown field `bogus` in tai.EchoMessage",
        Some("bogus"),
    );
    assert_error(
        &echo(&env, r#"{"nested":{"bogus":1}}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `nested`: unknown field `bogus` in tai.EchoNested",
        Some("nested"),
    );
}

#[tokio::test]
async fn ignores_unknown_fields_when_the_route_says_so() {
    let env = TestEnv::start_with(governor_transcoding(&["ignore_unknown_fields: true"])).await;
    let reply = echo(
        &env,
        r#"{"stringValue":"a","bogus":{"deep":[1,{"x":null}]},"nested":{"other":true}}"#,
    )
    .await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"stringValue": "a", "nested": {"name": "", "values": []}}))
    );
}

#[tokio::test]
async fn rejects_two_members_of_one_oneof() {
    let env = TestEnv::start().await;
    assert_error(
        &echo(&env, r#"{"choiceText":"a","choiceNumber":1}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON: `choiceNumber` and another member of oneof `choice` are both set",
        None,
    );
    let one = echo(&env, r#"{"choiceNumber":1}"#).await;
    assert_eq!(echoed(&one), echo_with(json!({"choiceNumber": 1})));
}

#[tokio::test]
async fn round_trips_well_known_types_in_the_body() {
    let env = TestEnv::start().await;
    let body = json!({
        "timestamp": "2024-05-01T10:00:00.250Z",
        "duration": "1.500s",
        "fieldMask": "policyName,rules.effect",
        "stringWrapper": "s",
        "int64Wrapper": "7",
        "boolWrapper": false,
        // Struct numbers are doubles; an integral double prints without a fraction, as in Go's
        // protojson.
        "structValue": {"a": [1, "x", null, true, {"b": {}}]},
        "dynamicValue": "v",
        "anyValue": {
            "@type": "type.googleapis.com/tai.Policy", "id": "p", "policyType": "",
            "policyName": "", "rules": {"k": "v"}, "version": "3",
            "createdAt": "2024-05-01T10:00:00Z", "state": "POLICY_STATE_ACTIVE"
        }
    });
    let reply = echo(&env, &body.to_string()).await;
    assert_eq!(echoed(&reply), echo_with(body));
}

#[tokio::test]
async fn accepts_json_null_for_a_value_and_normalises_wkt_inputs() {
    let env = TestEnv::start().await;
    let reply = echo(
        &env,
        r#"{"dynamicValue":null,"duration":"1.5s","timestamp":"2024-05-01T12:00:00+02:00","int64Wrapper":7}"#,
    )
    .await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({
            "dynamicValue": null, "duration": "1.500s",
            "timestamp": "2024-05-01T10:00:00Z", "int64Wrapper": "7"
        }))
    );
}

#[tokio::test]
async fn accepts_enums_by_name_and_by_number_in_the_body() {
    let env = TestEnv::start().await;
    let reply = echo(&env, r#"{"color":1,"colors":["COLOR_GREEN",2,7]}"#).await;
    // 7 is no value of tai.Color: proto3 enums are open, so it survives and prints as a number.
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"color": "COLOR_RED", "colors": ["COLOR_GREEN", "COLOR_GREEN", 7]}))
    );
    assert_error(
        &echo(&env, r#"{"color":"COLOR_BLUE"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `color`: `COLOR_BLUE` is not a value of enum tai.Color",
        Some("color"),
    );
}

#[tokio::test]
async fn decodes_standard_and_url_safe_base64_bytes_and_prints_standard_base64() {
    let env = TestEnv::start().await;
    let expected = echo_with(json!({"bytesValue": "AAEC/+8="}));
    for body in [
        r#"{"bytesValue":"AAEC/+8="}"#,
        r#"{"bytesValue":"AAEC/+8"}"#,
        r#"{"bytesValue":"AAEC_-8="}"#,
    ] {
        assert_eq!(echoed(&echo(&env, body).await), expected, "{body}");
    }
    assert_error(
        &echo(&env, r#"{"bytesValue":"not base64!"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `bytesValue`: invalid base64: Invalid symbol 32, offset 3.",
        Some("bytesValue"),
    );
}

#[tokio::test]
async fn emits_default_values_by_default() {
    let env = TestEnv::start().await;
    let reply = env.send(Method::POST, "/v1/echo", JSON, Some("{}")).await;
    assert_eq!(echoed(&reply), echo_defaults());
}

#[tokio::test]
async fn omits_default_values_when_emit_defaults_is_false() {
    let env = TestEnv::start_with(governor_transcoding(&["emit_defaults: false"])).await;
    let reply = echo(&env, r#"{"stringValue":"s","int32Value":0,"colors":[]}"#).await;
    assert_eq!(echoed(&reply), json!({"stringValue": "s"}));
}

#[tokio::test]
async fn prints_proto_field_names_when_proto_field_names_is_set() {
    let env = TestEnv::start_with(governor_transcoding(&[
        "proto_field_names: true",
        "emit_defaults: false",
    ]))
    .await;
    let reply = echo(
        &env,
        r#"{"stringValue":"s","int64Value":5,"customJsonName":"c","nested":{"name":"n"}}"#,
    )
    .await;
    assert_eq!(
        echoed(&reply),
        json!({"string_value": "s", "int64_value": "5", "json_named": "c", "nested": {"name": "n"}})
    );
}

#[tokio::test]
async fn prints_enums_as_numbers_when_enums_as_ints_is_set() {
    let env = TestEnv::start_with(governor_transcoding(&["enums_as_ints: true"])).await;
    let reply = echo(&env, r#"{"color":"COLOR_RED","colors":["COLOR_GREEN",1]}"#).await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"color": 1, "colors": [2, 1]}))
    );
}

#[tokio::test]
async fn prints_floating_point_numbers_as_grpc_gateway_does() {
    let env = TestEnv::start().await;
    // `float` keeps its own digits; integral values have no fraction; 1e21 and up (and below
    // 1e-6) take an exponent with its sign; `float`'s largest value reads back in.
    let reply = echo(
        &env,
        r#"{"floatValue":3.4028235e38,"doubleValue":1e21,"structValue":{"n":100},"dynamicValue":0.000001}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for printed in [
        r#""floatValue":3.4028235e+38,"doubleValue":1e+21,"#,
        r#""structValue":{"n":100},"dynamicValue":0.000001,"#,
    ] {
        assert!(
            reply.body.contains(printed),
            "{printed} not in {}",
            reply.body
        );
    }
    let small = echo(&env, r#"{"floatValue":1.1,"doubleValue":-1.5e-7}"#).await;
    assert!(
        small
            .body
            .contains(r#""floatValue":1.1,"doubleValue":-1.5e-7,"#),
        "{}",
        small.body
    );
    let zero = echo(&env, "{}").await;
    assert!(
        zero.body.contains(r#""floatValue":0,"doubleValue":0,"#),
        "{}",
        zero.body
    );
}
