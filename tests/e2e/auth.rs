//! JWT authentication end to end: tokens minted here with real keys (tests/e2e/keys/), a real
//! gateway, real stubs; every refusal with its exact status, challenge and body, and never a
//! backend call for a refused request.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::harness::{Reply, TestEnv, proto_dir, start_stubs};

const HS_SECRET: &str = "a-shared-secret-of-at-least-32-bytes!!";

pub(crate) fn key_path(name: &str) -> String {
    format!("{}/tests/e2e/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).expect("read test key")
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Claims every provider here accepts, with the required scope.
pub(crate) fn claims() -> Value {
    json!({
        "iss": "https://issuer.test",
        "aud": "gateway-tests",
        "sub": "alice",
        "tenant": "acme",
        "scope": "policy:read policy:write",
        "exp": now() + 600,
    })
}

fn sign(header: Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn ed_header() -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed-1".to_owned());
    header
}

fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(&pem("ed_private.pem")).expect("ed key")
}

/// A token from the `ed` provider with these claims.
pub(crate) fn ed_token(claims: &Value) -> String {
    sign(ed_header(), claims, &ed_key())
}

/// Providers `ed` (EdDSA, kid ed-1), `ec` (ES256), `rsa` (RS256/PS256), `hs` (HS256, shared secret);
/// `/v1/echo` requires a token with scope policy:write; GetPolicy takes an optional one.
pub(crate) fn config(stubs: &tai_stubs::StubServers, extra_providers: &str) -> String {
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
  - name: echo
    methods: [tai.Governor/Echo]
    upstream: governor
    auth:
      mode: required
      require_scopes: [policy:write]
      require_claims: {{ tenant: acme }}
  - name: read
    methods: [tai.Governor/GetPolicy]
    upstream: governor
    auth: {{ mode: optional }}
headers:
  request_to_metadata: [x-tenant-id, x-jwt-*, authorization]
auth:
  providers:
    ed:
      issuer: https://issuer.test
      audiences: [gateway-tests]
      algorithms: [EdDSA]
      pem_file: "{ed}"
      kid: ed-1
      claims_to_metadata: {{ sub: x-jwt-sub, tenant: x-jwt-tenant }}
      payload_to_metadata: x-jwt-payload
    ec:
      issuer: ec-issuer
      algorithms: [ES256]
      pem_file: "{ec}"
    rsa:
      issuer: rsa-issuer
      algorithms: [RS256, PS256]
      pem_file: "{rsa}"
    hs:
      issuer: hs-issuer
      algorithms: [HS256]
      shared_secret: "{HS_SECRET}"
{extra_providers}"#,
        proto = proto_dir().display(),
        gov = stubs.governor_addr,
        ed = key_path("ed_public.pem"),
        ec = key_path("ec_public.pem"),
        rsa = key_path("rsa_public.pem"),
    )
}

pub(crate) async fn start() -> TestEnv {
    let stubs = start_stubs().await;
    let config = config(&stubs, "");
    TestEnv::start_on(stubs, &config).await
}

pub(crate) async fn echo(env: &TestEnv, token: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    headers.extend_from_slice(extra);
    env.send(
        Method::POST,
        "/v1/echo",
        &headers,
        Some(r#"{"stringValue":"hi"}"#),
    )
    .await
}

pub(crate) fn assert_invalid(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="tai-gateway", error="invalid_token""#)
    );
    let message = serde_json::to_string(&format!("invalid token: {reason}")).expect("json");
    assert_eq!(
        reply.body,
        format!(r#"{{"code":16,"message":{message},"details":[]}}"#)
    );
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn valid_token_reaches_the_backend_with_verified_claims_only() {
    let env = start().await;
    let token = ed_token(&claims());
    let forged = [
        ("x-jwt-sub", "mallory"),
        ("x-jwt-payload", "forged"),
        ("x-tenant-id", "t1"),
    ];
    let reply = echo(&env, Some(&token), &forged).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let metadata = &reply.json()["receivedMetadata"];
    assert_eq!(metadata["x-jwt-sub"], "alice");
    assert_eq!(metadata["x-jwt-tenant"], "acme");
    assert_eq!(metadata["x-tenant-id"], "t1");
    let payload = token.split('.').nth(1).expect("payload");
    assert_eq!(metadata["x-jwt-payload"], payload);
    assert!(
        metadata.get("authorization").is_none(),
        "authorization is stripped unless forward_authorization: {metadata}"
    );
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 1);
}

#[tokio::test]
async fn missing_token_is_a_401_with_the_realm_challenge_and_no_backend_call() {
    let env = start().await;
    let reply = echo(&env, None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="tai-gateway""#)
    );
    assert_eq!(
        reply.body,
        r#"{"code":16,"message":"missing bearer token","details":[]}"#
    );
    let basic = echo(&env, None, &[("authorization", "Basic YWxpY2U6cHc=")]).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 0);
}

