//! Idle HTTP/1.1 keep-alive connections (issue 14): `idle_timeout` governs them, the head
//! timeout only runs once a request head's first byte has arrived (for the first request and
//! between requests), and a connection idle long enough to be given back by hyper (its buffers
//! released) serves its next request as before — pipelined and split requests included. Raw
//! sockets against the real gateway and stubs; the timeouts are short and the waits far from
//! them.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::harness::TestEnv;

const BODY: &str = r#"{"policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"}}"#;

/// Past the head timeout (200 ms) many times over, and past the gateway's one second before
/// it gives an idle connection's buffers back.
const IDLE_WAIT: Duration = Duration::from_millis(2500);

fn with_limits(limits: &'static str) -> impl FnOnce(String) -> String {
    move |config| format!("{config}limits:\n{limits}")
}

fn propose() -> String {
    format!(
        "POST /v1/policies/propose HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
}

async fn connect(env: &TestEnv) -> TcpStream {
    TcpStream::connect(env.gateway.http_addr.expect("listener"))
        .await
        .expect("connect")
}

/// Reads one HTTP/1.1 answer with a content-length: its status line and body.
async fn read_answer(stream: &mut TcpStream) -> (String, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no content-length: {head}"));
            if seen.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&seen[end + 4..end + 4 + length]).to_string();
                let status = head.lines().next().unwrap_or_default().to_owned();
                return (status, body);
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        let n = read.expect("an answer within 10 s").expect("read");
        assert!(n > 0, "closed before a whole answer: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// The status line and body of a proposal's answer, checked field by field.
fn assert_proposed((status, body): (String, String)) {
    assert_eq!(status, "HTTP/1.1 200 OK");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["status"], "success", "{body}");
    let id = json["policyId"].as_str().unwrap_or_default();
    assert!(id.starts_with("pol-"), "{body}");
    assert_eq!(json["id"], format!("rec-{}", &id[4..]), "{body}");
}

/// Reads until the server closes the connection (at most `within`); how long that took, or
/// `None` if it was still open then.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        while !matches!(stream.read(&mut buf).await, Ok(0) | Err(_)) {}
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// Before: hyper's own head timer ran while a keep-alive connection waited for its next
/// request, so an idle connection was closed after `header_read_timeout` (10 s by default).
#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_head_timeout_and_serves_its_next_request() {
    let env = TestEnv::start_with(with_limits(
        "  header_read_timeout: 200ms\n  idle_timeout: 60s\n",
    ))
    .await;
    let mut stream = connect(&env).await;
    // Idle before its first request too.
    tokio::time::sleep(IDLE_WAIT).await;
    for _ in 0..3 {
        stream.write_all(propose().as_bytes()).await.expect("write");
        assert_proposed(read_answer(&mut stream).await);
        tokio::time::sleep(IDLE_WAIT).await;
    }
}

#[tokio::test]
async fn pipelined_and_byte_split_requests_on_a_connection_idle_in_between_are_all_answered() {
    let env = TestEnv::start_with(with_limits("  idle_timeout: 60s\n")).await;
    let mut stream = connect(&env).await;
    stream.write_all(propose().as_bytes()).await.expect("write");
    assert_proposed(read_answer(&mut stream).await);
    tokio::time::sleep(IDLE_WAIT).await;
    // Two requests in one write after the idle wait.
    let two = propose().repeat(2);
    stream.write_all(two.as_bytes()).await.expect("write");
    assert_proposed(read_answer(&mut stream).await);
    assert_proposed(read_answer(&mut stream).await);
    tokio::time::sleep(IDLE_WAIT).await;
    // One request arriving in three pieces: the head's first byte alone, the rest of the head,
    // the body.
    let one = propose();
    let head_end = one.find("\r\n\r\n").expect("head") + 4;
    for piece in [&one[..1], &one[1..head_end], &one[head_end..]] {
        stream.write_all(piece.as_bytes()).await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_proposed(read_answer(&mut stream).await);
}

#[tokio::test]
async fn a_head_stalled_after_its_first_byte_is_cut_at_the_head_timeout_first_and_between_requests()
{
    let env = TestEnv::start_with(with_limits(
        "  header_read_timeout: 200ms\n  idle_timeout: 60s\n",
    ))
    .await;
    // The first request's head.
    let mut first = connect(&env).await;
    first.write_all(b"P").await.expect("write");
    let closed = closed_within(&mut first, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "a stalled first head kept its connection");
    // A later request's head, on a connection idle (and given back by hyper) before it.
    let mut later = connect(&env).await;
    later.write_all(propose().as_bytes()).await.expect("write");
    assert_proposed(read_answer(&mut later).await);
    tokio::time::sleep(IDLE_WAIT).await;
    later.write_all(b"POST /v1/pol").await.expect("write");
    let closed = closed_within(&mut later, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "a stalled later head kept its connection");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let env = TestEnv::start_with(with_limits(
        "  header_read_timeout: 200ms\n  idle_timeout: 3s\n",
    ))
    .await;
    let mut stream = connect(&env).await;
    stream.write_all(propose().as_bytes()).await.expect("write");
    assert_proposed(read_answer(&mut stream).await);
    let took = closed_within(&mut stream, Duration::from_secs(30)).await;
    let took = took.expect("an idle connection stayed open past its idle timeout");
    // Not the head timeout: that would have closed it after 200 ms.
    assert!(took >= Duration::from_millis(2500), "closed after {took:?}");
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let env = TestEnv::start_with(with_limits("  idle_timeout: 60s\n")).await;
    let mut held = connect(&env).await;
    held.write_all(propose().as_bytes()).await.expect("write");
    assert_proposed(read_answer(&mut held).await);
    let mut fresh = connect(&env).await;
    tokio::time::sleep(IDLE_WAIT).await;
    let mut kept = connect(&env).await;
    kept.write_all(propose().as_bytes()).await.expect("write");
    assert_proposed(read_answer(&mut kept).await);
    let TestEnv { gateway, .. } = env;
    let shutdown = tokio::spawn(gateway.shutdown());
    for stream in [&mut held, &mut fresh, &mut kept] {
        let closed = closed_within(stream, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "an idle connection kept shutdown waiting");
    }
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finished")
        .expect("shutdown task");
}
