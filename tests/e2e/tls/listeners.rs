//! Several listeners in one gateway: a cleartext one, a public HTTPS one without client
//! certificates, and a partner HTTPS one that requires mTLS with its own CA and serves one route.

use super::metrics::wait_for_metrics;
use super::*;

/// The coordinator route's answer for `/v1/agents/a1/actions/x9` (the stub's pending action).
const ACTION: &str = r#"{"id":"agents/a1/actions/x9","status":"pending","policyId":""}"#;

/// A gateway with the listeners `plain`, `public` and `partner` (mTLS with `partner_ca`,
/// only `tai.Coordinator`), all with the server certificate of `pki`.
async fn three_listeners(pki: &Pki, partner_ca: &Pki, dir: &TempDir) -> TestEnv {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"]);
    let (cert, key) = write_leaf(dir, "server", &leaf);
    let ca = dir.write("partner-ca.pem", &partner_ca.ca_pem());
    let certificates = format!("      certificates:\n{}", cert_entry(&cert, &key, &[]))
        .replace("\n      ", "\n        ");
    let listeners = format!(
        "listeners:\n  - name: plain\n    address: 127.0.0.1:0\n\
         \x20 - name: public\n    address: 127.0.0.1:0\n    tls:\n{certificates}\
         \x20 - name: partner\n    address: 127.0.0.1:0\n    tls:\n{certificates}\
         \x20     client_auth:\n        ca: {}\n        mode: required\n\
         \x20   routes: [tai.Coordinator]\n",
        ca.display()
    );
    let stubs = start_stubs().await;
    let config = default_config(&stubs).replacen(
        "listeners:\n  http:\n    address: 127.0.0.1:0\n",
        &listeners,
        1,
    );
    TestEnv::start_on(stubs, &config).await
}

#[tokio::test]
async fn a_partner_listener_requires_its_own_client_certificates_and_serves_only_its_routes() {
    let (pki, partner_pki, dir) = (Pki::new(), Pki::new(), TempDir::new());
    let env = three_listeners(&pki, &partner_pki, &dir).await;
    let names: Vec<&str> = env
        .gateway
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["plain", "public", "partner"]);
    let (public, partner) = (env.listener_addr("public"), env.listener_addr("partner"));
    let partner_client = partner_pki.leaf("partner", &["partner.test"]);
    let with_partner_cert = || {
        client_config(
            pki.roots(),
            &[b"h2"],
            rustls::ALL_VERSIONS,
            Some(&partner_client),
        )
    };

    // The partner listener: refused at the handshake without a certificate, or with one from
    // the public CA; with a partner certificate, its route is served and the other is a 404.
    let refused = https_get(partner, default_client(&pki, &[b"h2"]), "/v1/policies", &[]).await;
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    let other = pki.leaf("stranger", &["stranger.test"]);
    let foreign = client_config(pki.roots(), &[b"h2"], rustls::ALL_VERSIONS, Some(&other));
    let refused = https_get(partner, foreign, "/v1/agents/a1/actions/x9", &[]).await;
    assert!(
        refused.is_err(),
        "served with another CA's certificate: {refused:?}"
    );
    let (status, body) = https_get(
        partner,
        with_partner_cert(),
        "/v1/agents/a1/actions/x9",
        &[],
    )
    .await
    .expect("partner request");
    assert_eq!((status, body.as_str()), (StatusCode::OK, ACTION));
    let (status, body) = https_get(partner, with_partner_cert(), "/v1/policies", &[])
        .await
        .expect("partner request");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        r#"{"code":5,"message":"no route for /v1/policies","details":[]}"#
    );

    // The public HTTPS listener asks for no certificate and serves every route.
    let anonymous = || default_client(&pki, &[b"http/1.1"]);
    let (status, body) = https_get(public, anonymous(), "/v1/agents/a1/actions/x9", &[])
        .await
        .expect("public request");
    assert_eq!((status, body.as_str()), (StatusCode::OK, ACTION));
    let (status, _) = https_get(public, anonymous(), "/v1/policies", &[])
        .await
        .expect("public request");
    assert_eq!(status, StatusCode::OK);

    // The cleartext listener serves every route too.
    let reply = env.get("/v1/agents/a1/actions/x9").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, ACTION)
    );
    assert_eq!(env.get("/v1/policies").await.status, StatusCode::OK);

    // Handshakes are counted under each listener's name.
    wait_for_metrics(
        &env,
        &[
            "tai_gateway_tls_handshakes_total{listener=\"partner\",result=\"failed\"} 2",
            "tai_gateway_tls_handshakes_total{listener=\"partner\",result=\"ok\"} 2",
            "tai_gateway_tls_handshakes_total{listener=\"public\",result=\"ok\"} 2",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_grpc_call_to_a_route_the_listener_does_not_serve_is_unimplemented() {
    let (pki, partner_pki, dir) = (Pki::new(), Pki::new(), TempDir::new());
    let env = three_listeners(&pki, &partner_pki, &dir).await;
    let partner = env.listener_addr("partner");
    let client = partner_pki.leaf("partner", &["partner.test"]);
    let config = client_config(pki.roots(), &[b"h2"], rustls::ALL_VERSIONS, Some(&client));
    let stream = connect(partner, localhost(), config)
        .await
        .expect("handshake");
    let io = TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("h2");
    tokio::spawn(conn);
    let request = Request::post("https://localhost/tai.Governor/ListPolicies")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("request");
    let response = tokio::time::timeout(BOUND, sender.send_request(request))
        .await
        .expect("answer within bound")
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"12"[..])
    );
}