#[tokio::test]
async fn every_invalid_token_is_a_401_invalid_token_with_its_reason() {
    let env = start().await;
    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    let mut future = claims();
    future["nbf"] = json!(now() + 600);
    let mut wrong_issuer = claims();
    wrong_issuer["iss"] = json!("https://evil.test");
    let mut wrong_type = claims();
    wrong_type["exp"] = json!("tomorrow");
    let mut unknown_kid = ed_header();
    unknown_kid.kid = Some("nope".to_owned());
    let other_key = EncodingKey::from_ed_pem(&pem("other_ed_private.pem")).expect("key");
    // HS256 "signed" with the RSA provider's public key: the classic key-confusion attack.
    let mut confused = claims();
    confused["iss"] = json!("rsa-issuer");
    let confusion = sign(
        Header::new(Algorithm::HS256),
        &confused,
        &EncodingKey::from_secret(&pem("rsa_public.pem")).expect("hmac key"),
    );
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    let good = ed_token(&claims());
    let (good_head, rest) = good.split_once('.').expect("token");
    let crit = format!(
        "{}.{rest}",
        b64(&json!({"alg": "EdDSA", "kid": "ed-1", "crit": ["exp-v2"], "exp-v2": 1}))
    );
    let cases = [
        (none, "unsupported algorithm `none`"),
        (sign(ed_header(), &claims(), &other_key), "bad signature"),
        (confusion, "algorithm HS256 is not allowed"),
        (ed_token(&expired), "token expired"),
        (ed_token(&future), "token not yet valid (nbf)"),
        (ed_token(&wrong_issuer), "untrusted issuer"),
        (sign(unknown_kid, &claims(), &ed_key()), "unknown key id"),
        (
            format!("{good_head}.!!!.sig"),
            "malformed base64url in the payload",
        ),
        (
            "not-a-jwt".to_owned(),
            "not a compact JWS (three dot-separated parts)",
        ),
        (ed_token(&wrong_type), "claim `exp` has the wrong type"),
        (crit, "unsupported critical header parameters (`crit`)"),
        ("a".repeat(9000), "token longer than 8192 bytes"),
    ];
    for (token, reason) in cases {
        let reply = echo(&env, Some(&token), &[]).await;
        assert_invalid(&reply, reason);
    }
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 0);
}

