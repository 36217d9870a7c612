//! The response cache end to end: real stubs (which count the calls they get), a real gateway.
//! A cached GET is served without a backend call; PATCH, DELETE and `:enforce` invalidate the
//! resource and its collection before they answer; 50 concurrent misses make one call;
//! `per_subject` answers never reach another subject; `Cache-Control` from the client; the
//! admin purge; the metrics.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::json;

use crate::auth::{claims, ed_token, key_path};
use crate::harness::{Reply, TestEnv, http1_client, proto_dir, send_with, start_stubs};

/// The default test config with the Governor route caching for five minutes.
async fn start() -> TestEnv {
    TestEnv::start_with(|config| {
        config.replacen(
            "    upstream: governor\n",
            "    upstream: governor\n    cache: { ttl: 5m }\n",
            1,
        )
    })
    .await
}

async fn propose(env: &TestEnv, name: &str) -> String {
    let reply = env
        .post_json(
            "/v1/policies/propose",
            &json!({ "policyName": name }).to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()["policyId"]
        .as_str()
        .expect("policy id")
        .to_owned()
}

fn calls(env: &TestEnv, method: &str) -> u64 {
    env.stubs.store().calls(&format!("tai.Governor/{method}"))
}

fn cache_status(reply: &Reply) -> &str {
    reply.header("cache-status").unwrap_or("<none>")
}

/// `ttl=N` of a `Cache-Status`, which counts down from 300 in whole seconds.
fn assert_fresh_ttl(status: &str, prefix: &str) {
    let ttl = status
        .strip_prefix(prefix)
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("`{status}` is not `{prefix}N`"));
    assert!((298..=300).contains(&ttl), "{status}");
}

async fn admin_post(env: &TestEnv, path: &str) -> Reply {
    let addr = env.gateway.admin_addr.expect("admin listener");
    let url = format!("http://{addr}{path}");
    send_with(&http1_client(), Method::POST, &url, &[], None).await
}

#[tokio::test]
async fn a_cached_get_is_served_without_a_backend_call_with_cache_status_and_age() {
    let env = start().await;
    let id = propose(&env, "cached").await;
    let path = format!("/v1/policies/{id}");
    let first = env.get(&path).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_fresh_ttl(cache_status(&first), "tai-gateway; fwd=miss; stored; ttl=");
    assert_eq!(first.header("age"), None);
    let second = env.get(&path).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, first.body);
    assert_fresh_ttl(cache_status(&second), "tai-gateway; hit; ttl=");
    assert_eq!(second.header("age"), Some("0"));
    assert_eq!(second.header("content-type"), first.header("content-type"));
    assert_eq!(second.header("x-stub-service"), Some("governor"));
    assert_eq!(calls(&env, "GetPolicy"), 1);
    // Another query is another key; the same parameters in another order are not.
    env.get("/v1/policies?page_size=5&policy_type=a").await;
    let reordered = env.get("/v1/policies?policy_type=a&page_size=5").await;
    assert_fresh_ttl(cache_status(&reordered), "tai-gateway; hit; ttl=");
    assert_eq!(calls(&env, "ListPolicies"), 1);
    // Errors are never cached.
    for _ in 0..2 {
        let missing = env.get("/v1/policies/pol-404").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(cache_status(&missing), "tai-gateway; fwd=miss");
    }
    assert_eq!(calls(&env, "GetPolicy"), 3);
}

/// GETs the policy and the list twice (the second time from the cache), runs `write`, and
/// checks both are fetched again afterwards.
async fn assert_invalidated_by(env: &TestEnv, id: &str, method: Method, path: &str, body: &str) {
    let one = format!("/v1/policies/{id}");
    for _ in 0..2 {
        env.get(&one).await;
        env.get("/v1/policies").await;
    }
    let (gets, lists) = (calls(env, "GetPolicy"), calls(env, "ListPolicies"));
    assert_fresh_ttl(cache_status(&env.get(&one).await), "tai-gateway; hit; ttl=");
    let headers = [("content-type", "application/json")];
    let written = env.send(method.clone(), path, &headers, Some(body)).await;
    assert_eq!(
        written.status,
        StatusCode::OK,
        "{method} {path}: {}",
        written.body
    );
    let after = env.get(&one).await;
    assert!(
        cache_status(&after).starts_with("tai-gateway; fwd=miss"),
        "{method} {path}"
    );
    let list = env.get("/v1/policies").await;
    assert!(
        cache_status(&list).starts_with("tai-gateway; fwd=miss"),
        "{method} {path}"
    );
    assert_eq!(calls(env, "GetPolicy"), gets + 1, "{method} {path}");
    assert_eq!(calls(env, "ListPolicies"), lists + 1, "{method} {path}");
}

