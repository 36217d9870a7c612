//! Issue 18, transcoding edge cases found by probing: an empty `google.protobuf.Any`, map fields
//! bound from the query string, and a protobuf 7 `descriptor.proto` in an include root.

use http::StatusCode;
use serde_json::json;

use crate::harness::{TempDir, TestEnv, proto_dir};
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

    // Fuzz finding: a leading dot in the type name resolved in the descriptor pool, so the
    // request was sent, but the answer printed the Duration as an ordinary message
    // (`{"@type":…,"seconds":"1"}`), which no longer reads back as an Any. any.proto says a
    // leading "." is not accepted.
    let dotted =
        r#"{"anyValue":{"@type":"type.googleapis.com/.google.protobuf.Duration","value":"1s"}}"#;
    let reply = env.post_json("/v1/echo", dotted).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid JSON at `anyValue`: `@type` `type.googleapis.com/.google.protobuf.Duration` names `.google.protobuf.Duration`: a type name has no leading dot",
        Some("anyValue"),
    );
    assert_eq!(
        reply.header("x-stub-service"),
        None,
        "the backend was called"
    );
}

/// Reproduction (before the fix): `curl '/v1/echo/x?string_to_int64[env]=3'` answered
/// `400 unknown query parameter `string_to_int64[env]``: map fields could not be bound from the
/// query at all. grpc-gateway's `field[key]=value` now sets one entry, keys parsed per the
/// map's key type (here string and int32).
#[tokio::test]
async fn map_fields_are_bound_from_bracketed_query_parameters() {
    let env = TestEnv::start().await;
    let reply = env
        .get("/v1/echo/x?string_to_int64[env]=3&stringToInt64%5Bprod%20eu%5D=-4&int32_to_string[-7]=minus")
        .await;
    assert_eq!(reply.header("x-stub-service"), Some("governor"));
    assert_eq!(
        echoed(&reply),
        echo_with(json!({
            "stringValue": "x",
            "stringToInt64": {"env": "3", "prod eu": "-4"},
            "int32ToString": {"-7": "minus"}
        }))
    );
}

/// Map parameters are strict: a key that does not parse as the key type, a value that does not
/// parse as the value type, the same key twice, and a bare map name are 400s naming the
/// parameter, before the backend is called.
#[tokio::test]
async fn bad_map_query_parameters_are_refused_naming_the_parameter() {
    let env = TestEnv::start().await;
    let cases = [
        (
            "int32_to_string[abc]=x",
            "int32_to_string[abc]",
            "invalid query parameter `int32_to_string[abc]`: `abc` is not a valid int32 map key",
        ),
        (
            "int32_to_string[2147483648]=x",
            "int32_to_string[2147483648]",
            "invalid query parameter `int32_to_string[2147483648]`: `2147483648` is not a valid int32 map key",
        ),
        (
            "string_to_int64[env]=high",
            "string_to_int64[env]",
            "invalid query parameter `string_to_int64[env]`: `high` is not an integer",
        ),
        (
            "string_to_int64[env]=1&string_to_int64[env]=2",
            "string_to_int64[env]",
            "invalid query parameter `string_to_int64[env]`: map key `env` is given more than once",
        ),
        (
            "string_to_int64=1",
            "string_to_int64",
            "invalid query parameter `string_to_int64`: `string_to_int64` is a map: set its entries as `string_to_int64[key]=value`",
        ),
        (
            "repeated_string[0]=a",
            "repeated_string[0]",
            "invalid query parameter `repeated_string[0]`: `repeated_string` is not a map field; `[key]` selects an entry of a map",
        ),
    ];
    for (query, field, message) in cases {
        let reply = env.get(&format!("/v1/echo/x?{query}")).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, message, Some(field));
        assert_eq!(
            reply.header("x-stub-service"),
            None,
            "{query} reached the backend"
        );
    }
}

/// Reproduction (before the fix): a protobuf 7 `google/protobuf/descriptor.proto` (as shipped by
/// protoc 3x and vendored protobuf trees) in a `proto_dirs` or `include_paths` folder made loading
/// fail: `descriptor.proto:17:24: expected 'to', ',' or ';', but found '['` (protox 0.10 cannot
/// parse options on a single-number extension range, `extensions 536000000 [declaration = {…}]`),
/// so the gateway did not start. The built-in well-known files are used instead (with a warning
/// naming the skipped copy), and routes work.
#[tokio::test]
async fn a_protobuf_7_descriptor_proto_in_an_include_root_does_not_break_loading() {
    for setting in ["proto_dirs", "include_paths"] {
        let include = TempDir::new();
        include.write(
            "google/protobuf/descriptor.proto",
            include_str!("descriptor_v7.proto"),
        );
        let root = include.path().display().to_string();
        let env = TestEnv::start_with(|config| {
            let line = format!("  proto_dirs: [\"{}\"]\n", proto_dir().display());
            assert!(config.contains(&line), "{config}");
            let with_root = match setting {
                "proto_dirs" => format!(
                    "  proto_dirs: [\"{}\", \"{root}\"]\n",
                    proto_dir().display()
                ),
                _ => format!("{line}  include_paths: [\"{root}\"]\n"),
            };
            config.replace(&line, &with_root)
        })
        .await;
        let reply = env.post_json("/v1/echo", r#"{"stringValue":"v7"}"#).await;
        assert_eq!(
            echoed(&reply),
            echo_with(json!({"stringValue": "v7"})),
            "with the folder in {setting}"
        );
    }
}

/// Fuzz finding (json_every_kind): `{"doubleValue":2.184467440737095516165}` reached the backend
/// as 2.184467440737095 (one ULP below the nearest double, 2.1844674407370954): serde_json's
/// default float parsing is not correctly rounded for long decimals, so the gateway forwarded a
/// different number than the client sent, and its own printed answer did not read back the same.
#[tokio::test]
async fn a_long_decimal_reaches_the_backend_as_the_nearest_double() {
    let env = TestEnv::start().await;
    let body = r#"{"doubleValue":2.184467440737095516165,"dynamicValue":2.184467440737095516165}"#;
    let reply = env.post_json("/v1/echo", body).await;
    assert_eq!(
        echoed(&reply),
        echo_with(json!({"doubleValue": 2.1844674407370954, "dynamicValue": 2.1844674407370954}))
    );
    assert!(
        reply.body.contains(r#""doubleValue":2.1844674407370954,"#),
        "{}",
        reply.body
    );
}