#[tokio::test]
async fn expiry_within_the_clock_skew_is_accepted() {
    let env = start().await;
    let mut recent = claims();
    recent["exp"] = json!(now() - 20);
    let reply = echo(&env, Some(&ed_token(&recent)), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn embedded_jku_and_jwk_headers_are_never_fetched_nor_trusted() {
    let env = start().await;
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let other_key = EncodingKey::from_ed_pem(&pem("other_ed_private.pem")).expect("key");
    let mut header = Header::new(Algorithm::EdDSA);
    header.jku = Some(format!(
        "http://{}/jwks.json",
        trap.local_addr().expect("addr")
    ));
    header.x5u = Some(format!(
        "http://{}/cert.pem",
        trap.local_addr().expect("addr")
    ));
    let reply = echo(&env, Some(&sign(header, &claims(), &other_key)), &[]).await;
    assert_invalid(&reply, "bad signature");
    assert_eq!(
        trap.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "no connection to the embedded URLs"
    );
}

#[tokio::test]
async fn a_valid_token_without_the_scope_or_audience_is_a_403() {
    let env = start().await;
    let mut no_scope = claims();
    no_scope["scope"] = json!("policy:read");
    let reply = echo(&env, Some(&ed_token(&no_scope)), &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="tai-gateway", error="insufficient_scope""#)
    );
    assert_eq!(
        reply.body,
        r#"{"code":7,"message":"permission denied: missing scope `policy:write`","details":[]}"#
    );
    let mut other_tenant = claims();
    other_tenant["tenant"] = json!("globex");
    let reply = echo(&env, Some(&ed_token(&other_tenant)), &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body,
        r#"{"code":7,"message":"permission denied: claim `tenant` does not match","details":[]}"#
    );
    let mut other_audience = claims();
    other_audience["aud"] = json!(["someone-else"]);
    let reply = echo(&env, Some(&ed_token(&other_audience)), &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body,
        r#"{"code":7,"message":"permission denied: token audience not accepted","details":[]}"#
    );
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 0);
}

#[tokio::test]
async fn rsa_pss_ec_and_hmac_tokens_verify_with_their_configured_keys() {
    let env = start().await;
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).expect("rsa");
    let ec = EncodingKey::from_ec_pem(&pem("ec_private.pem")).expect("ec");
    let with_iss = |iss: &str| {
        let mut c = claims();
        c["iss"] = json!(iss);
        c
    };
    let tokens = [
        sign(Header::new(Algorithm::RS256), &with_iss("rsa-issuer"), &rsa),
        sign(Header::new(Algorithm::PS256), &with_iss("rsa-issuer"), &rsa),
        sign(Header::new(Algorithm::ES256), &with_iss("ec-issuer"), &ec),
        sign(
            Header::new(Algorithm::HS256),
            &with_iss("hs-issuer"),
            &EncodingKey::from_secret(HS_SECRET.as_bytes()).expect("hmac key"),
        ),
    ];
    for token in tokens {
        let reply = echo(&env, Some(&token), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // RS512 is not in the rsa provider's list even though its key could check it.
    let rs512 = sign(Header::new(Algorithm::RS512), &with_iss("rsa-issuer"), &rsa);
    assert_invalid(
        &echo(&env, Some(&rs512), &[]).await,
        "algorithm RS512 is not allowed",
    );
}

#[tokio::test]
async fn optional_auth_lets_anonymous_requests_through_but_not_bad_tokens() {
    let env = start().await;
    let anonymous = env.get("/v1/policies/p1").await;
    assert_ne!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    let bad = env
        .send(
            Method::GET,
            "/v1/policies/p1",
            &[("authorization", "Bearer x.y.z")],
            None,
        )
        .await;
    assert_invalid(&bad, "malformed base64url in the header");
}

#[tokio::test]
async fn the_query_parameter_is_not_a_token_source_unless_enabled() {
    let env = start().await;
    let token = ed_token(&claims());
    let reply = env
        .send(
            Method::POST,
            &format!("/v1/echo?access_token={token}"),
            &[("content-type", "application/json")],
            Some("{}"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="tai-gateway""#)
    );
}

/// A JWKS server on 127.0.0.1:0 whose answer the test changes, counting requests.
pub(crate) struct JwksServer {
    pub(crate) url: String,
    answer: Arc<Mutex<(u16, String)>>,
    pub(crate) hits: Arc<AtomicU64>,
}

impl JwksServer {
    pub(crate) async fn start(body: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new((200, body)));
        let hits = Arc::new(AtomicU64::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (a, h) = (a.clone(), h.clone());
                let service = service_fn(move |_req| {
                    h.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = a.lock().expect("lock").clone();
                    let mut rsp = Response::new(Full::new(Bytes::from(body)));
                    *rsp.status_mut() = StatusCode::from_u16(status).expect("status");
                    async move { Ok::<_, Infallible>(rsp) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        JwksServer { url, answer, hits }
    }

    pub(crate) fn set(&self, status: u16, body: String) {
        *self.answer.lock().expect("lock") = (status, body);
    }
}

/// A JWKS with the test Ed25519 public key under each of `kids`.
pub(crate) fn jwks(kids: &[&str]) -> String {
    let text = String::from_utf8(pem("ed_public.pem")).expect("pem");
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("der");
    let x = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let keys: Vec<Value> = kids
        .iter()
        .map(|kid| json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig"}))
        .collect();
    json!({ "keys": keys }).to_string()
}

pub(crate) fn kid_token(kid: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let mut c = claims();
    c["iss"] = json!("remote-issuer");
    sign(header, &c, &ed_key())
}

async fn start_remote(jwks_server: &JwksServer, min_refetch: &str) -> TestEnv {
    let stubs = start_stubs().await;
    let remote = format!(
        "    remote:\n      issuer: remote-issuer\n      algorithms: [EdDSA]\n      jwks_url: {}\n      jwks_timeout: 2s\n      jwks_min_refetch_interval: {min_refetch}\n",
        jwks_server.url
    );
    let config = config(&stubs, &remote);
    TestEnv::start_on(stubs, &config).await
}

#[tokio::test]
async fn remote_jwks_is_fetched_and_unknown_kids_refetch_at_most_once_per_interval() {
    let server = JwksServer::start(jwks(&["k1"])).await;
    let env = start_remote(&server, "1h").await;
    let reply = echo(&env, Some(&kid_token("k1")), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for _ in 0..3 {
        assert_invalid(
            &echo(&env, Some(&kid_token("k9")), &[]).await,
            "unknown key id",
        );
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "one fetch in the interval"
    );
}

#[tokio::test]
async fn remote_jwks_rotation_is_picked_up_and_a_failed_refresh_keeps_the_old_keys() {
    let server = JwksServer::start(jwks(&["k1"])).await;
    let env = start_remote(&server, "0s").await;
    assert_eq!(
        echo(&env, Some(&kid_token("k1")), &[]).await.status,
        StatusCode::OK
    );
    server.set(200, jwks(&["k2"]));
    assert_eq!(
        echo(&env, Some(&kid_token("k2")), &[]).await.status,
        StatusCode::OK
    );
    server.set(500, "down".to_owned());
    assert_invalid(
        &echo(&env, Some(&kid_token("k3")), &[]).await,
        "unknown key id",
    );
    let kept = echo(&env, Some(&kid_token("k2")), &[]).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
}

#[tokio::test]
async fn a_reload_with_an_unrelated_change_keeps_the_fetched_remote_keys() {
    let server = JwksServer::start(jwks(&["k1"])).await;
    let env = start_remote(&server, "1h").await;
    let reply = echo(&env, Some(&kid_token("k1")), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let fetched = server.hits.load(Ordering::SeqCst);
    assert!(fetched >= 1);
    // Unrelated change: another forwarded header.
    let path = env.dir.path().join("gateway.yaml");
    let text = std::fs::read_to_string(&path).expect("read config");
    let changed = text.replace(
        "request_to_metadata: [x-tenant-id,",
        "request_to_metadata: [x-extra, x-tenant-id,",
    );
    assert_ne!(changed, text);
    std::fs::write(&path, changed).expect("write config");
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{:?}", status.errors);
    let reply = echo(&env, Some(&kid_token("k1")), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        fetched,
        "no refetch after the reload"
    );
}

#[tokio::test]
async fn an_enabled_query_parameter_carries_the_token_and_is_not_bound() {
    let stubs = start_stubs().await;
    let config = config(&stubs, "")
        .replace(
            "auth:\n  providers:",
            "auth:\n  token: { query_parameter: jwt }\n  providers:",
        )
        .replace(
            "      require_scopes: [policy:write]\n",
            "      require_scopes: [policy:write]\n      forward_authorization: true\n",
        );
    let env = TestEnv::start_on(stubs, &config).await;
    let token = ed_token(&claims());
    let reply = env
        .send(
            Method::GET,
            &format!("/v1/echo/hello?jwt={token}"),
            &[],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["stringValue"], "hello");
    // With forward_authorization the header reaches the backend.
    let bearer = format!("Bearer {token}");
    let reply = echo(&env, Some(&token), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["receivedMetadata"]["authorization"], bearer);
}

#[test]
fn config_errors_name_the_line_of_each_auth_and_limit_problem() {
    let dir = crate::harness::TempDir::new();
    let text = format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: 127.0.0.1:1
routes:
  - service: tai.Governor
    upstream: governor
    auth: {{ mode: required, providers: [nope] }}
    rate_limits: [missing]
auth:
  providers:
    hs:
      issuer: x
      algorithms: [HS256, XS1]
rate_limits:
  limits:
    bad: {{ rate: lots, burst: 0, key: "cookie:x" }}
"#,
        proto = proto_dir().display()
    );
    let path = dir.write("gateway.yaml", &text);
    let errors = tai_gateway::config::Config::parse(&path, &text).expect_err("invalid");
    let lines: Vec<String> = errors
        .0
        .iter()
        .map(|e| {
            format!(
                "{}:{}: {}: {}",
                e.place.line, e.place.column, e.key, e.reason
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "12:41: routes[0].auth.providers[0]: unknown provider `nope`",
            "13:19: routes[0].rate_limits[0]: unknown rate limit `missing`",
            "17:15: auth.providers.hs.algorithms: HS algorithms need a shared_secret",
            "17:15: auth.providers.hs: give exactly one of pem_file, jwks_file, jwks_url (or only a shared_secret)",
            "18:27: auth.providers.hs.algorithms[1]: unknown algorithm `XS1` (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)",
            "21:18: rate_limits.limits.bad.rate: `lots` is not a rate: use N/s, N/m, N/h or N/<duration>",
            "21:31: rate_limits.limits.bad.burst: must be > 0",
            "21:39: rate_limits.limits.bad.key: use ip, global, claim:<name> or header:<name>",
        ]
    );
}

/// `tai-gateway token …` as the README runs it, with the committed dev key.
pub(crate) fn mint_dev_token(scope: &str) -> String {
    let key = format!("{}/certs/dev-jwt/private.pem", env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["token", "--sub", "alice", "--scope", scope, "--key", &key])
        .output()
        .expect("run tai-gateway token");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn the_default_config_protects_writes_and_accepts_the_minted_dev_token() {
    let stubs = start_stubs().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.yaml");
    // The HTTPS listener's dev certificates are made on first `run --with-stubs`; a fresh clone
    // has none, so this test makes its own set and points the config at it.
    let certs = crate::harness::TempDir::new();
    tai_gateway::listener::tls::dev::write(certs.path()).expect("dev certificates");
    let text = std::fs::read_to_string(&path)
        .expect("read gateway.yaml")
        .replace("certs/dev/", &format!("{}/", certs.path().display()))
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0")
        .replace("127.0.0.1:50051", &stubs.governor_addr.to_string())
        .replace("127.0.0.1:50052", &stubs.coordinator_addr.to_string());
    let gateway = crate::harness::start_gateway(&path, &text).await;
    let client = crate::harness::http1_client();
    let base = format!("http://{}", gateway.http_addr.expect("listener"));
    let body = r#"{"policyType":"access","policyName":"deny-external"}"#;
    let propose = |auth: Option<String>| {
        let client = &client;
        let url = format!("{base}/v1/policies/propose");
        async move {
            let mut headers = vec![("content-type", "application/json".to_owned())];
            if let Some(token) = auth {
                headers.push(("authorization", format!("Bearer {token}")));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            crate::harness::send_with(client, Method::POST, &url, &headers, Some(body)).await
        }
    };
    assert_eq!(propose(None).await.status, StatusCode::UNAUTHORIZED);
    let read_only = propose(Some(mint_dev_token("policy:read"))).await;
    assert_eq!(
        read_only.status,
        StatusCode::FORBIDDEN,
        "{}",
        read_only.body
    );
    let created = propose(Some(mint_dev_token("policy:write"))).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(
        created.header("ratelimit-limit"),
        Some("20"),
        "the tighter per_subject limit"
    );
    let id = created.json()["policyId"].as_str().expect("id").to_owned();
    let read = crate::harness::send_with(
        &client,
        Method::GET,
        &format!("{base}/v1/policies/{id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        read.status,
        StatusCode::OK,
        "reads need no token: {}",
        read.body
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_local_jwks_file_provides_keys_by_kid() {
    let stubs = start_stubs().await;
    let dir = crate::harness::TempDir::new();
    let file = dir.write("jwks.json", &jwks(&["k1", "k2"]));
    let local = format!(
        "    local:\n      issuer: remote-issuer\n      algorithms: [EdDSA]\n      jwks_file: \"{}\"\n",
        file.display()
    );
    let config = config(&stubs, &local);
    let env = TestEnv::start_on(stubs, &config).await;
    for kid in ["k1", "k2"] {
        let reply = echo(&env, Some(&kid_token(kid)), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_invalid(
        &echo(&env, Some(&kid_token("k3")), &[]).await,
        "unknown key id",
    );
}

#[tokio::test]
async fn a_repeated_token_stops_being_accepted_the_second_it_expires() {
    let stubs = start_stubs().await;
    let strict = format!(
        "    strict:\n      issuer: strict-issuer\n      algorithms: [HS256]\n      shared_secret: \"{HS_SECRET}\"\n      clock_skew: 0s\n"
    );
    let config = config(&stubs, &strict);
    let env = TestEnv::start_on(stubs, &config).await;
    let mut short = claims();
    short["iss"] = json!("strict-issuer");
    short["exp"] = json!(now() + 1);
    let token = sign(
        Header::new(Algorithm::HS256),
        &short,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()).expect("hmac key"),
    );
    // The second request is answered from the verified-token cache.
    for _ in 0..2 {
        let reply = echo(&env, Some(&token), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    while now() <= short["exp"].as_i64().expect("exp") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_invalid(&echo(&env, Some(&token), &[]).await, "token expired");
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 2);
}

#[tokio::test]
async fn a_repeated_token_is_refused_once_its_key_left_the_remote_key_set() {
    let server = JwksServer::start(jwks(&["k1"])).await;
    let env = start_remote(&server, "0s").await;
    let old = kid_token("k1");
    for _ in 0..2 {
        assert_eq!(echo(&env, Some(&old), &[]).await.status, StatusCode::OK);
    }
    // The issuer rotates: k2 replaces k1, and a k2 token makes the gateway fetch the new set.
    server.set(200, jwks(&["k2"]));
    assert_eq!(
        echo(&env, Some(&kid_token("k2")), &[]).await.status,
        StatusCode::OK
    );
    assert_invalid(&echo(&env, Some(&old), &[]).await, "unknown key id");
}