#[tokio::test]
async fn patch_enforce_and_delete_invalidate_the_policy_and_its_list_before_answering() {
    let env = start().await;
    let id = propose(&env, "before").await;
    let patch = format!("/v1/policies/{id}?update_mask=policyName");
    assert_invalidated_by(
        &env,
        &id,
        Method::PATCH,
        &patch,
        r#"{"policyName":"after"}"#,
    )
    .await;
    assert_eq!(
        env.get(&format!("/v1/policies/{id}")).await.json()["policyName"],
        "after"
    );
    let enforce = format!("/v1/policies/{id}:enforce");
    assert_invalidated_by(&env, &id, Method::POST, &enforce, "{}").await;
    let other = propose(&env, "other").await;
    let delete = format!("/v1/policies/{other}?reason=gone");
    assert_invalidated_by(&env, &other, Method::DELETE, &delete, "").await;
    let revoked = env.get(&format!("/v1/policies/{other}")).await;
    assert_eq!(
        revoked.json()["state"],
        "POLICY_STATE_REVOKED",
        "{}",
        revoked.body
    );
    // A failed write invalidates nothing.
    env.get(&format!("/v1/policies/{id}")).await;
    let failed = env
        .send(Method::DELETE, "/v1/policies/pol-404", &[], None)
        .await;
    assert_ne!(failed.status, StatusCode::OK);
    let still = env.get(&format!("/v1/policies/{id}")).await;
    assert_fresh_ttl(cache_status(&still), "tai-gateway; hit; ttl=");
}

#[tokio::test]
async fn fifty_concurrent_misses_make_one_backend_call() {
    let env = Arc::new(start().await);
    let id = propose(&env, "popular").await;
    let path = format!("/v1/policies/{id}");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (env, path) = (env.clone(), path.clone());
        // The backend takes 300 ms, so every request arrives while the first call is out.
        let delay = [("x-stub-delay-ms", "300")];
        tasks.spawn(async move { env.send(Method::GET, &path, &delay, None).await });
    }
    let replies: Vec<Reply> = tasks.join_all().await;
    assert_eq!(calls(&env, "GetPolicy"), 1);
    assert!(
        replies
            .iter()
            .all(|r| r.status == StatusCode::OK && r.body == replies[0].body)
    );
    let stored = replies
        .iter()
        .filter(|r| cache_status(r).contains("stored"))
        .count();
    let collapsed = replies
        .iter()
        .filter(|r| cache_status(r) == "tai-gateway; fwd=miss; collapsed")
        .count();
    assert_eq!((stored, collapsed), (1, 49));
}

#[tokio::test]
async fn no_cache_refetches_and_stores_while_no_store_only_refetches() {
    let env = start().await;
    let id = propose(&env, "directives").await;
    let path = format!("/v1/policies/{id}");
    env.get(&path).await;
    let no_store = env
        .send(Method::GET, &path, &[("cache-control", "no-store")], None)
        .await;
    assert_eq!(cache_status(&no_store), "tai-gateway; fwd=request");
    assert_eq!(calls(&env, "GetPolicy"), 2);
    let patched = format!("/v1/policies/{id}?update_mask=policyName");
    let headers = [("content-type", "application/json")];
    env.send(
        Method::PATCH,
        &patched,
        &headers,
        Some(r#"{"policyName":"new"}"#),
    )
    .await;
    env.get(&path).await;
    let no_cache = [("cache-control", "max-age=0, No-Cache")];
    let fresh = env.send(Method::GET, &path, &no_cache, None).await;
    assert_fresh_ttl(
        cache_status(&fresh),
        "tai-gateway; fwd=request; stored; ttl=",
    );
    assert_eq!(calls(&env, "GetPolicy"), 4);
    let hit = env.get(&path).await;
    assert_fresh_ttl(cache_status(&hit), "tai-gateway; hit; ttl=");
    assert_eq!(hit.body, fresh.body);
    assert_eq!(calls(&env, "GetPolicy"), 4);
}

#[tokio::test]
async fn the_admin_purges_by_tag_or_everything_and_metrics_count_lookups() {
    let env = start().await;
    let id = propose(&env, "purged").await;
    env.get(&format!("/v1/policies/{id}")).await;
    env.get(&format!("/v1/policies/{id}")).await;
    env.get("/v1/policies").await;
    env.get(&format!("/v1/policies/{id}/rules")).await;
    let purged = admin_post(&env, &format!("/cache/purge?tag=/v1/policies/{id}")).await;
    assert_eq!(purged.status, StatusCode::OK);
    assert_eq!(
        purged.json(),
        json!({ "purged": 2, "tag": format!("v1/policies/{id}") })
    );
    let all = admin_post(&env, "/cache/purge").await;
    assert_eq!(all.json(), json!({ "purged": 1, "tag": null }));
    let after = env.get("/v1/policies").await;
    assert!(cache_status(&after).starts_with("tai-gateway; fwd=miss"));
    let addr = env.gateway.admin_addr.expect("admin");
    let metrics = send_with(
        &http1_client(),
        Method::GET,
        &format!("http://{addr}/metrics"),
        &[],
        None,
    )
    .await;
    for line in [
        "tai_gateway_cache_lookups_total{route=\"tai.Governor\",result=\"hit\"} 1\n",
        "tai_gateway_cache_lookups_total{route=\"tai.Governor\",result=\"miss\"} 4\n",
        "tai_gateway_cache_entries 1\n",
    ] {
        assert!(
            metrics.body.contains(line),
            "missing {line} in {}",
            metrics.body
        );
    }
    assert!(
        metrics
            .body
            .contains("# TYPE tai_gateway_cache_bytes gauge\n")
    );
}

/// Echo (which answers with the metadata it got, the verified `sub` included) caching per
/// subject; GetPolicy caching without `per_subject`.
fn auth_config(stubs: &tai_stubs::StubServers) -> String {
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
    auth: {{ mode: optional }}
    cache: {{ ttl: 1m, per_subject: true }}
  - name: read
    methods: [tai.Governor/GetPolicy, tai.Governor/ProposePolicy]
    upstream: governor
    auth: {{ mode: optional }}
    cache: {{ ttl: 1m }}
auth:
  providers:
    ed:
      issuer: https://issuer.test
      audiences: [gateway-tests]
      algorithms: [EdDSA]
      pem_file: "{ed}"
      kid: ed-1
      claims_to_metadata: {{ sub: x-jwt-sub }}
"#,
        proto = proto_dir().display(),
        gov = stubs.governor_addr,
        ed = key_path("ed_public.pem"),
    )
}

