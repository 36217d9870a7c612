//! TLS handshakes on `/metrics`: one per result (`ok`, `failed`, `timeout`) on the `https` listener.

use super::*;
use crate::admin::admin_get;

/// Polls `/metrics` until it contains every line of `want` (bounded: handshakes are counted by
/// the connection's task, which may run just after the client saw the outcome).
pub(super) async fn wait_for_metrics(env: &TestEnv, want: &[&str]) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = admin_get(env, "/metrics").await.body;
        if want.iter().all(|line| text.lines().any(|l| l == *line)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("metrics never showed {want:?}:\n{text}");
}

#[tokio::test]
async fn handshakes_are_counted_by_listener_and_result() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "    handshake_timeout: 100ms\n").await;
    let addr = tls_addr(&env);
    // ok
    let stream = connect(addr, localhost(), default_client(&pki, &[b"h2"]))
        .await
        .expect("handshake");
    drop(stream);
    // failed: no protocol in common
    let refused = connect(addr, localhost(), default_client(&pki, &[b"imap"])).await;
    assert!(refused.is_err());
    // timeout: a client that never sends its hello
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(BOUND, tcp.read(&mut buf))
        .await
        .expect("closed within bound");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let text = wait_for_metrics(
        &env,
        &[
            "tai_gateway_tls_handshakes_total{listener=\"https\",result=\"failed\"} 1",
            "tai_gateway_tls_handshakes_total{listener=\"https\",result=\"ok\"} 1",
            "tai_gateway_tls_handshakes_total{listener=\"https\",result=\"timeout\"} 1",
        ],
    )
    .await;
    assert!(text.contains(
        "# TYPE tai_gateway_tls_handshakes_total counter\n\
         tai_gateway_tls_handshakes_total{listener=\"https\",result=\"failed\"} 1\n\
         tai_gateway_tls_handshakes_total{listener=\"https\",result=\"ok\"} 1\n\
         tai_gateway_tls_handshakes_total{listener=\"https\",result=\"timeout\"} 1\n"
    ));
}

#[tokio::test]
async fn config_shows_the_tls_listener_paths_but_never_key_contents() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let reply = admin_get(&env, "/config").await;
    let key_pem = std::fs::read_to_string(dir.path().join("server-key.pem")).expect("key file");
    let config = reply.json();
    let https = &config["listeners"][1];
    assert_eq!(https["name"], "https");
    assert_eq!(https["address"], "127.0.0.1:0");
    let tls = &https["tls"];
    let cert = tls["certificates"][0]["cert"].as_str().expect("cert path");
    let key = tls["certificates"][0]["key"].as_str().expect("key path");
    assert!(
        cert.starts_with(&dir.path().display().to_string()),
        "{cert}"
    );
    assert!(key.starts_with(&dir.path().display().to_string()), "{key}");
    assert!(!reply.body.contains("PRIVATE KEY"), "{}", reply.body);
    assert!(!reply.body.contains(key_pem.trim()));
}
