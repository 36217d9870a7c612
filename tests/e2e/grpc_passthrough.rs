//! Native gRPC and gRPC-Web clients through the gateway: a tonic client (unary, server
//! streaming, errors, deadlines) and hand-built gRPC-Web frames.

use std::time::Duration;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use prost::Message;
use tai_stubs::proto::tai::governor_client::GovernorClient;
use tai_stubs::proto::tai::{
    EchoMessage, GetPolicyRequest, Policy, PolicyEventKind, WatchPoliciesRequest,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{TestEnv, h2c_client, http1_client};

/// A tonic client talking to the gateway's public listener.
pub(crate) async fn client(env: &TestEnv) -> GovernorClient<Channel> {
    let channel = Channel::from_shared(env.base())
        .expect("uri")
        .connect()
        .await
        .expect("connect to the gateway");
    GovernorClient::new(channel)
}

fn policy(id: &str, name: &str) -> Policy {
    Policy {
        id: id.to_owned(),
        policy_type: "access".to_owned(),
        policy_name: name.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tonic_client_makes_unary_calls_through_the_gateway() {
    let env = TestEnv::start().await;
    let mut governor = client(&env).await;
    let receipt = governor
        .propose_policy(policy("p-1", "deny-all"))
        .await
        .expect("propose")
        .into_inner();
    assert_eq!(receipt.policy_id, "p-1");
    let reply = governor
        .get_policy(GetPolicyRequest { id: "p-1".into() })
        .await
        .expect("get");
    // Headers and trailers pass through as the backend sent them.
    assert_eq!(
        reply.metadata().get("x-stub-service").expect("header"),
        "governor"
    );
    assert_eq!(
        reply.metadata().get("x-stub-trailer").expect("trailer"),
        "done"
    );
    assert_eq!(reply.into_inner().policy_name, "deny-all");
    assert_eq!(env.stubs.store().calls("tai.Governor/GetPolicy"), 1);
    // The same policy is visible to JSON clients.
    assert_eq!(
        env.get("/v1/policies/p-1").await.json()["policyName"],
        "deny-all"
    );
}

#[tokio::test]
async fn tonic_client_sees_backend_errors_and_deadlines() {
    let env = TestEnv::start().await;
    let mut governor = client(&env).await;
    let missing = governor
        .get_policy(GetPolicyRequest { id: "nope".into() })
        .await
        .expect_err("not found");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn the_route_deadline_bounds_grpc_calls() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    timeout: 200ms\n",
        )
    })
    .await;
    let mut governor = client(&env).await;
    let mut slow = tonic::Request::new(GetPolicyRequest { id: "nope".into() });
    slow.metadata_mut()
        .insert("x-stub-delay-ms", "5000".parse().expect("value"));
    // The client would wait far longer; the route's deadline answers first.
    slow.set_timeout(Duration::from_secs(10));
    let late = governor.get_policy(slow).await.expect_err("deadline");
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");
}