async fn echo(env: &TestEnv, token: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = token.map(|t| ("authorization", t)).into_iter().collect();
    env.send(Method::GET, "/v1/echo/hi", &headers, None).await
}

fn bearer(subject: &str) -> String {
    let mut claims = claims();
    claims["sub"] = json!(subject);
    format!("Bearer {}", ed_token(&claims))
}

#[tokio::test]
async fn per_subject_answers_are_never_served_to_another_subject_or_anonymously() {
    let stubs = start_stubs().await;
    let config = auth_config(&stubs);
    let env = TestEnv::start_on(stubs, &config).await;
    let (alice, bob) = (bearer("alice"), bearer("bob"));
    let alice_first = echo(&env, Some(&alice)).await;
    assert!(
        alice_first.body.contains(r#""x-jwt-sub":"alice""#),
        "{}",
        alice_first.body
    );
    let bob_first = echo(&env, Some(&bob)).await;
    assert!(cache_status(&bob_first).starts_with("tai-gateway; fwd=miss; stored"));
    assert!(
        bob_first.body.contains(r#""x-jwt-sub":"bob""#),
        "{}",
        bob_first.body
    );
    let anonymous = echo(&env, None).await;
    assert!(cache_status(&anonymous).starts_with("tai-gateway; fwd=miss; stored"));
    assert!(!anonymous.body.contains("x-jwt-sub"), "{}", anonymous.body);
    let alice_again = echo(&env, Some(&alice)).await;
    assert!(cache_status(&alice_again).starts_with("tai-gateway; hit"));
    assert_eq!(alice_again.body, alice_first.body);
    assert_eq!(echo(&env, Some(&bob)).await.body, bob_first.body);
    assert_eq!(echo(&env, None).await.body, anonymous.body);
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 3);
}

#[tokio::test]
async fn a_route_without_per_subject_never_caches_a_request_with_credentials() {
    let stubs = start_stubs().await;
    let config = auth_config(&stubs);
    let env = TestEnv::start_on(stubs, &config).await;
    let id = propose(&env, "private").await;
    let path = format!("/v1/policies/{id}");
    let alice = bearer("alice");
    for _ in 0..2 {
        let reply = env
            .send(Method::GET, &path, &[("authorization", &alice)], None)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(cache_status(&reply), "tai-gateway; fwd=bypass");
    }
    // An unverifiable token is not a subject either.
    let bad = env
        .send(
            Method::GET,
            "/v1/echo/x",
            &[("authorization", "Basic YTpi")],
            None,
        )
        .await;
    assert_eq!(cache_status(&bad), "tai-gateway; fwd=bypass");
    let anonymous = env.get(&path).await;
    assert!(cache_status(&anonymous).starts_with("tai-gateway; fwd=miss; stored"));
    let answered = env
        .send(Method::GET, &path, &[("authorization", &alice)], None)
        .await;
    assert_eq!(cache_status(&answered), "tai-gateway; fwd=bypass");
    assert_eq!(calls(&env, "GetPolicy"), 4);
}
