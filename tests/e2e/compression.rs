//! gzip between clients and the gateway (issue 17): large JSON answers compressed when
//! `Accept-Encoding` allows (q-values honoured), streams compressed message by message and still
//! delivered as they happen, gzip request bodies inflated under the body limit, and precise
//! errors for what cannot be taken.

use std::io::{Read, Write};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::harness::{TestEnv, http1_client};

/// Status, headers and raw body bytes of one request with a raw body.
async fn exchange(
    env: &TestEnv,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", env.base()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = http1_client()
        .request(request.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("send");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a whole gzip stream");
    text
}

/// An Echo of a 3 KiB string: a JSON answer past the 1 KiB threshold.
fn large_echo() -> String {
    format!(r#"{{"stringValue":"{}"}}"#, "tai ".repeat(768))
}

/// `text` with the value of its `"traceparent":"…"` (55 characters) replaced by dashes.
fn mask_traceparent(text: &str) -> String {
    const KEY: &str = "\"traceparent\":\"";
    let start = text.find(KEY).map_or(text.len(), |i| i + KEY.len());
    let end = (start + 55).min(text.len());
    format!(
        "{}{}{}",
        &text[..start],
        "-".repeat(end - start),
        &text[end..]
    )
}

#[tokio::test]
async fn a_large_json_answer_is_gzipped_only_for_clients_that_accept_it() {
    let env = TestEnv::start().await;
    // Echo answers with the metadata it got: the same request id makes the answers equal, once
    // the `traceparent` each call gets (its own span id) is masked.
    let json = [
        ("content-type", "application/json"),
        ("x-request-id", "same"),
    ];
    let plain = exchange(
        &env,
        Method::POST,
        "/v1/echo",
        &json,
        large_echo().into_bytes(),
    )
    .await;
    assert_eq!(plain.0, StatusCode::OK);
    assert_eq!(plain.1.get("content-encoding"), None);
    assert_eq!(plain.1["vary"], "accept-encoding");
    let expected = mask_traceparent(&String::from_utf8(plain.2).expect("JSON"));
    for accept in ["gzip", "br;q=1, gzip;q=0.5", "*"] {
        let headers = [json[0], json[1], ("accept-encoding", accept)];
        let (status, headers, body) = exchange(
            &env,
            Method::POST,
            "/v1/echo",
            &headers,
            large_echo().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{accept}");
        assert_eq!(headers["content-encoding"], "gzip", "{accept}");
        assert_eq!(headers["vary"], "accept-encoding");
        assert_eq!(headers["content-length"], body.len().to_string());
        assert!(body.len() * 4 < expected.len(), "{} bytes", body.len());
        assert_eq!(mask_traceparent(&gunzip(&body)), expected, "{accept}");
    }
    for refused in ["gzip;q=0", "identity", "br", "*;q=1, gzip;q=0"] {
        let headers = [json[0], json[1], ("accept-encoding", refused)];
        let (_, headers, body) = exchange(
            &env,
            Method::POST,
            "/v1/echo",
            &headers,
            large_echo().into_bytes(),
        )
        .await;
        assert_eq!(headers.get("content-encoding"), None, "{refused}");
        let body = String::from_utf8(body).expect("JSON");
        assert_eq!(mask_traceparent(&body), expected);
    }
    // A small answer stays as it is.
    let small = exchange(
        &env,
        Method::GET,
        "/v1/echo/hi",
        &[("accept-encoding", "gzip")],
        vec![],
    )
    .await;
    assert_eq!(small.1.get("content-encoding"), None);
    assert_eq!(small.1.get("vary"), None);
}

#[tokio::test]
async fn a_streamed_answer_is_compressed_message_by_message_and_arrives_as_it_happens() {
    let env = TestEnv::start().await;
    let policy = r#"{"policyName":"stream-me","policyType":"access"}"#;
    assert_eq!(
        env.post_json("/v1/policies/propose", policy).await.status,
        StatusCode::OK
    );
    // The watch replays the one policy, then waits for changes that never come: the first
    // message must reach the client, decodable, while the stream is still open.
    let request = Request::get(format!("{}/v1/policies:watch?replay=true", env.base()))
        .header("accept", "application/x-ndjson")
        .header("accept-encoding", "gzip")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = http1_client().request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["vary"], "accept-encoding");
    let mut body = response.into_body();
    let mut inflated = flate2::write::GzDecoder::new(Vec::new());
    let first_line = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let frame = body.frame().await.expect("a frame").expect("data");
            inflated
                .write_all(frame.data_ref().expect("data"))
                .expect("gzip");
            inflated.flush().expect("gzip");
            let text = String::from_utf8_lossy(inflated.get_ref()).into_owned();
            if let Some(line) = text.lines().next().filter(|_| text.contains('\n')) {
                break line.to_owned();
            }
        }
    })
    .await
    .expect("the first message arrives while the stream stays open");
    let event: serde_json::Value = serde_json::from_str(&first_line).expect("a JSON line");
    assert_eq!(event["policy"]["policyName"], "stream-me");
}

