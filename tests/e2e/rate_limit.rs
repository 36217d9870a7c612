//! Rate limits end to end: burst then 429 with exact headers, `X-Forwarded-For` spoofing, per-subject
//! limits after authentication; refused requests never reach the backend. One hostile client cannot
//! hurt the others: distinct header values never make a limit hold more than `max_keys` keys (the
//! least recently used are evicted and counted), and a value over `max_key_bytes` is a 400.

use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::admin::admin_get;
use crate::harness::{Reply, TestEnv, proto_dir};

/// The default test config with `limits` applied to the governor route and `section` appended.
async fn start(limits: &str, section: &str) -> TestEnv {
    let limits = limits.to_owned();
    let section = section.to_owned();
    TestEnv::start_with(move |config| {
        let route = "  - service: tai.Governor\n    upstream: governor\n";
        assert!(config.contains(route));
        let config = config.replace(route, &format!("{route}    rate_limits: [{limits}]\n"));
        format!("{config}{section}")
    })
    .await
}

/// `GET /v1/echo/x` with one header; the status.
async fn get_with(env: &TestEnv, name: &str, value: &str) -> StatusCode {
    env.send(Method::GET, "/v1/echo/x", &[(name, value)], None)
        .await
        .status
}

fn headers_of(reply: &Reply) -> [Option<&str>; 4] {
    [
        reply.header("ratelimit-limit"),
        reply.header("ratelimit-remaining"),
        reply.header("ratelimit-reset"),
        reply.header("retry-after"),
    ]
}

#[tokio::test]
async fn exactly_burst_requests_pass_then_429_with_retry_after() {
    let section = "rate_limits:\n  limits:\n    tight: { rate: 1/h, burst: 3, key: ip }\n";
    let env = start("tight", section).await;
    let expected = [
        [Some("3"), Some("2"), Some("3600"), None],
        [Some("3"), Some("1"), Some("7200"), None],
        [Some("3"), Some("0"), Some("10800"), None],
    ];
    for want in expected {
        let reply = env.get("/v1/echo/x").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(headers_of(&reply), want);
    }
    let refused = env.get("/v1/echo/x").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        headers_of(&refused),
        [Some("3"), Some("0"), Some("3600"), Some("3600")]
    );
    assert_eq!(
        refused.body,
        r#"{"code":8,"message":"rate limit `tight` exceeded; retry in 3600s","details":[]}"#
    );
    assert_eq!(
        env.stubs.store().calls("tai.Governor/Echo"),
        3,
        "429s never reach the backend"
    );
}

