//! Routing and path templates through the real gateway: which rule a request path selects, what
//! its variables bind to, and the exact answer when no rule (or no rule for the method) matches.
//! Precedence cases use a test-only proto served by the echo backend (`routing_precedence.rs`);
//! config-time checks and config-defined rules are in `routing_config.rs`.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestEnv, h2c_client, send_with};

/// Proposes policy `id` (type `access`, name `n`, one rule) and checks it was accepted.
async fn propose(env: &TestEnv, id: &str) {
    let body =
        format!(r#"{{"id":"{id}","policyType":"access","policyName":"n","rules":{{"a":"b"}}}}"#);
    let reply = env.post_json("/v1/policies/propose", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// The reply's JSON without `createdAt`, which holds the stub's clock; asserts it is a UTC time.
fn without_created_at(mut body: Value) -> Value {
    let created = body
        .as_object_mut()
        .and_then(|o| o.remove("createdAt"))
        .unwrap_or_default();
    assert!(
        created.as_str().is_some_and(|t| t.ends_with('Z')),
        "createdAt: {created}"
    );
    body
}

/// Asserts status, `content-type: application/json` and the exact body.
pub(crate) fn assert_json_reply(reply: &crate::harness::Reply, status: StatusCode, body: &str) {
    assert_eq!(
        (
            reply.status,
            reply.header("content-type"),
            reply.body.as_str()
        ),
        (status, Some("application/json"), body)
    );
}

#[tokio::test]
async fn literal_template_selects_its_method() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/policies").await;
    assert_json_reply(&reply, StatusCode::OK, r#"{"policies":[]}"#);
}

#[tokio::test]
async fn single_segment_variable_binds_the_segment() {
    let env = TestEnv::start().await;
    propose(&env, "p-1").await;
    let reply = env.get("/v1/policies/p-1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        without_created_at(reply.json()),
        json!({
            "id": "p-1", "policyType": "access", "policyName": "n", "rules": {"a": "b"},
            "version": "1", "state": "POLICY_STATE_PROPOSED"
        })
    );
}

#[tokio::test]
async fn double_wildcard_binds_zero_segments_as_empty_path() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/documents").await;
    assert_json_reply(&reply, StatusCode::OK, r#"{"path":"","segments":[]}"#);
}

#[tokio::test]
async fn double_wildcard_binds_one_segment() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/documents/a").await;
    assert_json_reply(&reply, StatusCode::OK, r#"{"path":"a","segments":["a"]}"#);
}

#[tokio::test]
async fn double_wildcard_binds_several_segments_with_their_slashes() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/documents/a/b/c").await;
    assert_json_reply(
        &reply,
        StatusCode::OK,
        r#"{"path":"a/b/c","segments":["a","b","c"]}"#,
    );
}

#[tokio::test]
async fn multi_segment_variable_with_literals_binds_the_whole_resource_name() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/agents/a1/actions/x9").await;
    assert_json_reply(
        &reply,
        StatusCode::OK,
        r#"{"id":"agents/a1/actions/x9","status":"pending","policyId":""}"#,
    );
}

#[tokio::test]
async fn multi_segment_variable_of_another_shape_is_404() {
    let env = TestEnv::start().await;
    for path in [
        "/v1/agents/a1/actions",
        "/v1/agents/a1/tasks/x9",
        "/v1/agents/a1/actions/x9/more",
    ] {
        let reply = env.get(path).await;
        let body = format!(r#"{{"code":5,"message":"no route for {path}","details":[]}}"#);
        assert_json_reply(&reply, StatusCode::NOT_FOUND, &body);
    }
}

#[tokio::test]
async fn nested_field_variable_sets_the_id_inside_the_body_field() {
    let env = TestEnv::start().await;
    propose(&env, "p-1").await;
    let reply = env
        .send(
            Method::PATCH,
            "/v1/policies/p-1",
            &[("content-type", "application/json")],
            Some(r#"{"policyType":"audit","policyName":"renamed","rules":{"a":"c"}}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        without_created_at(reply.json()),
        json!({
            "id": "p-1", "policyType": "audit", "policyName": "renamed", "rules": {"a": "c"},
            "version": "2", "state": "POLICY_STATE_PROPOSED"
        })
    );
}

#[tokio::test]
async fn nested_field_variable_differing_from_the_body_value_is_400() {
    let env = TestEnv::start().await;
    propose(&env, "p-1").await;
    let reply = env
        .send(
            Method::PATCH,
            "/v1/policies/p-1",
            &[("content-type", "application/json")],
            Some(r#"{"id":"other","policyName":"renamed"}"#),
        )
        .await;
    let message = "`policy.id` has one value in the URL path and a different one in the body";
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"code": 3, "message": message, "details": [{
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "policy.id", "description": message}]
        }]})
    );
}

