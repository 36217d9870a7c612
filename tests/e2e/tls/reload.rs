//! Certificate reload, and startup/config errors for TLS files and keys.

use super::*;

// ---- reload ----

#[tokio::test]
async fn reloads_changed_certificates_without_dropping_open_connections() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let v1 = pki.leaf("v1", &["localhost"]);
    let (cert, key) = write_leaf(&dir, "server", &v1);
    let tls = format!(
        "    certificates:\n{}    reload_interval: 20ms\n",
        cert_entry(&cert, &key, &[])
    );
    let env = TestEnv::start_with(|config| with_tls(config, &tls)).await;
    let tls_state = env.gateway.tls.clone().expect("tls state");
    let mut stats = tls_state.reload_stats();
    let client = default_client(&pki, &[b"http/1.1"]);

    let stream = connect(tls_addr(&env), localhost(), client.clone())
        .await
        .expect("handshake");
    assert_eq!(
        stream.get_ref().1.peer_certificates().expect("certs")[0],
        v1.der
    );
    let mut open = Conn::open(stream).await.expect("connection");
    let (status, _, _) = open.get("/v1/policies", &[]).await.expect("response");
    assert_eq!(status, StatusCode::OK);

    let v2 = pki.leaf("v2", &["localhost"]);
    write_leaf(&dir, "server", &v2);
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.applied >= 1))
        .await
        .expect("reload within bound")
        .expect("stats");
    let stream = connect(tls_addr(&env), localhost(), client.clone())
        .await
        .expect("handshake");
    assert_eq!(
        stream.get_ref().1.peer_certificates().expect("certs")[0],
        v2.der
    );
    let (status, _, _) = open.get("/v1/policies", &[]).await.expect("old connection");
    assert_eq!(status, StatusCode::OK);

    // A broken key: the reload is refused and v2 stays in service.
    let failed = stats.borrow().failed;
    dir.write("server-key.pem", "-----BEGIN PRIVATE KEY-----\nbroken\n");
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.failed > failed))
        .await
        .expect("reload attempt within bound")
        .expect("stats");
    let stream = connect(tls_addr(&env), localhost(), client)
        .await
        .expect("handshake after a failed reload");
    assert_eq!(
        stream.get_ref().1.peer_certificates().expect("certs")[0],
        v2.der
    );
    let (status, _, _) = open.get("/v1/policies", &[]).await.expect("old connection");
    assert_eq!(status, StatusCode::OK);
}

// ---- startup errors ----

async fn start_error(tls: &str) -> String {
    let stubs = start_stubs().await;
    let dir = TempDir::new();
    let text = with_tls(default_config(&stubs), tls);
    let path = dir.write("gateway.yaml", &text);
    let config = Config::parse(&path, &text).expect("config");
    let runtime = Runtime::build(config).expect("runtime");
    match ServerHandle::start(runtime).await {
        Ok(_) => panic!("started with {tls}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_missing_or_broken_certificate_file_is_a_startup_error_naming_it() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let (cert, key) = write_leaf(&dir, "server", &pki.leaf("s", &["localhost"]));
    let missing = dir.path().join("nope.pem");
    let error = start_error(&format!(
        "    certificates:\n{}",
        cert_entry(&missing, &key, &[])
    ))
    .await;
    assert!(error.contains(&missing.display().to_string()), "{error}");

    let garbage = dir.write("garbage.pem", "not PEM at all\n");
    let error = start_error(&format!(
        "    certificates:\n{}",
        cert_entry(&cert, &garbage, &[])
    ))
    .await;
    assert!(error.contains(&garbage.display().to_string()), "{error}");

    let (_, other_key) = write_leaf(&dir, "other", &pki.leaf("o", &["other"]));
    let error = start_error(&format!(
        "    certificates:\n{}",
        cert_entry(&cert, &other_key, &[])
    ))
    .await;
    assert!(error.contains("does not fit"), "{error}");
}

#[test]
fn tls_config_errors_carry_their_line() {
    let text = "listeners:\n  tls:\n    address: 127.0.0.1:0\n    certificates:\n      - cert: a.pem\n        key: a-key.pem\n        server_names: [a.test]\n    default_certificate: b.test\n    client_auth:\n      ca: ca.pem\n      mode: sometimes\ndescriptors:\n  proto_dirs: [proto]\nupstreams:\n  u:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: u\n";
    let errors = Config::parse(Path::new("gateway.yaml"), text)
        .expect_err("invalid")
        .0;
    let found: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e.place.line, e.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (8, "listeners.tls.default_certificate"),
            (11, "listeners.tls.client_auth.mode")
        ]
    );
}
