//! CORS on every route kind (issue 17): preflights answered by the gateway before rate limits
//! and authentication, with the methods that exist at the path; the grant on actual responses,
//! errors included; per-route policies replacing the top-level one; bad origins and paths.

use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};

use crate::auth::key_path;
use crate::harness::{Reply, TestEnv, proto_dir, start_stubs};

/// Reads of `/v1/policies/{id}` on one route (a limit of one request an hour), writes of the
/// same path on another (a token required), Echo on a route with its own policy.
fn config(stubs: &tai_stubs::StubServers) -> String {
    format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: {gov}
routes:
  - name: read
    methods: [tai.Governor/GetPolicy]
    upstream: governor
    rate_limits: [tight]
  - name: write
    methods: [tai.Governor/RevokePolicy, tai.Governor/UpdatePolicy]
    upstream: governor
    auth: {{ mode: required }}
  - name: partner
    methods: [tai.Governor/Echo]
    upstream: governor
    cors:
      allow_origins: ["https://*.partner.example"]
      allow_credentials: true
      max_age: 1m
cors:
  allow_origins: ["http://localhost:3000"]
rate_limits:
  limits:
    tight: {{ rate: 1/h, burst: 1, key: ip }}
auth:
  providers:
    ed:
      issuer: https://issuer.test
      audiences: [gateway-tests]
      algorithms: [EdDSA]
      pem_file: "{ed}"
      kid: ed-1
"#,
        proto = proto_dir().display(),
        gov = stubs.governor_addr,
        ed = key_path("ed_public.pem"),
    )
}

async fn start() -> TestEnv {
    let stubs = start_stubs().await;
    let text = config(&stubs);
    TestEnv::start_on(stubs, &text).await
}

async fn preflight(env: &TestEnv, path: &str, origin: &str, method: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", method),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    env.send(Method::OPTIONS, path, &headers, None).await
}