#[tokio::test]
async fn a_listener_serving_some_routes_publishes_an_openapi_document_of_those_only() {
    let (pki, partner_pki, dir) = (Pki::new(), Pki::new(), TempDir::new());
    let env = three_listeners(&pki, &partner_pki, &dir).await;
    let partner = env.listener_addr("partner");
    let client = partner_pki.leaf("partner", &["partner.test"]);
    let config = client_config(pki.roots(), &[b"h2"], rustls::ALL_VERSIONS, Some(&client));
    let (status, body) = https_get(partner, config, "/openapi.json", &[])
        .await
        .expect("partner document");
    assert_eq!(status, StatusCode::OK, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).expect("json");
    let paths: Vec<&str> = document["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    // The coordinator's two bindings (`GET /v1/{name=agents/*/actions/*}` is `/v1/{name}`).
    assert_eq!(paths, ["/v1/actions", "/v1/{name}"]);
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tags, ["tai.Coordinator"]);

    // Every other listener publishes every route.
    let everything = env.get("/openapi.json").await.json();
    let paths = everything["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/v1/policies"), "{:?}", paths.keys());
    assert!(paths.contains_key("/v1/actions"), "{:?}", paths.keys());
}

#[tokio::test]
async fn a_listener_answers_405_only_with_the_methods_of_its_own_routes() {
    let stubs = start_stubs().await;
    let config = crate::harness::two_listeners_config(&stubs, "tai.Coordinator");
    let env = TestEnv::start_on(stubs, &config).await;
    let client = crate::harness::http1_client();
    let ask = |listener: &str, method: http::Method, path: &str| {
        let url = format!("http://{}{path}", env.listener_addr(listener));
        let client = client.clone();
        async move { crate::harness::send_with(&client, method, &url, &[], None).await }
    };
    // Governor's methods at /v1/policies/{id} are GET, DELETE and PATCH.
    let on_all = ask("all", http::Method::PUT, "/v1/policies/p1").await;
    assert_eq!(
        on_all.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        on_all.body
    );
    assert_eq!(on_all.header("allow"), Some("DELETE, GET, PATCH"));
    // The partner listener serves none of them: the path does not exist there.
    let on_partner = ask("partner", http::Method::PUT, "/v1/policies/p1").await;
    assert_eq!(
        on_partner.status,
        StatusCode::NOT_FOUND,
        "{}",
        on_partner.body
    );
    assert_eq!(on_partner.header("allow"), None);
    // Its own route's path still gets its 405 and Allow.
    let own = ask("partner", http::Method::GET, "/v1/actions").await;
    assert_eq!(own.status, StatusCode::METHOD_NOT_ALLOWED, "{}", own.body);
    assert_eq!(own.header("allow"), Some("POST"));
    // Each listener's requests are their own series.
    let metrics = crate::admin::admin_get(&env, "/metrics").await.body;
    for line in [
        r#"tai_gateway_requests_total{route="unmatched",response_code="405",grpc_response_status="12",listener="all"} 1"#,
        r#"tai_gateway_requests_total{route="unmatched",response_code="404",grpc_response_status="5",listener="partner"} 1"#,
        r#"tai_gateway_requests_total{route="unmatched",response_code="405",grpc_response_status="12",listener="partner"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}
