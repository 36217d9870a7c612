//! Mutual TLS, and the client identity headers a backend receives.

use super::*;

// ---- mutual TLS ----

#[tokio::test]
async fn required_mtls_accepts_a_client_certificate_and_refuses_none() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let extra = format!(
        "    client_auth:\n      ca: {}\n      mode: required\n",
        ca.display()
    );
    let env = start_simple(&pki, &dir, &extra).await;
    let alice = pki.leaf("alice", &["alice.test"]);
    let with_cert = client_config(
        pki.roots(),
        &[b"http/1.1"],
        rustls::ALL_VERSIONS,
        Some(&alice),
    );
    let (status, body) = https_get(tls_addr(&env), with_cert, "/v1/policies", &[])
        .await
        .expect("served with a client certificate");
    assert_eq!(status, StatusCode::OK, "{body}");

    let refused = https_get(
        tls_addr(&env),
        default_client(&pki, &[b"http/1.1"]),
        "/v1/policies",
        &[],
    )
    .await;
    assert!(refused.is_err(), "served without a client certificate");

    // A certificate from another CA is refused too.
    let other = Pki::new().leaf("mallory", &["mallory.test"]);
    let foreign = client_config(
        pki.roots(),
        &[b"http/1.1"],
        rustls::ALL_VERSIONS,
        Some(&other),
    );
    let refused = https_get(tls_addr(&env), foreign, "/v1/policies", &[]).await;
    assert!(refused.is_err(), "served with a foreign client certificate");
}

/// A gRPC backend that records each request's headers and answers NOT_FOUND.
async fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    record.lock().expect("lock").push(req.headers().clone());
                    async move {
                        let response = Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", "5")
                            .header("grpc-message", "recorded")
                            .body(Empty::<Bytes>::new())
                            .expect("response");
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn verified_client_identity_reaches_the_backend_and_forged_headers_never_do() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let leaf = pki.leaf("localhost", &["localhost"]);
    let (cert, key) = write_leaf(&dir, "server", &leaf);
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let (backend, seen) = recording_backend().await;
    let stubs = start_stubs().await;
    let config = default_config(&stubs)
        .replace(&stubs.governor_addr.to_string(), &backend.to_string())
        .replace("x-stub-*]", "x-stub-*, x-client-cert-*]");
    let tls = format!(
        "    certificates:\n{}    client_auth:\n      ca: {}\n      mode: optional\n",
        cert_entry(&cert, &key, &[]),
        ca.display()
    );
    let env = TestEnv::start_on(stubs, &with_tls(config, &tls)).await;
    let forged = [
        ("x-client-cert-subject", "CN=admin"),
        ("x-client-cert-san", "DNS:admin.test"),
    ];
    let alice = pki.leaf("alice", &["alice.test", "10.9.8.7"]);
    let with_cert = client_config(pki.roots(), &[b"h2"], rustls::ALL_VERSIONS, Some(&alice));
    let anonymous = default_client(&pki, &[b"http/1.1"]);

    let (status, _) = https_get(tls_addr(&env), with_cert, "/v1/policies/p1", &forged)
        .await
        .expect("mTLS request");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = https_get(tls_addr(&env), anonymous, "/v1/policies/p1", &forged)
        .await
        .expect("anonymous TLS request");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let plain = env
        .send(http::Method::GET, "/v1/policies/p1", &forged, None)
        .await;
    assert_eq!(plain.status, StatusCode::NOT_FOUND);

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3);
    let values = |headers: &HeaderMap, name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("text").to_owned())
            .collect()
    };
    assert_eq!(values(&seen[0], "x-client-cert-subject"), ["CN=alice"]);
    assert_eq!(
        values(&seen[0], "x-client-cert-san"),
        ["DNS:alice.test, IP:10.9.8.7"]
    );
    for headers in &seen[1..] {
        assert!(values(headers, "x-client-cert-subject").is_empty());
        assert!(values(headers, "x-client-cert-san").is_empty());
    }
}
