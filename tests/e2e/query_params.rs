//! Query parameters through the real gateway: every way `?name=value` binds a field of the gRPC
//! request (proto and JSON names, dotted paths, repetition, enums, well-known types, 64-bit
//! integers, bytes, bools, percent and `+` decoding) and every way it is refused.
//! SearchPolicies answers with its decoded request as `query`, so each binding is visible.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Reply, TestEnv};
use crate::json_mapping::{echo_with, echoed, governor_transcoding};
use crate::requests::{JSON, assert_error};
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
