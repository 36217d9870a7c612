//! ALPN, protocol versions, SNI, and the handshake and body-read timeouts.

use super::*;

// ---- ALPN and protocol versions ----

#[tokio::test]
async fn serves_http1_and_http2_chosen_by_alpn() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let addr = tls_addr(&env);
    for (alpn, version) in [
        (&b"http/1.1"[..], Version::HTTP_11),
        (&b"h2"[..], Version::HTTP_2),
    ] {
        let stream = connect(addr, localhost(), default_client(&pki, &[alpn]))
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
        let mut conn = Conn::open(stream).await.expect("http connection");
        let (status, seen, body) = conn
            .get("/v1/policies?policy_type=access", &[])
            .await
            .expect("response");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(seen, version);
        assert!(body.starts_with('{'), "{body}");
    }
    // Both offered: the server prefers h2.
    let stream = connect(
        addr,
        localhost(),
        default_client(&pki, &[b"http/1.1", b"h2"]),
    )
    .await
    .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn refuses_a_client_offering_only_unknown_alpn_protocols() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let result = connect(
        tls_addr(&env),
        localhost(),
        default_client(&pki, &[b"spdy/3", b"imap"]),
    )
    .await;
    let error = result.expect_err("handshake must fail");
    assert!(
        error.to_string().contains("NoApplicationProtocol"),
        "unexpected error: {error}"
    );
    // A client offering no ALPN at all is served (HTTP/1.1).
    let stream = connect(tls_addr(&env), localhost(), default_client(&pki, &[]))
        .await
        .expect("handshake without ALPN");
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let mut conn = Conn::open(stream).await.expect("http connection");
    let (status, _, _) = conn.get("/v1/policies", &[]).await.expect("response");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn speaks_tls12_and_tls13() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    for (versions, expected) in [
        (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
        (rustls::ALL_VERSIONS, ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(pki.roots(), &[b"http/1.1"], versions, None);
        let stream = connect(tls_addr(&env), localhost(), config)
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let mut conn = Conn::open(stream).await.expect("http connection");
        let (status, _, _) = conn.get("/v1/policies", &[]).await.expect("response");
        assert_eq!(status, StatusCode::OK);
    }
}

/// A ClientHello offering only `version` (no supported_versions extension), with ECDHE-ECDSA
/// suites, groups and signature schemes a TLS 1.2 server can use with the test certificate.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    // ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend_from_slice(&[0x00, 0x08, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups: x25519, P-256
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats: uncompressed
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08,
        0x04, // ecdsa_p256_sha256, rsa_pss
        0x00, 0x17, 0x00, 0x00, // extended master secret
    ];
    body.extend_from_slice(&[0x00, u8::try_from(extensions.len()).expect("len")]);
    body.extend_from_slice(extensions);
    let mut handshake = vec![0x01, 0x00, 0x00, u8::try_from(body.len()).expect("len")];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, version[0], version[1], 0x00];
    record.push(u8::try_from(handshake.len()).expect("len"));
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn refuses_tls10_and_tls11_client_hellos() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    // The control: the same hello saying TLS 1.2 gets a ServerHello (a handshake record).
    let mut tcp = TcpStream::connect(tls_addr(&env)).await.expect("connect");
    tcp.write_all(&legacy_client_hello([3, 3]))
        .await
        .expect("send hello");
    let mut first = [0u8; 1];
    tokio::time::timeout(BOUND, tcp.read_exact(&mut first))
        .await
        .expect("server answers within bound")
        .expect("read");
    assert_eq!(
        first[0], 0x16,
        "TLS 1.2 hello answered with a handshake record"
    );
    for (name, version) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        let mut tcp = TcpStream::connect(tls_addr(&env)).await.expect("connect");
        tcp.write_all(&legacy_client_hello(version))
            .await
            .expect("send hello");
        let mut answer = Vec::new();
        tokio::time::timeout(BOUND, tcp.read_to_end(&mut answer))
            .await
            .expect("server answers within bound")
            .ok();
        // Either an alert record (content type 21) or a plain close; never a handshake record.
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "{name}: server answered {answer:02x?}"
        );
        if let [0x15, _, _, _, _, level, description, ..] = answer[..] {
            assert_eq!(level, 2, "{name}: fatal alert");
            assert_eq!(description, 70, "{name}: protocol_version alert");
        }
    }
}

// ---- SNI ----

#[tokio::test]
async fn sni_selects_the_certificate_and_no_sni_gets_the_declared_default() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let a = pki.leaf("a", &["a.test", "127.0.0.1"]);
    let b = pki.leaf("b", &["b.test", "*.b.test", "127.0.0.1"]);
    let (a_cert, a_key) = write_leaf(&dir, "a", &a);
    let (b_cert, b_key) = write_leaf(&dir, "b", &b);
    let tls = format!(
        "    certificates:\n{}{}    default_certificate: b.test\n",
        cert_entry(&a_cert, &a_key, &["a.test"]),
        // No server_names: taken from the certificate's DNS names.
        cert_entry(&b_cert, &b_key, &[]),
    );
    let env = TestEnv::start_with(|config| with_tls(config, &tls)).await;
    let config = default_client(&pki, &[b"http/1.1"]);
    for (name, expected) in [
        (ServerName::try_from("a.test").expect("name"), "a.test"),
        (ServerName::try_from("b.test").expect("name"), "b.test"),
        (ServerName::try_from("x.b.test").expect("name"), "b.test"),
        (no_sni(), "b.test"),
    ] {
        let stream = connect(tls_addr(&env), name.clone(), config.clone())
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        let peer = &stream.get_ref().1.peer_certificates().expect("certs")[0];
        assert!(
            dns_names(peer).contains(&expected.to_owned()),
            "{name:?} got {:?}",
            dns_names(peer)
        );
    }
}

// ---- timeouts ----

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_disconnected() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "    handshake_timeout: 100ms\n").await;
    let mut tcp = TcpStream::connect(tls_addr(&env)).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(BOUND, tcp.read(&mut buf))
        .await
        .expect("closed within bound");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let env = TestEnv::start_with(|config| config + "limits:\n  body_read_timeout: 100ms\n").await;
    let mut tcp = TcpStream::connect(env.gateway.http_addr.expect("http"))
        .await
        .expect("connect");
    tcp.write_all(
        b"POST /v1/policies/propose HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"policyName\"",
    )
    .await
    .expect("send");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, tcp.read(&mut answer))
        .await
        .expect("answered within bound")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("\"code\":4"), "{text}");
    assert!(text.contains("request body not received within"), "{text}");
}
