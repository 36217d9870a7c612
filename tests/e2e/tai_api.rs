//! The TAI contract through the gateway: every route of the issue's table, with the exact status,
//! headers and body a client sees.

use http::{Method, StatusCode};
use serde_json::json;

use crate::harness::TestEnv;

#[tokio::test]
async fn propose_policy_returns_a_receipt_with_assigned_ids() {
    let env = TestEnv::start().await;
    let reply = env
        .post_json(
            "/v1/policies/propose",
            r#"{"policyType":"access","policyName":"deny-all","rules":{"effect":"deny"}}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"id":"rec-1","status":"success","policyId":"pol-1"}"#
    );
}

#[tokio::test]
async fn get_policy_returns_the_stored_policy_with_int64_as_string() {
    let env = TestEnv::start().await;
    env.post_json(
        "/v1/policies/propose",
        r#"{"id":"p-7","policy_type":"access","policy_name":"n","rules":{"a":"b"}}"#,
    )
    .await;
    let reply = env.get("/v1/policies/p-7").await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["id"], "p-7");
    assert_eq!(body["policyType"], "access");
    assert_eq!(body["policyName"], "n");
    assert_eq!(body["rules"], json!({"a": "b"}));
    assert_eq!(body["version"], "1");
    assert_eq!(body["state"], "POLICY_STATE_PROPOSED");
    assert!(
        body["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
}

#[tokio::test]
async fn get_unknown_policy_is_404_with_grpc_status_body() {
    let env = TestEnv::start().await;
    let reply = env.get("/v1/policies/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":5,"message":"policy nope not found","details":[]}"#
    );
}

#[tokio::test]
async fn list_policies_filters_by_query_parameters() {
    let env = TestEnv::start().await;
    for (kind, name) in [("access", "a1"), ("audit", "b1"), ("access", "a2")] {
        let body = format!(r#"{{"policyType":"{kind}","policyName":"{name}"}}"#);
        assert_eq!(
            env.post_json("/v1/policies/propose", &body).await.status,
            StatusCode::OK
        );
    }
    let reply = env.get("/v1/policies?policy_type=access&page_size=1").await;
    assert_eq!(reply.status, StatusCode::OK);
    let policies = reply.json()["policies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0]["policyName"], "a1");
    let all = env.get("/v1/policies?policyType=access").await.json();
    assert_eq!(all["policies"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn revoke_policy_then_request_action_is_failed_precondition() {
    let env = TestEnv::start().await;
    env.post_json("/v1/policies/propose", r#"{"policyName":"p"}"#)
        .await;
    let action =
        r#"{"agentId":"agent-1","action":"deploy","policyId":"pol-1","params":{"env":"prod"}}"#;
    let accepted = env.post_json("/v1/actions", action).await;
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(
        accepted.body,
        r#"{"id":"rec-2","status":"accepted","policyId":"pol-1"}"#
    );

    let revoked = env
        .send(
            Method::DELETE,
            "/v1/policies/pol-1?reason=obsolete",
            &[],
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        revoked.body,
        r#"{"id":"rec-3","status":"revoked","policyId":"pol-1"}"#
    );

    let refused = env.post_json("/v1/actions", action).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body,
        r#"{"code":9,"message":"policy pol-1 is revoked","details":[]}"#
    );
}

#[tokio::test]
async fn empty_policy_name_is_400_with_bad_request_detail() {
    let env = TestEnv::start().await;
    let reply = env
        .post_json("/v1/policies/propose", r#"{"policyType":"access"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({
            "code": 3,
            "message": "policy_name must not be empty",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "policy_name", "description": "must not be empty", "reason": ""}]
            }]
        })
    );
}

#[tokio::test]
async fn revoke_unknown_policy_is_404() {
    let env = TestEnv::start().await;
    let reply = env
        .send(Method::DELETE, "/v1/policies/ghost", &[], None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        r#"{"code":5,"message":"policy ghost not found","details":[]}"#
    );
}
