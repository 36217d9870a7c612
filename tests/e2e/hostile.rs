//! One hostile client cannot hurt the others (issue 12): heads trickled over HTTP/2, PINGs on an
//! idle connection, answers a client never takes, and connection floods are each bounded, over
//! real sockets against the real gateway and stubs.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::harness::TestEnv;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

fn with_limits(limits: &'static str) -> impl FnOnce(String) -> String {
    move |config| format!("{config}limits:\n{limits}")
}

/// Reads until the server closes the connection (at most `within`); how long that took, or
/// `None` if it was still open then.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

async fn connect(env: &TestEnv) -> TcpStream {
    TcpStream::connect(env.gateway.http_addr.expect("listener"))
        .await
        .expect("connect")
}

/// Before: a HEADERS frame trickled a byte at a time kept the connection open, each byte also
/// resetting the idle timer; `header_read_timeout` applied to HTTP/1.1 only.
#[tokio::test]
async fn a_trickled_http2_head_is_cut_at_the_head_timeout() {
    let env = TestEnv::start_with(with_limits(
        "  header_read_timeout: 500ms\n  idle_timeout: 60s\n",
    ))
    .await;
    let mut stream = connect(&env).await;
    stream.write_all(PREFACE).await.expect("preface");
    stream.write_all(&EMPTY_SETTINGS).await.expect("settings");
    let (mut reader, mut writer) = stream.into_split();
    // A HEADERS frame (END_HEADERS) of 40 bytes, one byte every 100 ms.
    let mut frame = vec![0, 0, 40, 1, 4, 0, 0, 0, 1];
    frame.extend_from_slice(&[0x82; 40]);
    let trickle = tokio::spawn(async move {
        for byte in frame {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        while !matches!(reader.read(&mut buf).await, Ok(0) | Err(_)) {}
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "a trickled head kept the connection open");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "closed after {took:?}");
}

/// Before: every byte counted as activity, so a client sending a PING a second kept an idle
/// connection past `idle_timeout` for ever.
#[tokio::test]
async fn pings_do_not_keep_an_idle_http2_connection_open() {
    let env = TestEnv::start_with(with_limits("  idle_timeout: 500ms\n")).await;
    let mut stream = connect(&env).await;
    stream.write_all(PREFACE).await.expect("preface");
    stream.write_all(&EMPTY_SETTINGS).await.expect("settings");
    let (mut reader, mut writer) = stream.into_split();
    let pings = tokio::spawn(async move {
        let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        for _ in 0..50 {
            if writer.write_all(&ping).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        while !matches!(reader.read(&mut buf).await, Ok(0) | Err(_)) {}
    })
    .await;
    pings.abort();
    assert!(closed.is_ok(), "PINGs kept an idle connection open");
}

/// An HTTP/2 client connection that grants each stream only `window` bytes.
async fn narrow_window_client(env: &TestEnv, window: u32) -> http2::SendRequest<Full<Bytes>> {
    let stream = connect(env).await;
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(window)
        .initial_connection_window_size(16 << 20)
        .handshake(TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    sender
}

/// `POST /v1/echo` whose answer is about `size` bytes.
fn large_echo(env: &TestEnv, size: usize) -> http::Request<Full<Bytes>> {
    let body = format!(r#"{{"stringValue":"{}"}}"#, "x".repeat(size));
    http::Request::post(format!("{}/v1/echo", env.base()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

/// Before: the gateway held every answer whole for a client that did not read, without bound
/// (90 answers of 11.7 MB on one zero-window connection took RSS to 1.5 GB).
#[tokio::test]
async fn large_answers_a_client_does_not_take_are_refused_beyond_its_connection_budget() {
    let env = TestEnv::start_with(with_limits(
        "  max_buffered_response_bytes_per_connection: 150KiB\n",
    ))
    .await;
    let mut client = narrow_window_client(&env, 1024).await;
    let first = client
        .send_request(large_echo(&env, 100_000))
        .await
        .expect("first answer head");
    assert_eq!(first.status(), StatusCode::OK);
    // The first answer's body is not read: its bytes stay held for this connection.
    let second = client
        .send_request(large_echo(&env, 100_000))
        .await
        .expect("second answer head");
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()["content-type"], "application/json");
    assert_eq!(second.headers()["retry-after"], "1");
    let body = second.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(
        body,
        r#"{"code":8,"message":"answer refused: this connection already has more than 153600 bytes of answers it has not read; read them first","details":[]}"#
    );
    // Small answers still flow on the same connection.
    let small = client
        .send_request(
            http::Request::get(format!("{}/v1/echo/hi", env.base()))
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("small answer");
    assert_eq!(small.status(), StatusCode::OK);
    drop(first);
}

/// Before: an answer a client never took held its connection (and the upstream stream behind
/// it) open until the idle timeout, five minutes by default.
#[tokio::test]
async fn a_connection_whose_client_takes_nothing_is_closed_at_the_write_timeout() {
    let env =
        TestEnv::start_with(with_limits("  write_timeout: 500ms\n  idle_timeout: 60s\n")).await;
    let mut client = narrow_window_client(&env, 1024).await;
    let answer = client
        .send_request(large_echo(&env, 100_000))
        .await
        .expect("answer head");
    assert_eq!(answer.status(), StatusCode::OK);
    let started = Instant::now();
    // Waits without reading, then finds the stream broken: the connection was closed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let read = tokio::time::timeout(Duration::from_secs(3), answer.into_body().collect()).await;
    assert!(
        matches!(read, Ok(Err(_))),
        "the answer was still being held after {:?}",
        started.elapsed()
    );
}

/// Before: no cap on connections; out of descriptors, the gateway logged every failed accept
/// and stopped answering, its admin server included.
#[tokio::test]
async fn a_full_connection_table_closes_an_idle_connection_to_seat_a_new_one() {
    let env = TestEnv::start_with(with_limits("  max_connections: 4\n")).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&env).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The new client is served; the longest-idle connection made room for it.
    let reply = env.get("/v1/echo/hi").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let first = closed_within(&mut idle[0], Duration::from_secs(2)).await;
    assert!(
        first.is_some(),
        "the longest-idle connection was not closed"
    );
}

#[tokio::test]
async fn one_address_gets_at_most_max_connections_per_ip() {
    let env = TestEnv::start_with(with_limits("  max_connections_per_ip: 2\n")).await;
    let _one = connect(&env).await;
    let _two = connect(&env).await;
    let mut third = connect(&env).await;
    let closed = closed_within(&mut third, Duration::from_secs(2)).await;
    assert!(
        closed.is_some(),
        "a third connection from one address was kept"
    );
}

/// Before: one client that opened three export streams and read none of them filled the
/// upstream connection's flow-control window (hyper's default: 5 MiB over 2 MiB streams), and
/// every other call on that connection stalled until its deadline.
#[tokio::test]
async fn streams_a_client_does_not_read_do_not_stall_other_calls_on_the_upstream_connection() {
    // One worker: every client shares its one upstream connection.
    let env = TestEnv::start_with(|config| config + "workers: 1\n").await;
    // 30 policies of 100 KB: each export streams 3 MB.
    let policy = format!(
        r#"{{"policyType":"bulk","policyName":"{}"}}"#,
        "p".repeat(100_000)
    );
    for _ in 0..30 {
        let reply = env.post_json("/v1/policies/propose", &policy).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let mut hostile = narrow_window_client(&env, 1024).await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let request = http::Request::get(format!("{}/v1/policies:export", env.base()))
            .body(Full::new(Bytes::new()))
            .expect("request");
        // The heads come back; the 3 MB behind each is never read.
        let answer = hostile.send_request(request).await.expect("export head");
        assert_eq!(answer.status(), StatusCode::OK);
        stalled.push(answer);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(3), env.get("/v1/echo/hi")).await;
    let reply = reply.expect("another client's call stalled behind the unread streams");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(stalled);
}