#[tokio::test]
async fn custom_verb_and_plain_get_share_a_prefix_without_clashing() {
    let env = TestEnv::start().await;
    propose(&env, "p-1").await;
    let enforced = env.post_json("/v1/policies/p-1:enforce", "{}").await;
    assert_json_reply(
        &enforced,
        StatusCode::OK,
        r#"{"id":"rec-2","status":"enforced","policyId":"p-1"}"#,
    );
    let dry = env
        .post_json("/v1/policies/p-1:enforce", r#"{"dryRun":true}"#)
        .await;
    assert_json_reply(
        &dry,
        StatusCode::OK,
        r#"{"id":"rec-3","status":"dry_run","policyId":"p-1"}"#,
    );
    let read = env.get("/v1/policies/p-1").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header("content-type"), Some("application/json"));
    assert_eq!(
        without_created_at(read.json()),
        json!({
            "id": "p-1", "policyType": "access", "policyName": "n", "rules": {"a": "b"},
            "version": "1", "state": "POLICY_STATE_ACTIVE"
        })
    );
}

#[tokio::test]
async fn registered_verb_with_another_method_falls_back_to_the_whole_segment() {
    // `:enforce` is registered for POST only; a GET tries the unsplit path next, where
    // `GET /v1/policies/{id}` binds `p-1:enforce` (Envoy's treatment of an unknown verb).
    let env = TestEnv::start().await;
    propose(&env, "p-1").await;
    let reply = env.get("/v1/policies/p-1:enforce").await;
    assert_json_reply(
        &reply,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"policy p-1:enforce not found","details":[]}"#,
    );
}

#[tokio::test]
async fn unregistered_verb_is_part_of_the_segment() {
    let env = TestEnv::start().await;
    let reply = env.post_json("/v1/policies/p-1:unknown", "{}").await;
    assert_json_reply(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        r#"{"code":12,"message":"method POST is not allowed for /v1/policies/p-1:unknown","details":[]}"#,
    );
    assert_eq!(reply.header("allow"), Some("DELETE, GET, PATCH"));
}

#[tokio::test]
async fn additional_binding_with_parent_sets_parent_from_the_path() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/tenants/t1/policies:search").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"policies": [], "query": {
            "parent": "tenants/t1", "states": [], "ids": [], "limit": "0", "cursor": "",
            "includeRevoked": false
        }})
    );
}

#[tokio::test]
async fn additional_binding_without_parent_leaves_parent_empty() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/policies:search?ids=p-1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"policies": [], "query": {
            "parent": "", "states": [], "ids": ["p-1"], "limit": "0", "cursor": "",
            "includeRevoked": false
        }})
    );
}

#[tokio::test]
async fn additional_post_binding_reads_the_whole_body() {
    let env = TestEnv::start().await;
    propose(&env, "p-1").await;
    propose(&env, "p-2").await;
    let reply = env
        .post_json("/v1/policies:search", r#"{"ids":["p-2"],"limit":"5"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let mut body = reply.json();
    let found = without_created_at(body["policies"][0].take());
    assert_eq!(
        found,
        json!({
            "id": "p-2", "policyType": "access", "policyName": "n", "rules": {"a": "b"},
            "version": "1", "state": "POLICY_STATE_PROPOSED"
        })
    );
    assert_eq!(
        body,
        json!({"policies": [null], "query": {
            "parent": "", "states": [], "ids": ["p-2"], "limit": "5", "cursor": "",
            "includeRevoked": false
        }})
    );
}

#[tokio::test]
async fn custom_method_kind_routes_purge() {
    let env = TestEnv::start().await;
    let reply = env
        .send(
            Method::from_bytes(b"PURGE").expect("method"),
            "/v1/cache?hard=true",
            &[],
            None,
        )
        .await;
    assert_json_reply(
        &reply,
        StatusCode::OK,
        r#"{"id":"rec-1","status":"purged","policyId":""}"#,
    );
}

#[tokio::test]
async fn unknown_path_is_404_naming_the_path() {
    let env = TestEnv::start().await;
    let reply = env.get("/v9/nothing").await;
    assert_json_reply(
        &reply,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"no route for /v9/nothing","details":[]}"#,
    );
    assert_eq!(reply.header("allow"), None);
}

#[tokio::test]
async fn known_path_with_wrong_method_is_405_with_allow() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/actions").await;
    assert_json_reply(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        r#"{"code":12,"message":"method GET is not allowed for /v1/actions","details":[]}"#,
    );
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[tokio::test]
async fn wrong_method_on_a_variable_path_lists_every_allowed_method() {
    let env = TestEnv::start().await;
    let reply = env.send(Method::PUT, "/v1/policies/x", &[], None).await;
    assert_json_reply(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        r#"{"code":12,"message":"method PUT is not allowed for /v1/policies/x","details":[]}"#,
    );
    assert_eq!(reply.header("allow"), Some("DELETE, GET, PATCH"));
}

