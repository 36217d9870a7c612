//! Client-streaming and bidirectional methods from HTTP clients: NDJSON and JSON-array request
//! bodies become one gRPC message per element.

use http::{Method, StatusCode};

use crate::harness::{Reply, TestEnv};

async fn post(env: &TestEnv, path: &str, content_type: &str, body: &str) -> Reply {
    let headers = [
        ("content-type", content_type),
        ("accept", "application/x-ndjson"),
    ];
    env.send(Method::POST, path, &headers, Some(body)).await
}

fn receipt_ids(reply: &Reply) -> Vec<String> {
    let body = reply.json();
    body["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|r| r["policyId"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn ndjson_lines_become_one_message_each() {
    let env = TestEnv::start().await;
    let body = "{\"id\":\"p-1\",\"policyName\":\"a\"}\n\n{\"id\":\"p-2\",\"policyName\":\"b\"}\n";
    let reply = post(
        &env,
        "/v1/policies:batchPropose",
        "application/x-ndjson",
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(receipt_ids(&reply), ["p-1", "p-2"]);
    assert_eq!(env.get("/v1/policies/p-2").await.json()["policyName"], "b");
}

#[tokio::test]
async fn json_array_elements_become_one_message_each() {
    let env = TestEnv::start().await;
    let body = r#"[{"id":"p-1","policyName":"a"}, {"id":"p-2","policyName":"b"}]"#;
    let reply = post(&env, "/v1/policies:batchPropose", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(receipt_ids(&reply), ["p-1", "p-2"]);
}

#[tokio::test]
async fn bidirectional_methods_stream_both_ways() {
    let env = TestEnv::start().await;
    let body = "{\"stringValue\":\"one\"}\n{\"stringValue\":\"two\"}\n";
    let reply = post(&env, "/v1/echo:stream", "application/x-ndjson", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let echoed: Vec<String> = reply
        .body
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value["stringValue"].as_str().expect("text").to_owned()
        })
        .collect();
    assert_eq!(echoed, ["one", "two"]);
}

#[tokio::test]
async fn a_bad_element_is_answered_as_a_bad_request() {
    let env = TestEnv::start().await;
    let body = r#"[{"id":"p-1","policyName":"a"},{"bogus":1}]"#;
    let reply = post(&env, "/v1/policies:batchPropose", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let message = reply.json()["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(message.contains("bogus"), "{message}");

    let unframed = post(&env, "/v1/policies:batchPropose", "application/json", "{}").await;
    assert_eq!(
        unframed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unframed.body
    );

    let wrong_type = post(&env, "/v1/policies:batchPropose", "text/plain", "x").await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn raw_uploads_are_chunked_into_http_body_messages() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    transcoding:\n      max_request_bytes: 4B\n",
        )
    })
    .await;
    let headers = [("content-type", "text/plain")];
    let reply = env
        .send(
            Method::POST,
            "/v1/policies:upload",
            &headers,
            Some("hello world"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let summary = reply.json();
    assert_eq!(summary["text"], "hello world");
    assert_eq!(summary["bytes"], "11");
    // At most max_request_bytes per message: at least three messages for 11 bytes.
    let chunks: u64 = summary["chunks"]
        .as_str()
        .expect("int64")
        .parse()
        .expect("n");
    assert!(chunks >= 3, "{summary}");
    assert_eq!(summary["contentType"], "text/plain");
}
