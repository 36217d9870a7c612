//! Connection-level limits: a silent client is disconnected after `limits.idle_timeout`, over
//! HTTP/1.1 and HTTP/2 alike, while a request that takes longer than that keeps its connection;
//! client connections are spread over the worker threads, each with its own upstream connection.

use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::harness::TestEnv;

fn with_idle_timeout(config: String) -> String {
    config + "limits:\n  idle_timeout: 300ms\n"
}

/// Reads until the server closes the connection (at most 5 s) and returns how long that took.
async fn time_until_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a silent connection open for 5 s"
    );
    started.elapsed()
}

#[tokio::test]
async fn a_client_that_never_speaks_is_disconnected() {
    let env = TestEnv::start_with(with_idle_timeout).await;
    let mut stream = TcpStream::connect(env.gateway.http_addr.expect("listener"))
        .await
        .expect("connect");
    let took = time_until_closed(&mut stream).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
}

#[tokio::test]
async fn an_http2_client_that_goes_silent_after_its_preface_is_disconnected() {
    let env = TestEnv::start_with(with_idle_timeout).await;
    let mut stream = TcpStream::connect(env.gateway.http_addr.expect("listener"))
        .await
        .expect("connect");
    // Connection preface and an empty SETTINGS frame, then nothing.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    let took = time_until_closed(&mut stream).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
}

#[tokio::test]
async fn a_request_slower_than_the_idle_timeout_keeps_its_connection() {
    let env = TestEnv::start_with(with_idle_timeout).await;
    let reply = env
        .send(
            http::Method::GET,
            "/v1/echo/slow",
            &[("x-stub-delay-ms", "700")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["stringValue"], "slow");
}

/// The `x-stub-peer` each of three calls on one new client connection saw: the gateway's side of
/// the upstream connection that carried it.
async fn upstream_peers_of_one_connection(env: &TestEnv) -> Vec<String> {
    let stream = TcpStream::connect(env.gateway.http_addr.expect("listener"))
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut peers = Vec::new();
    for _ in 0..3 {
        let request = http::Request::get("/v1/policies")
            .header("host", "localhost")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let peer = response.headers()["x-stub-peer"].to_str().expect("ascii");
        peers.push(peer.to_owned());
    }
    peers
}

fn with_workers(workers: usize) -> impl FnOnce(String) -> String {
    move |config| {
        config.replace(
            "metadata_to_response: [x-stub-service, x-stub-trailer]",
            "metadata_to_response: [x-stub-service, x-stub-trailer, x-stub-peer]",
        ) + &format!("workers: {workers}\n")
    }
}

#[tokio::test]
async fn each_worker_calls_the_backend_over_its_own_connection() {
    let env = TestEnv::start_with(with_workers(2)).await;
    let first = upstream_peers_of_one_connection(&env).await;
    let second = upstream_peers_of_one_connection(&env).await;
    // Consecutive client connections go to different workers; a worker's calls share one
    // upstream connection, and the two workers do not share theirs.
    assert!(first.iter().all(|p| *p == first[0]), "{first:?}");
    assert!(second.iter().all(|p| *p == second[0]), "{second:?}");
    assert_ne!(first[0], second[0]);
}

#[tokio::test]
async fn with_one_worker_every_client_connection_shares_one_upstream_connection() {
    let env = TestEnv::start_with(with_workers(1)).await;
    let first = upstream_peers_of_one_connection(&env).await;
    let second = upstream_peers_of_one_connection(&env).await;
    assert!(
        first.iter().chain(&second).all(|p| *p == first[0]),
        "{first:?} {second:?}"
    );
}