#[tokio::test]
async fn get_on_a_post_only_literal_falls_back_to_the_variable_template() {
    // `POST /v1/policies/propose` is the only rule on that literal; a GET backtracks to
    // `GET /v1/policies/{id}` (the method is part of the match, as in Envoy).
    let env = TestEnv::start().await;
    let reply = env.get("/v1/policies/propose").await;
    assert_json_reply(
        &reply,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"policy propose not found","details":[]}"#,
    );
}

#[tokio::test]
async fn trailing_slash_matches_the_template_without_it() {
    let env = TestEnv::start().await;
    assert_json_reply(
        &env.get("/v1/policies/").await,
        StatusCode::OK,
        r#"{"policies":[]}"#,
    );
    assert_json_reply(
        &env.get("/v1/documents/a/b/").await,
        StatusCode::OK,
        r#"{"path":"a/b","segments":["a","b"]}"#,
    );
}

#[tokio::test]
async fn empty_segment_is_404() {
    let env = TestEnv::start().await;
    for path in [
        "/v1//policies",
        "/v1/policies//",
        "//v1/policies",
        "/v1/documents/a//b",
    ] {
        let reply = env.get(path).await;
        let body = format!(r#"{{"code":5,"message":"no route for {path}","details":[]}}"#);
        assert_json_reply(&reply, StatusCode::NOT_FOUND, &body);
    }
}

#[tokio::test]
async fn single_segment_variable_is_fully_percent_decoded() {
    let env = TestEnv::start().await;
    propose(&env, "a/b").await;
    let reply = env.get("/v1/policies/a%2Fb").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        without_created_at(reply.json()),
        json!({
            "id": "a/b", "policyType": "access", "policyName": "n", "rules": {"a": "b"},
            "version": "1", "state": "POLICY_STATE_PROPOSED"
        })
    );
    let missing = env.get("/v1/policies/caf%C3%A9%20%3F").await;
    assert_json_reply(
        &missing,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"policy café ? not found","details":[]}"#,
    );
}

#[tokio::test]
async fn double_wildcard_keeps_reserved_escapes_by_default() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/documents/x%2Fy/%41%3Ab").await;
    assert_json_reply(
        &reply,
        StatusCode::OK,
        r#"{"path":"x%2Fy/A%3Ab","segments":["x%2Fy","A%3Ab"]}"#,
    );
}

#[tokio::test]
async fn double_wildcard_decodes_everything_with_path_unescape_all() {
    let env =
        TestEnv::start_with(|config| format!("{config}transcoding:\n  path_unescape: all\n")).await;
    let reply = env.get("/v1/documents/x%2Fy/%41%3Ab").await;
    assert_json_reply(
        &reply,
        StatusCode::OK,
        r#"{"path":"x/y/A:b","segments":["x","y","A:b"]}"#,
    );
}

#[tokio::test]
async fn double_wildcard_keeps_only_slashes_with_path_unescape_all_except_slash() {
    let env = TestEnv::start_with(|config| {
        format!("{config}transcoding:\n  path_unescape: all_except_slash\n")
    })
    .await;
    let reply = env.get("/v1/documents/x%2Fy/%41%3Ab").await;
    assert_json_reply(
        &reply,
        StatusCode::OK,
        r#"{"path":"x%2Fy/A:b","segments":["x%2Fy","A:b"]}"#,
    );
}

#[tokio::test]
async fn malformed_percent_escape_is_400() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/policies/%zz").await;
    assert_json_reply(
        &reply,
        StatusCode::BAD_REQUEST,
        r#"{"code":3,"message":"malformed request path: malformed percent-escape \"%zz\" in \"%zz\"","details":[]}"#,
    );
}

#[tokio::test]
async fn path_variable_not_decoding_to_utf8_is_400() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/policies/%FF").await;
    assert_json_reply(
        &reply,
        StatusCode::BAD_REQUEST,
        r#"{"code":3,"message":"malformed request path: \"%FF\" does not percent-decode to UTF-8","details":[]}"#,
    );
}

#[tokio::test]
async fn h2c_get_gives_the_same_answer_as_http1() {
    let env = TestEnv::start().await;
    let http1 = env.get("/v1/documents/a/b").await;
    let url = format!("{}/v1/documents/a/b", env.base());
    let h2 = send_with(&h2c_client(), Method::GET, &url, &[], None).await;
    assert_json_reply(
        &h2,
        StatusCode::OK,
        r#"{"path":"a/b","segments":["a","b"]}"#,
    );
    assert_eq!(h2.body, http1.body);
    assert_eq!(h2.header("content-type"), http1.header("content-type"));
}
