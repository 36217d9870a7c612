//! Issue 18, item 3: one rule for the credentials a backend sees, on transcoded, gRPC and
//! gRPC-Web routes alike. `Authorization` crosses only with the route's
//! `forward_authorization: true`; `Cookie` only when `request_to_metadata` names it.

use std::collections::HashMap;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use prost::Message;
use tai_stubs::proto::tai::EchoMessage;

use crate::grpc_passthrough::{client, frame, frames};
use crate::harness::{TestEnv, http1_client};

const CREDENTIALS: [(&str, &str); 3] = [
    ("authorization", "Bearer secret-token"),
    ("cookie", "session=s3cr3t"),
    ("x-tenant-id", "acme"),
];

/// The metadata the backend received for an Echo made by a tonic (native gRPC) client.
async fn seen_by_grpc(env: &TestEnv) -> HashMap<String, String> {
    let mut request = tonic::Request::new(EchoMessage::default());
    for (name, value) in CREDENTIALS {
        request
            .metadata_mut()
            .insert(name, value.parse().expect("metadata"));
    }
    let mut governor = client(env).await;
    let reply = governor.echo(request).await.expect("echo").into_inner();
    reply.received_metadata
}

/// The same for a gRPC-Web client (HTTP/1.1, `application/grpc-web+proto`).
async fn seen_by_grpc_web(env: &TestEnv) -> HashMap<String, String> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/tai.Governor/Echo", env.base()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    for (name, value) in CREDENTIALS {
        request = request.header(name, value);
    }
    let body = frame(0, &EchoMessage::default().encode_to_vec());
    let request = request.body(Full::new(body)).expect("request");
    let response = http1_client().request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes: Bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let got = frames(&bytes);
    assert_eq!(got[0].0, 0, "{got:?}");
    let reply = EchoMessage::decode(&got[0].1[..]).expect("echo reply");
    reply.received_metadata
}

/// The same for a JSON client of the transcoded `POST /v1/echo`.
async fn seen_by_json(env: &TestEnv) -> HashMap<String, String> {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(CREDENTIALS);
    let reply = env
        .send(Method::POST, "/v1/echo", &headers, Some("{}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    serde_json::from_value(reply.json()["receivedMetadata"].clone()).expect("metadata map")
}

/// Which of `authorization`, `cookie`, `x-tenant-id` reached the backend, for each client kind.
async fn crossing(env: &TestEnv) -> [(&'static str, Vec<&'static str>); 3] {
    let kept = |seen: HashMap<String, String>| -> Vec<&'static str> {
        CREDENTIALS
            .iter()
            .filter(|(name, value)| seen.get(*name).map(String::as_str) == Some(*value))
            .map(|(name, _)| *name)
            .collect()
    };
    [
        ("json", kept(seen_by_json(env).await)),
        ("grpc", kept(seen_by_grpc(env).await)),
        ("grpc-web", kept(seen_by_grpc_web(env).await)),
    ]
}

/// Reproduction (before the fix), default config (`forward_authorization: false`, allowlist
/// `[x-tenant-id, x-stub-*]`): a tonic or gRPC-Web Echo carrying `authorization` and `cookie`
/// got both echoed back in `received_metadata`; the JSON route's did not.
#[tokio::test]
async fn pass_through_forwards_neither_authorization_nor_cookie_by_default() {
    let env = TestEnv::start().await;
    let expected = vec!["x-tenant-id"];
    assert_eq!(
        crossing(&env).await,
        [
            ("json", expected.clone()),
            ("grpc", expected.clone()),
            ("grpc-web", expected),
        ]
    );
}

/// The other side of the same rule: a route that forwards the token and lists `cookie` gets
/// both, from every kind of client; a wildcard (`c*`) never lets a cookie through.
#[tokio::test]
async fn a_route_that_asks_for_credentials_gets_them_from_every_kind_of_client() {
    let route = "  - service: tai.Governor\n    upstream: governor\n";
    let forwarding = format!("{route}    auth: {{ mode: none, forward_authorization: true }}\n");
    let env = TestEnv::start_with(|c| {
        c.replace(route, &forwarding).replace(
            "request_to_metadata: [x-tenant-id, x-stub-*]",
            "request_to_metadata: [x-tenant-id, cookie]",
        )
    })
    .await;
    let all = vec!["authorization", "cookie", "x-tenant-id"];
    assert_eq!(
        crossing(&env).await,
        [
            ("json", all.clone()),
            ("grpc", all.clone()),
            ("grpc-web", all)
        ]
    );
    let wildcard = TestEnv::start_with(|c| {
        c.replace(
            "request_to_metadata: [x-tenant-id, x-stub-*]",
            "request_to_metadata: [x-tenant-id, c*]",
        )
    })
    .await;
    let expected = vec!["x-tenant-id"];
    assert_eq!(
        crossing(&wildcard).await,
        [
            ("json", expected.clone()),
            ("grpc", expected.clone()),
            ("grpc-web", expected)
        ]
    );
}