#[tokio::test]
async fn tonic_client_receives_server_streams_and_late_errors() {
    let env = TestEnv::start().await;
    let mut governor = client(&env).await;
    for (id, name) in [("p-1", "a"), ("p-2", "b")] {
        governor
            .propose_policy(policy(id, name))
            .await
            .expect("propose");
    }
    let mut stream = governor
        .watch_policies(WatchPoliciesRequest {
            replay: true,
            max_events: 2,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let mut ids = Vec::new();
    while let Some(event) = stream.message().await.expect("event") {
        assert_eq!(event.kind(), PolicyEventKind::Existing);
        ids.push(event.policy.expect("policy").id);
    }
    assert_eq!(ids, ["p-1", "p-2"]);

    let mut failing = tonic::Request::new(WatchPoliciesRequest {
        replay: true,
        ..Default::default()
    });
    for (key, value) in [
        ("x-stub-fail-after", "1"),
        ("x-stub-fail-code", "ABORTED"),
        ("x-stub-fail-message", "boom"),
    ] {
        failing
            .metadata_mut()
            .insert(key, value.parse().expect("value"));
    }
    let mut stream = governor
        .watch_policies(failing)
        .await
        .expect("watch")
        .into_inner();
    assert!(stream.message().await.expect("first").is_some());
    let error = stream.message().await.expect_err("late error");
    assert_eq!(error.code(), Code::Aborted);
    assert_eq!(error.message(), "boom");
}

#[tokio::test]
async fn unknown_grpc_methods_are_unimplemented() {
    let env = TestEnv::start().await;
    let request = Request::post(format!("{}/tai.Nobody/Call", env.base()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("request");
    let response = h2c_client().request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "12");
}

/// A gRPC(-Web) message frame.
pub(crate) fn frame(flag: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(flag);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// Splits a gRPC-Web response body into (flag, payload) frames.
pub(crate) fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        out.push((body[0], body[5..5 + length].to_vec()));
        body = &body[5 + length..];
    }
    assert!(body.is_empty(), "trailing bytes {body:?}");
    out
}

async fn grpc_web(env: &TestEnv, content_type: &str, body: Bytes) -> (http::HeaderMap, Bytes) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/tai.Governor/GetPolicy", env.base()))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .body(Full::new(body))
        .expect("request");
    let response = http1_client().request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let (parts, body) = response.into_parts();
    (
        parts.headers,
        body.collect().await.expect("body").to_bytes(),
    )
}

#[tokio::test]
async fn grpc_web_frames_are_translated_both_ways() {
    let env = TestEnv::start().await;
    let stored = env
        .post_json("/v1/policies/propose", r#"{"id":"p-1","policyName":"web"}"#)
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let request = GetPolicyRequest { id: "p-1".into() }.encode_to_vec();

    let (headers, body) = grpc_web(&env, "application/grpc-web+proto", frame(0, &request)).await;
    assert_eq!(headers["content-type"], "application/grpc-web+proto");
    let got = frames(&body);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, 0);
    assert_eq!(
        Policy::decode(&got[0].1[..]).expect("policy").policy_name,
        "web"
    );
    assert_eq!(got[1].0, 0x80);
    let trailers = String::from_utf8(got[1].1.clone()).expect("text");
    assert!(trailers.contains("grpc-status: 0\r\n"), "{trailers}");
    assert!(trailers.contains("x-stub-trailer: done\r\n"), "{trailers}");

    // The base64 variant carries the same frames as text.
    let text = base64::engine::general_purpose::STANDARD.encode(frame(0, &request));
    let (headers, body) = grpc_web(&env, "application/grpc-web-text", Bytes::from(text)).await;
    assert_eq!(headers["content-type"], "application/grpc-web-text+proto");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .expect("base64 body");
    let got = frames(&decoded);
    assert_eq!(
        Policy::decode(&got[0].1[..]).expect("policy").policy_name,
        "web"
    );
    assert_eq!(got[1].0, 0x80);

    // Errors come back as a trailers-only answer.
    let missing = GetPolicyRequest { id: "nope".into() }.encode_to_vec();
    let (headers, body) = grpc_web(&env, "application/grpc-web", frame(0, &missing)).await;
    assert_eq!(headers["grpc-status"], "5", "{headers:?}");
    assert!(body.is_empty());
}

#[tokio::test]
async fn cors_preflights_and_grpc_web_answers_follow_the_route_policy() {
    let env = TestEnv::start_with(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    cors:\n      allow_origins: [\"https://app.example\"]\n",
        )
    })
    .await;
    let path = "/tai.Governor/GetPolicy";
    let env = &env;
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-grpc-web"),
        ];
        env.send(Method::OPTIONS, path, &headers, None).await
    };
    let allowed = preflight("https://app.example").await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        allowed.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    let allow_headers = allowed
        .header("access-control-allow-headers")
        .expect("list");
    assert!(allow_headers.contains("x-grpc-web"), "{allow_headers}");
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));

    let refused = preflight("https://evil.example").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let request = frame(0, &GetPolicyRequest { id: "nope".into() }.encode_to_vec());
    let body = String::from_utf8(request.to_vec()).expect("ASCII frame");
    let answer = env
        .send(
            Method::POST,
            path,
            &[
                ("content-type", "application/grpc-web+proto"),
                ("origin", "https://app.example"),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(answer.header("grpc-status"), Some("5"));
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let exposed = answer
        .header("access-control-expose-headers")
        .expect("list");
    assert!(exposed.contains("grpc-status"), "{exposed}");
}

#[tokio::test]
async fn tonic_client_streams_requests_through_the_gateway() {
    let env = TestEnv::start().await;
    let mut governor = client(&env).await;
    let policies = tokio_stream::iter(vec![policy("p-1", "a"), policy("p-2", "b")]);
    let summary = governor
        .propose_policies(policies)
        .await
        .expect("propose all")
        .into_inner();
    let ids: Vec<_> = summary
        .receipts
        .iter()
        .map(|r| r.policy_id.as_str())
        .collect();
    assert_eq!(ids, ["p-1", "p-2"]);
    assert_eq!(env.get("/v1/policies/p-2").await.json()["policyName"], "b");
}

#[tokio::test]
async fn bidirectional_streams_flow_message_by_message() {
    let env = TestEnv::start().await;
    let mut governor = client(&env).await;
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let mut replies = governor
        .echo_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("open")
        .into_inner();
    // Each answer arrives while the request stream is still open: nothing is buffered whole.
    for text in ["one", "two"] {
        let message = EchoMessage {
            string_value: text.to_owned(),
            ..Default::default()
        };
        sender.send(message).await.expect("send");
        let reply = replies.message().await.expect("reply").expect("a message");
        assert_eq!(reply.string_value, text);
    }
    drop(sender);
    assert!(replies.message().await.expect("end").is_none());
}

/// The default test config with the governor route behind a required token with scope
/// `policy:write`, trusting the committed dev key.
fn protected(config: String) -> String {
    let public = format!("{}/certs/dev-jwt/public.pem", env!("CARGO_MANIFEST_DIR"));
    config.replacen(
        "    upstream: governor\n",
        "    upstream: governor\n    auth:\n      mode: required\n      require_scopes: [policy:write]\n",
        1,
    ) + &format!(
        "auth:\n  providers:\n    dev:\n      issuer: tai-gateway-dev\n      audiences: [tai-gateway]\n      algorithms: [EdDSA]\n      pem_file: \"{public}\"\n      claims_to_metadata:\n        sub: x-jwt-sub\n"
    )
}

#[tokio::test]
async fn native_grpc_calls_pass_the_same_token_checks_as_json_calls() {
    let env = TestEnv::start_with(protected).await;
    let mut governor = client(&env).await;

    let missing = governor
        .propose_policy(policy("p-1", "deny-all"))
        .await
        .expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "missing bearer token");

    let mut read_only = tonic::Request::new(policy("p-1", "deny-all"));
    let token = crate::auth::mint_dev_token("policy:read");
    read_only.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    let forbidden = governor.propose_policy(read_only).await.expect_err("scope");
    assert_eq!(forbidden.code(), Code::PermissionDenied);
    assert_eq!(env.stubs.store().calls("tai.Governor/ProposePolicy"), 0);

    // A valid token passes, and its subject reaches the backend while a forged copy does not.
    let mut echo = tonic::Request::new(EchoMessage::default());
    let token = crate::auth::mint_dev_token("policy:write");
    echo.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    echo.metadata_mut()
        .insert("x-jwt-sub", "mallory".parse().expect("metadata"));
    let echoed = governor.echo(echo).await.expect("echo").into_inner();
    assert_eq!(
        echoed
            .received_metadata
            .get("x-jwt-sub")
            .map(String::as_str),
        Some("alice")
    );
}