#[tokio::test]
async fn gzip_request_bodies_are_inflated_under_the_limit_and_bad_ones_are_refused() {
    let env =
        TestEnv::start_with(|c| format!("{c}transcoding:\n  max_request_bytes: 64KiB\n")).await;
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let body = gzip(br#"{"policyName":"zipped","policyType":"access"}"#);
    let (status, _, answer) = exchange(
        &env,
        Method::POST,
        "/v1/policies/propose",
        &headers,
        body.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let cases: [(&str, Vec<u8>, StatusCode, &str); 3] = [
        // Cut short: the gzip trailer is missing.
        (
            "gzip",
            body[..body.len() - 6].to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid gzip",
        ),
        // 10 MiB of zeros in a few KiB: refused at the limit, never inflated whole.
        (
            "gzip",
            gzip(&vec![b'0'; 10 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "once decompressed",
        ),
        (
            "br",
            body.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Encoding `br`",
        ),
    ];
    for (encoding, bytes, status, says) in cases {
        let headers = [headers[0], ("content-encoding", encoding)];
        let (got, _, answer) =
            exchange(&env, Method::POST, "/v1/policies/propose", &headers, bytes).await;
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON error");
        assert_eq!(got, status, "{answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| m.contains(says)),
            "{answer}"
        );
    }
}

/// A gRPC backend that gzips every answer: `GetPolicy` gets one compressed `Policy`, anything
/// else a `grpc-status` 12. It records the `grpc-accept-encoding` each call came with.
async fn gzipping_backend(
    offered: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> std::net::SocketAddr {
    use prost::Message;
    use tai_stubs::proto::tai::Policy;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let offered = offered.clone();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let accepted = request
                        .headers()
                        .get("grpc-accept-encoding")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    offered.lock().expect("offered").push(accepted);
                    let policy = Policy {
                        id: "pol-zip".into(),
                        policy_name: "compressed ".repeat(50),
                        ..Policy::default()
                    };
                    let message = gzip(&policy.encode_to_vec());
                    let mut frame = vec![1];
                    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
                    frame.extend_from_slice(&message);
                    let trailers = HeaderMap::from_iter([(
                        http::header::HeaderName::from_static("grpc-status"),
                        http::HeaderValue::from_static("0"),
                    )]);
                    let frames = vec![
                        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(
                            frame,
                        ))),
                        Ok(http_body::Frame::trailers(trailers)),
                    ];
                    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
                    let response = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-encoding", "gzip")
                        .body(body)
                        .expect("response");
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
            tokio::spawn(async move {
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_backend_that_gzips_its_messages_is_read_and_the_gateway_offered_it() {
    let offered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let backend = gzipping_backend(offered.clone()).await;
    let stubs = crate::harness::start_stubs().await;
    let config = crate::harness::default_config(&stubs).replacen(
        &format!("address: {}", stubs.governor_addr),
        &format!("address: {backend}"),
        1,
    );
    let env = TestEnv::start_on(stubs, &config).await;
    let reply = env.get("/v1/policies/pol-zip").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["id"], "pol-zip");
    assert_eq!(reply.json()["policyName"], "compressed ".repeat(50));
    assert_eq!(offered.lock().expect("offered").as_slice(), ["gzip"]);
}

// ---- gzip towards backends (`upstreams.<name>.send_compressed`) ----

/// A policy proposal whose request message is about 2 KiB.
fn large_proposal(id: &str) -> String {
    let rules: Vec<String> = (0..40)
        .map(|i| format!(r#""rule-{i:02}":"allow read of resource {i} for the audit team""#))
        .collect();
    format!(
        r#"{{"id":"{id}","policyType":"access","policyName":"large","rules":{{{}}}}}"#,
        rules.join(",")
    )
}

/// The stubs' `x-stub-request-encoding` (the `grpc-encoding` each call arrived with) reaches
/// clients.
fn showing_the_request_encoding(config: String) -> String {
    config.replace(
        "metadata_to_response: [x-stub-service, x-stub-trailer]",
        "metadata_to_response: [x-stub-service, x-stub-trailer, x-stub-request-encoding]",
    )
}

#[tokio::test]
async fn an_upstream_set_to_gzip_gets_large_request_messages_compressed_and_answers_them() {
    let env = TestEnv::start_with(|config| {
        showing_the_request_encoding(config).replacen(
            "  governor:\n",
            "  governor:\n    send_compressed: gzip\n    send_compressed_min_size: 512B\n",
            1,
        )
    })
    .await;
    let body = large_proposal("gz-1");
    let reply = env.post_json("/v1/policies/propose", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("x-stub-request-encoding"), Some("gzip"));
    // The stub stored what it inflated: the policy reads back whole. This request's message
    // (the id) is under the minimum size, so it goes as it is.
    let reply = env.get("/v1/policies/gz-1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("x-stub-request-encoding"), Some("identity"));
    let sent: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(reply.json()["rules"], sent["rules"]);
    assert_eq!(reply.json()["policyName"], "large");
}

#[tokio::test]
async fn a_client_stream_to_an_upstream_set_to_gzip_sends_large_messages_compressed() {
    let env = TestEnv::start_with(|config| {
        showing_the_request_encoding(config).replacen(
            "  governor:\n",
            "  governor:\n    send_compressed: gzip\n    send_compressed_min_size: 512B\n",
            1,
        )
    })
    .await;
    // Two messages over the minimum size (compressed) and one under it (sent as it is).
    let small = r#"{"id":"gz-s3","policyType":"access","policyName":"small"}"#;
    let body = format!(
        "{}\n{}\n{small}\n",
        large_proposal("gz-s1"),
        large_proposal("gz-s2")
    );
    let reply = env
        .send(
            Method::POST,
            "/v1/policies:batchPropose",
            &[("content-type", "application/x-ndjson")],
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("x-stub-request-encoding"), Some("gzip"));
    assert_eq!(reply.json()["receipts"].as_array().map(Vec::len), Some(3));
    let sent: serde_json::Value = serde_json::from_str(&large_proposal("gz-s2")).expect("json");
    let stored = env.get("/v1/policies/gz-s2").await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert_eq!(stored.json()["rules"], sent["rules"]);
    assert_eq!(
        env.get("/v1/policies/gz-s3").await.json()["policyName"],
        "small"
    );
}

#[tokio::test]
async fn without_send_compressed_request_messages_go_uncompressed() {
    let env = TestEnv::start_with(showing_the_request_encoding).await;
    let reply = env
        .post_json("/v1/policies/propose", &large_proposal("plain-1"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("x-stub-request-encoding"), Some("identity"));
}