#[tokio::test]
async fn spoofed_forwarded_for_does_not_evade_the_per_ip_limit() {
    let section = "rate_limits:\n  trusted_proxy_hops: 0\n  limits:\n    per_ip: { rate: 1/h, burst: 2, key: ip }\n";
    let env = start("per_ip", section).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let xff = format!("203.0.113.{i}");
        let reply = env
            .send(
                Method::GET,
                "/v1/echo/x",
                &[("x-forwarded-for", &xff)],
                None,
            )
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let section = "rate_limits:\n  trusted_proxy_hops: 1\n  limits:\n    per_ip: { rate: 1/h, burst: 1, key: ip }\n";
    let env = start("per_ip", section).await;
    let xff = "x-forwarded-for";
    // The client may prepend anything; only the entry the trusted proxy appended counts.
    assert_eq!(
        get_with(&env, xff, "6.6.6.6, 198.51.100.1").await,
        StatusCode::OK
    );
    assert_eq!(
        get_with(&env, xff, "7.7.7.7, 198.51.100.2").await,
        StatusCode::OK
    );
    let again = get_with(&env, xff, "8.8.8.8, 198.51.100.1").await;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn header_keyed_limits_count_each_value_separately() {
    let section = "rate_limits:\n  limits:\n    per_key: { rate: 1/h, burst: 1, key: \"header:x-api-key\" }\n";
    let env = start("per_key", section).await;
    assert_eq!(get_with(&env, "x-api-key", "a").await, StatusCode::OK);
    assert_eq!(get_with(&env, "x-api-key", "b").await, StatusCode::OK);
    let again = get_with(&env, "x-api-key", "a").await;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn subject_limits_run_after_authentication_and_count_per_subject() {
    let public = format!(
        "{}/tests/e2e/keys/ed_public.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let section = format!(
        "rate_limits:\n  limits:\n    per_sub: {{ rate: 1/h, burst: 1, key: \"claim:sub\" }}\nauth:\n  providers:\n    ed:\n      issuer: rl-issuer\n      algorithms: [EdDSA]\n      pem_file: \"{public}\"\n"
    );
    let env = TestEnv::start_with(move |config| {
        let route = "  - service: tai.Governor\n    upstream: governor\n";
        let config = config.replace(
            route,
            &format!("{route}    rate_limits: [per_sub]\n    auth: {{ mode: required }}\n"),
        );
        format!("{config}{section}")
    })
    .await;
    let pem = std::fs::read(format!(
        "{}/tests/e2e/keys/ed_private.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("key");
    let key = EncodingKey::from_ed_pem(&pem).expect("key");
    let token = |sub: &str| {
        let claims = json!({"iss": "rl-issuer", "sub": sub, "exp": 4_000_000_000u64});
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("sign");
        format!("Bearer {token}")
    };
    let auth = "authorization";
    // Refused tokens are refused before the subject limit and never spend it.
    assert_eq!(
        get_with(&env, auth, "Bearer a.b.c").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_with(&env, auth, &token("alice")).await, StatusCode::OK);
    let again = get_with(&env, auth, &token("alice")).await;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get_with(&env, auth, &token("bob")).await, StatusCode::OK);
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 2);
}

/// The `limit`-labelled value of `family` on `/metrics`.
async fn metric(env: &TestEnv, family: &str, limit: &str) -> Option<u64> {
    let text = admin_get(env, "/metrics").await.body;
    let prefix = format!("{family}{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
}

#[tokio::test]
async fn distinct_header_values_never_hold_more_than_max_keys_and_evictions_are_counted() {
    let section = "rate_limits:\n  limits:\n    per_client: { rate: 1/h, burst: 1, key: \"header:x-client-id\", max_keys: 8 }\n";
    let env = start("per_client", section).await;
    let id = "x-client-id";
    assert_eq!(get_with(&env, id, "hammer").await, StatusCode::OK);
    for n in 0..40 {
        let flood = format!("flood-{n}-{}", "v".repeat(500));
        assert_eq!(get_with(&env, id, &flood).await, StatusCode::OK);
        // A client over its limit that keeps asking stays held, so stays refused.
        let again = get_with(&env, id, "hammer").await;
        assert_eq!(again, StatusCode::TOO_MANY_REQUESTS, "after {n} new keys");
        let keys = metric(&env, "tai_gateway_rate_limit_keys", "per_client").await;
        assert!(
            keys.is_some_and(|k| k <= 8),
            "{keys:?} keys after {n} new keys"
        );
    }
    let keys = metric(&env, "tai_gateway_rate_limit_keys", "per_client").await;
    assert_eq!(keys, Some(8));
    let evictions = metric(&env, "tai_gateway_rate_limit_evictions_total", "per_client").await;
    assert_eq!(evictions, Some(1 + 40 - 8));
    // The oldest flood key was evicted: it is new again. The newest is still held.
    assert_eq!(
        get_with(&env, id, &format!("flood-0-{}", "v".repeat(500))).await,
        StatusCode::OK
    );
    let newest = format!("flood-39-{}", "v".repeat(500));
    assert_eq!(
        get_with(&env, id, &newest).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_key_value_over_max_key_bytes_is_a_400_naming_the_header() {
    let section = "rate_limits:\n  limits:\n    per_client: { rate: 1/h, burst: 5, key: \"header:x-client-id\" }\n    short: { rate: 1/h, burst: 5, key: \"header:x-short\", max_key_bytes: 16 }\n";
    let env = start("per_client, short", section).await;
    // The issue's flood: 60 KB values, far over the default bound of 1024 bytes.
    let huge = "k".repeat(60_000);
    let reply = env
        .send(Method::GET, "/v1/echo/x", &[("x-client-id", &huge)], None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"code":3,"message":"rate limit `per_client`: header `x-client-id` is longer than 1024 bytes","details":[]}"#
    );
    let headers = [("x-client-id", "alice"), ("x-short", "0123456789abcdefX")];
    let reply = env.send(Method::GET, "/v1/echo/x", &headers, None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        r#"{"code":3,"message":"rate limit `short`: header `x-short` is longer than 16 bytes","details":[]}"#
    );
    for limit in ["per_client", "short"] {
        let keys = metric(&env, "tai_gateway_rate_limit_keys", limit).await;
        assert_eq!(keys, Some(0), "{limit}: a refused value is never stored");
    }
    let headers = [("x-client-id", "alice"), ("x-short", "0123456789abcdef")];
    let reply = env.send(Method::GET, "/v1/echo/x", &headers, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("ratelimit-remaining"), Some("4"));
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 1);
}

#[test]
fn key_bounds_are_validated_at_their_line() {
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
rate_limits:
  max_keys: 0
  max_key_bytes: 0
  limits:
    per_ip: {{ rate: 1/s, burst: 1, key: ip, max_key_bytes: 64 }}
    per_key: {{ rate: 1/s, burst: 1, key: "header:x-key", max_keys: 0, max_key_bytes: 0 }}
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
            "13:13: rate_limits.max_keys: must be > 0",
            "14:18: rate_limits.max_key_bytes: must be > 0",
            "16:60: rate_limits.limits.per_ip.max_key_bytes: only header: and claim: keys have a value to bound",
            "17:68: rate_limits.limits.per_key.max_keys: must be > 0",
            "17:86: rate_limits.limits.per_key.max_key_bytes: must be > 0",
        ]
    );
}