fn vary(reply: &Reply) -> String {
    reply
        .headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn a_preflight_lists_the_methods_at_the_path_and_passes_before_auth_and_rate_limits() {
    let env = start().await;
    // The read route allows one request an hour and the write route wants a token: preflights
    // carry neither and are answered anyway, every time.
    for _ in 0..3 {
        let reply = preflight(&env, "/v1/policies/p1", "http://localhost:3000", "DELETE").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("http://localhost:3000")
        );
        assert_eq!(
            reply.header("access-control-allow-methods"),
            Some("DELETE, GET, PATCH, OPTIONS")
        );
        let allowed = reply
            .header("access-control-allow-headers")
            .expect("allowed headers");
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert_eq!(reply.header("access-control-max-age"), Some("600"));
        assert_eq!(reply.header("access-control-allow-credentials"), None);
        assert_eq!(
            vary(&reply),
            "origin, access-control-request-method, access-control-request-headers"
        );
        assert!(reply.body.is_empty());
    }
    // The budget of the read route is untouched.
    assert_eq!(
        env.get("/v1/policies/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn actual_answers_errors_included_carry_the_grant_for_allowed_origins_only() {
    let env = start().await;
    let from = |origin: &'static str| [("origin", origin)];
    // A backend error (404) and a gateway error (401: no token) both carry the grant.
    let missing = env
        .send(
            Method::GET,
            "/v1/policies/nope",
            &from("http://localhost:3000"),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    let exposed = missing
        .header("access-control-expose-headers")
        .expect("exposed");
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
    assert_eq!(vary(&missing), "origin");
    assert_eq!(missing.json()["code"], 5);
    let unauthenticated = env
        .send(
            Method::DELETE,
            "/v1/policies/p1",
            &from("http://localhost:3000"),
            None,
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unauthenticated.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    // Another origin: the same answer without a grant (but still `Vary: Origin` for caches).
    let other = env
        .send(
            Method::DELETE,
            "/v1/policies/p1",
            &from("https://evil.example"),
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("access-control-expose-headers"), None);
    assert_eq!(vary(&other), "origin");
}

#[tokio::test]
async fn a_route_with_its_own_policy_replaces_the_top_level_one() {
    let env = start().await;
    let partner = preflight(&env, "/v1/echo", "https://app.partner.example", "POST").await;
    assert_eq!(partner.status, StatusCode::NO_CONTENT, "{}", partner.body);
    assert_eq!(
        partner.header("access-control-allow-origin"),
        Some("https://app.partner.example")
    );
    assert_eq!(
        partner.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        partner.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert_eq!(partner.header("access-control-max-age"), Some("60"));
    // The top-level origin is not in the partner route's policy.
    let local = preflight(&env, "/v1/echo", "http://localhost:3000", "POST").await;
    assert_eq!(local.status, StatusCode::FORBIDDEN);
    assert_eq!(local.header("access-control-allow-origin"), None);
    assert_eq!(local.json()["code"], 7);
    let answer = env
        .send(
            Method::GET,
            "/v1/echo/hi",
            &[("origin", "https://a.b.partner.example")],
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://a.b.partner.example")
    );
    assert_eq!(
        answer.header("access-control-allow-credentials"),
        Some("true")
    );
}

#[tokio::test]
async fn bad_preflights_get_a_json_error_and_no_grant() {
    let env = start().await;
    let cases = [
        // A path no route serves.
        (
            "/v1/nowhere",
            "http://localhost:3000",
            StatusCode::NOT_FOUND,
            5,
        ),
        // Origins that are not origin serializations.
        (
            "/v1/policies/p1",
            "localhost:3000",
            StatusCode::BAD_REQUEST,
            3,
        ),
        (
            "/v1/policies/p1",
            "http://localhost:3000/app",
            StatusCode::BAD_REQUEST,
            3,
        ),
        // An origin the policy does not list.
        (
            "/v1/policies/p1",
            "http://localhost:3001",
            StatusCode::FORBIDDEN,
            7,
        ),
    ];
    for (path, origin, status, code) in cases {
        let reply = preflight(&env, path, origin, "GET").await;
        assert_eq!(reply.status, status, "{path} {origin}: {}", reply.body);
        assert_eq!(reply.json()["code"], code, "{path} {origin}");
        assert_eq!(reply.header("access-control-allow-origin"), None);
        assert_eq!(reply.header("access-control-allow-methods"), None);
    }
    let malformed = preflight(&env, "/v1/policies/p1", "localhost:3000", "GET").await;
    assert!(
        malformed.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("malformed Origin header `localhost:3000`")),
        "{}",
        malformed.body
    );
    // OPTIONS that is not a preflight (no Access-Control-Request-Method) is an ordinary request.
    let plain = env
        .send(
            Method::OPTIONS,
            "/v1/policies/p1",
            &[("origin", "http://localhost:3000")],
            None,
        )
        .await;
    assert_eq!(plain.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(plain.header("allow"), Some("DELETE, GET, PATCH"));
}

#[tokio::test]
async fn credentials_with_any_origin_are_refused_at_load_with_the_line() {
    let dir = crate::harness::TempDir::new();
    let stubs = start_stubs().await;
    let text = config(&stubs).replace(
        "cors:\n  allow_origins: [\"http://localhost:3000\"]\n",
        "cors:\n  allow_origins: [\"*\"]\n  allow_credentials: true\n",
    );
    let path = dir.write("gateway.yaml", &text);
    let line = text
        .lines()
        .position(|l| l == "  allow_credentials: true")
        .map(|i| i + 1)
        .expect("the line");
    let error = tai_gateway::config::Config::load(&path)
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains(&format!("gateway.yaml:{line}:"))
            && error.contains("cors.allow_credentials")
            && error.contains("`*`"),
        "{error}"
    );
}

/// A web app's origin: a free port serving whatever page is set, to every request.
async fn serve_page() -> (std::net::SocketAddr, Arc<Mutex<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let page = Arc::new(Mutex::new(String::new()));
    let shared = page.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = shared.lock().expect("page").clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, page)
}

/// What the page at `page` shows once its script ran, as headless Chromium renders it.
async fn browse(page: std::net::SocketAddr) -> String {
    let dump = vec!["--dump-dom".to_owned()];
    crate::harness::chromium(format!("http://{page}/"), 10_000, dump).await
}

/// A page whose script sends a DELETE with an `Authorization` header to the gateway (so the
/// browser sends a preflight first) and shows what it could read of the answer.
fn calling_page(gateway: std::net::SocketAddr) -> String {
    format!(
        r#"<html><body><pre id="out">pending</pre><script>
fetch("http://{gateway}/v1/policies/p1", {{method: "DELETE",
  headers: {{"Authorization": "Bearer not-a-token", "Content-Type": "application/json"}}}})
  .then(r => r.json().then(j => {{ document.getElementById("out").textContent = "status " + r.status + " code " + j.code; }}))
  .catch(e => {{ document.getElementById("out").textContent = "blocked " + e.name; }});
</script></body></html>"#
    )
}

#[tokio::test]
async fn a_real_browser_reads_a_cross_origin_answer_only_when_its_origin_is_allowed() {
    let stubs = start_stubs().await;
    let (allowed, allowed_page) = serve_page().await;
    let (other, other_page) = serve_page().await;
    let text = config(&stubs).replace("http://localhost:3000", &format!("http://{allowed}"));
    let env = TestEnv::start_on(stubs, &text).await;
    let gateway = env.gateway.http_addr.expect("http listener");
    *allowed_page.lock().expect("page") = calling_page(gateway);
    *other_page.lock().expect("page") = calling_page(gateway);
    // Preflight granted, then the 401 (the token is not one) readable by the script: errors
    // carry the grant too.
    let shown = browse(allowed).await;
    assert!(shown.contains("status 401 code 16"), "{shown}");
    // Another origin: the browser refuses to hand the script anything.
    let shown = browse(other).await;
    assert!(shown.contains("blocked TypeError"), "{shown}");
}
