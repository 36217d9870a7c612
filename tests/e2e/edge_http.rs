//! Issue 18, the HTTP edge: the `Host` rule of RFC 9112, dot segments kept away from backends,
//! and every error the gateway (or hyper under it) makes is a JSON `google.rpc.Status`. Raw TCP
//! clients send what well-behaved client libraries refuse to.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestEnv;
use crate::routing::assert_json_reply;

/// Every wait here is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

/// What a raw HTTP/1.1 exchange returned: status, headers (lower-case names), body.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self.headers.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "two {name} headers: {self:?}");
        first
    }
}

/// Writes `request` as it is on a new connection and reads one answer: its head, then
/// `content-length` bytes of body.
async fn raw_http1(env: &TestEnv, request: &[u8]) -> Raw {
    let addr = env.gateway.http_addr.expect("listener");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(BOUND, async {
        loop {
            if let Some(raw) = parse(&seen) {
                return raw;
            }
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a whole answer: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answer within bound")
}

/// A whole answer in `seen`, if it has arrived.
fn parse(seen: &[u8]) -> Option<Raw> {
    let end = seen.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&seen[..end]).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line[9..12].parse().expect("status");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("length"));
    let body = seen.get(end + 4..end + 4 + length)?;
    Some(Raw {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

fn with_limits(limits: &'static str) -> impl FnOnce(String) -> String {
    move |config| format!("{config}limits:\n{limits}")
}

// ---- Host (RFC 9112 §3.2) ----

/// Before: `printf 'GET /v1/policies HTTP/1.1\r\n\r\n' | nc 127.0.0.1 8080` was a 200, and so
/// was the same request with two `Host` headers.
#[tokio::test]
async fn an_http11_request_needs_exactly_one_host_header() {
    let env = TestEnv::start().await;
    for (request, count) in [
        (&b"GET /v1/policies HTTP/1.1\r\n\r\n"[..], 0),
        (
            &b"GET /v1/policies HTTP/1.1\r\nhost: a.example\r\nhost: b.example\r\n\r\n"[..],
            2,
        ),
    ] {
        let reply = raw_http1(&env, request).await;
        assert_eq!(reply.status, 400, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.header("x-request-id").is_some(), "{reply:?}");
        assert_eq!(
            reply.body,
            format!(
                r#"{{"code":3,"message":"a request must carry exactly one Host header (RFC 9112 §3.2); this one has {count}","details":[]}}"#
            )
        );
    }
    // HTTP/1.0 has no Host requirement; one Host is fine.
    let old = raw_http1(&env, b"GET /v1/policies HTTP/1.0\r\n\r\n").await;
    assert_eq!((old.status, old.body.as_str()), (200, r#"{"policies":[]}"#));
    let one = raw_http1(&env, b"GET /v1/policies HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert_eq!((one.status, one.body.as_str()), (200, r#"{"policies":[]}"#));
}

/// HTTP/2 names the authority in `:authority`; a request without `Host` is served.
#[tokio::test]
async fn an_http2_request_without_host_is_served() {
    let env = TestEnv::start().await;
    let mut sender = h2c(&env).await;
    let request = Request::get("http://127.0.0.1/v1/policies")
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert!(request.headers().get("host").is_none());
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("body");
    assert_eq!(&body.to_bytes()[..], br#"{"policies":[]}"#);
}

async fn h2c(env: &TestEnv) -> http2::SendRequest<Full<Bytes>> {
    let addr = env.gateway.http_addr.expect("listener");
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    sender
}

// ---- dot segments ----

/// Before: `curl --path-as-is /v1/documents/../../etc/passwd` reached the backend with
/// `path: "../../etc/passwd"`, and `%2e%2e` the same way.
#[tokio::test]
async fn dot_segments_are_removed_before_routing() {
    let env = TestEnv::start().await;
    for path in [
        "/v1/documents/../../etc/passwd",
        "/v1/documents/%2e%2e/%2E%2E/etc/passwd",
        "/v1/documents/./.%2e/../etc/passwd",
    ] {
        assert_json_reply(
            &env.get(path).await,
            StatusCode::NOT_FOUND,
            r#"{"code":5,"message":"no route for /etc/passwd","details":[]}"#,
        );
    }
    // Inside the route the normalised path is what binds.
    assert_json_reply(
        &env.get("/v1/documents/a/./b/../c").await,
        StatusCode::OK,
        r#"{"path":"a/c","segments":["a","c"]}"#,
    );
    assert_json_reply(
        &env.get("/v1/documents/a/%2e%2E/b?x=1").await,
        StatusCode::BAD_REQUEST,
        r#"{"code":3,"message":"unknown query parameter `x`","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"x","description":"unknown query parameter `x`"}]}]}"#,
    );
}

/// Before: `/v1/documents/..%2F..%2Fetc` bound `path` to `..%2F..%2Fetc`, `/v1/echo/..%2Fadmin`
/// bound `string_value` to `../admin`, and `POST /v1/policies/..:enforce` enforced policy `..`.
#[tokio::test]
async fn a_path_variable_holding_a_dot_segment_is_refused() {
    let env = TestEnv::start().await;
    let refused = |field: &str| {
        let message =
            format!("path variable `{field}` holds a dot segment (`.` or `..`); it is refused");
        format!(
            r#"{{"code":3,"message":"{message}","details":[{{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{{"field":"{field}","description":"{message}"}}]}}]}}"#
        )
    };
    for (path, field) in [
        ("/v1/documents/..%2F..%2Fetc", "path"),
        ("/v1/documents/a/..%5Cb", "path"),
        ("/v1/echo/..%2Fadmin", "string_value"),
    ] {
        assert_json_reply(
            &env.get(path).await,
            StatusCode::BAD_REQUEST,
            &refused(field),
        );
    }
    let enforce = env.post_json("/v1/policies/..:enforce", "{}").await;
    assert_json_reply(&enforce, StatusCode::BAD_REQUEST, &refused("id"));
}

// ---- errors hyper used to answer with an empty body ----

const TOO_LARGE: &str = r#"{"code":8,"message":"request header fields too large: the request head exceeds limits.max_header_bytes or has too many fields","details":[]}"#;

/// Before: a head over `max_header_bytes` got hyper's `431` with `content-length: 0`.
#[tokio::test]
async fn an_http11_head_over_the_limit_is_431_with_a_json_status() {
    let env = TestEnv::start_with(with_limits("  max_header_bytes: 8KiB\n")).await;
    let mut request = b"GET /v1/policies HTTP/1.1\r\nhost: a\r\nx-big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 10 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let reply = raw_http1(&env, &request).await;
    assert_eq!(reply.status, 431, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(
        reply.header("content-length"),
        Some(TOO_LARGE.len().to_string().as_str())
    );
    assert_eq!(reply.body, TOO_LARGE);
}

/// Before: a header line without a colon got hyper's `400` with an empty body.
#[tokio::test]
async fn a_malformed_http11_head_is_400_with_a_json_status() {
    let env = TestEnv::start().await;
    let reply = raw_http1(
        &env,
        b"GET /v1/policies HTTP/1.1\r\nhost: a\r\nno colon\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(
        reply.body,
        r#"{"code":3,"message":"malformed HTTP/1.1 request head","details":[]}"#
    );
}

/// Before: a request target longer than hyper's 65534 bytes got an empty `414`.
#[tokio::test]
async fn an_overlong_uri_is_414_with_a_json_status() {
    let env = TestEnv::start_with(with_limits("  max_header_bytes: 256KiB\n")).await;
    let mut request = b"GET /v1/echo/".to_vec();
    request.extend(std::iter::repeat_n(b'a', 70_000));
    request.extend_from_slice(b" HTTP/1.1\r\nhost: a\r\n\r\n");
    let reply = raw_http1(&env, &request).await;
    assert_eq!(reply.status, 414, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":8,"message":"request URI too long","details":[]}"#
    );
}

/// Before: an HTTP/2 header list over `max_header_bytes` got h2's `431` without a body.
#[tokio::test]
async fn an_http2_header_list_over_the_limit_is_431_with_a_json_status() {
    let env = TestEnv::start_with(with_limits("  max_header_bytes: 8KiB\n")).await;
    let mut sender = h2c(&env).await;
    let request = Request::get("http://127.0.0.1/v1/policies")
        .header("x-big", "a".repeat(10 * 1024))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.expect("body");
    assert_eq!(String::from_utf8_lossy(&body.to_bytes()), TOO_LARGE);
    // A header list under the limit is served on the same connection.
    let small = Request::get("http://127.0.0.1/v1/policies")
        .header("x-small", "a".repeat(1024))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(small).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}
