//! Connection-level limits: a silent client is disconnected after `limits.idle_timeout`, over
//! HTTP/1.1 and HTTP/2 alike, while a request that takes longer than that keeps its connection.

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
