//! Issue 18: the protocol ALPN negotiated is the only one spoken on the connection.

use super::*;

/// Sends `bytes` on a TLS connection that negotiated `alpn`; everything the server sent back
/// until it closed the connection.
async fn after_alpn(env: &TestEnv, pki: &Pki, alpn: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(tls_addr(env), localhost(), default_client(pki, &[alpn]))
        .await
        .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    stream.write_all(bytes).await.expect("write");
    let mut seen = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut seen)).await;
    // A close without TLS close_notify is an error to rustls: either result means "closed".
    let _closed = read.expect("the server closes the connection within the bound");
    seen
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Before: `openssl s_client -alpn h2` followed by `GET /v1/policies HTTP/1.1` got
/// `HTTP/1.1 200 OK`.
#[tokio::test]
async fn after_alpn_h2_an_http11_request_is_not_served() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let request = b"GET /v1/policies HTTP/1.1\r\nhost: localhost\r\n\r\n";
    let seen = after_alpn(&env, &pki, b"h2", request).await;
    // The HTTP/2 server sends its SETTINGS, finds no preface and closes: no HTTP/1.1 answer.
    assert!(
        !seen.windows(5).any(|w| w == b"HTTP/"),
        "an HTTP/1.1 answer after ALPN h2: {:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// Before: after ALPN `http/1.1`, the HTTP/2 preface was answered with a SETTINGS frame and
/// HTTP/2 was served.
#[tokio::test]
async fn after_alpn_http11_the_http2_preface_is_not_answered() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(&SETTINGS);
    let seen = after_alpn(&env, &pki, b"http/1.1", &bytes).await;
    assert_eq!(seen, b"", "answered the HTTP/2 preface after ALPN http/1.1");
}

/// Each negotiated protocol is still served, and a client without ALPN still gets what it
/// speaks.
#[tokio::test]
async fn the_negotiated_protocol_and_no_alpn_are_served() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let (status, body) = https_get(
            tls_addr(&env),
            default_client(&pki, &[alpn]),
            "/v1/policies",
            &[],
        )
        .await
        .expect("served");
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, r#"{"policies":[]}"#)
        );
    }
    // Without ALPN, HTTP/2 by prior knowledge is served.
    let stream = connect(tls_addr(&env), localhost(), default_client(&pki, &[]))
        .await
        .expect("handshake");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    let request = Request::get("https://localhost/v1/policies")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}