// ---- gzip messages from gRPC clients ----

/// A tonic client that sends its messages gzip-compressed.
async fn gzip_client(env: &TestEnv) -> GovernorClient<Channel> {
    client(env)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
}

/// The `grpc-encoding` the stub saw for a proposal sent by a gzip client.
async fn proposal_arrived_as(env: &TestEnv, id: &str) -> String {
    let mut governor = gzip_client(env).await;
    let reply = governor
        .propose_policy(policy(id, &"long name ".repeat(40)))
        .await
        .expect("propose");
    assert_eq!(reply.get_ref().policy_id, id);
    let encoding = reply.metadata().get("x-stub-request-encoding");
    encoding.expect("header").to_str().expect("text").to_owned()
}

#[tokio::test]
async fn gzip_messages_are_inflated_for_a_backend_not_set_to_take_gzip() {
    let env = TestEnv::start().await;
    assert_eq!(proposal_arrived_as(&env, "gz-in-1").await, "identity");
    let stored = client(&env)
        .await
        .get_policy(GetPolicyRequest {
            id: "gz-in-1".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(stored.policy_name, "long name ".repeat(40));
}

#[tokio::test]
async fn gzip_messages_pass_through_compressed_to_a_backend_set_to_take_gzip() {
    let env = TestEnv::start_with(|config| {
        config.replacen(
            "  governor:\n",
            "  governor:\n    send_compressed: gzip\n",
            1,
        )
    })
    .await;
    assert_eq!(proposal_arrived_as(&env, "gz-through-1").await, "gzip");
}

#[tokio::test]
async fn a_gzip_message_over_the_route_limit_once_inflated_is_resource_exhausted() {
    let env = TestEnv::start_with(|config| {
        config.replacen(
            "    upstream: governor\n",
            "    upstream: governor\n    transcoding:\n      max_request_bytes: 4KiB\n",
            1,
        )
    })
    .await;
    let mut governor = gzip_client(&env).await;
    // Compresses to well under the limit; inflated it is 64 KiB.
    let status = governor
        .propose_policy(policy("bomb-1", &"a".repeat(64 << 10)))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "request body exceeds the limit of 4096 bytes once decompressed"
    );
    // The gateway keeps serving; a small gzip message on the same route is inflated and answered.
    assert_eq!(proposal_arrived_as(&env, "after-bomb").await, "identity");
}
