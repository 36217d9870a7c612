//! Edge security costs, no sockets: JWT verification per algorithm (the whole `authenticate` step a
//! request pays), rate-limit checks (a held address, a held header value, a new key evicting the
//! least recently used), the memory held by a million rate-limit keys before and after pruning,
//! and by a flood of distinct 1 KiB header values against the default `max_keys` (printed as RSS
//! from /proc/self/status).
//! Run: `cargo bench --bench edge`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tai_gateway::config::{
    AuthConfig, AuthMode, KeySource, LimitConfig, LimitKey, LimitScope, OnRedisError, Place,
    ProviderConfig, RateLimitConfig, RouteAuth,
};
use tai_gateway::edge::auth::AuthRuntime;
use tai_gateway::edge::rate_limit::{Budget, Limiters};

fn key_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/keys")
        .join(name)
}

fn provider(name: &str, alg: Algorithm, public: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        issuer: name.to_owned(),
        audiences: vec!["bench".to_owned()],
        algorithms: vec![alg],
        keys: KeySource::PemFile(key_file(public)),
        kid: None,
        shared_secret: None,
        clock_skew: Duration::from_secs(60),
        jwks_timeout: Duration::from_secs(5),
        jwks_refresh_interval: Duration::from_secs(600),
        jwks_min_refetch_interval: Duration::from_secs(30),
        jwks_ca: None,
        claims_to_metadata: vec![("sub".to_owned(), "x-jwt-sub".to_owned())],
        payload_to_metadata: None,
        place: Place::default(),
    }
}

fn token(issuer: &str, alg: Algorithm, private: &str) -> String {
    let pem = std::fs::read(key_file(private)).expect("key");
    let key = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .expect("key");
    let claims = serde_json::json!({
        "iss": issuer, "aud": "bench", "sub": "alice", "scope": "policy:write",
        "exp": 4_000_000_000u64,
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).expect("sign")
}

fn jwt(c: &mut Criterion) {
    let cases = [
        ("eddsa", Algorithm::EdDSA, "ed_public.pem", "ed_private.pem"),
        ("es256", Algorithm::ES256, "ec_public.pem", "ec_private.pem"),
        (
            "rs256",
            Algorithm::RS256,
            "rsa_public.pem",
            "rsa_private.pem",
        ),
    ];
    let config = AuthConfig {
        providers: cases
            .iter()
            .map(|(n, alg, public, _)| provider(n, *alg, public))
            .collect(),
        ..AuthConfig::default()
    };
    let auth = AuthRuntime::build(&config, Path::new("bench.yaml")).expect("keys load");
    let policy = auth.policy(&RouteAuth {
        mode: AuthMode::Required,
        providers: cases.iter().map(|c| c.0.to_owned()).collect(),
        require_scopes: vec!["policy:write".to_owned()],
        ..RouteAuth::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    for (name, alg, _, private) in cases {
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", token(name, alg, private));
        headers.insert("authorization", bearer.parse().expect("header"));
        c.bench_function(&format!("jwt/verify_{name}"), |b| {
            b.iter(|| {
                rt.block_on(auth.authenticate(&policy, black_box(&headers), None))
                    .expect("valid")
            })
        });
    }
}

fn limits(burst: u32, per_second: u32, key: LimitKey, max_keys: usize) -> Limiters {
    Limiters::new(&RateLimitConfig {
        limits: vec![LimitConfig {
            name: "limit".to_owned(),
            per_period: per_second,
            period: Duration::from_secs(1),
            burst,
            key,
            max_keys,
            max_key_bytes: LimitConfig::DEFAULT_MAX_KEY_BYTES,
            scope: LimitScope::Local,
            on_redis_error: OnRedisError::Local,
        }],
        ..RateLimitConfig::default()
    })
}

fn client_id() -> LimitKey {
    LimitKey::Header("x-client-id".to_owned())
}

fn rate_limit(c: &mut Criterion) {
    let limiters = limits(1_000_000, 1_000_000, LimitKey::Ip, 100_000);
    let route = limiters.route(&["limit".to_owned()]);
    let headers = HeaderMap::new();
    let peer: SocketAddr = "10.0.0.1:1000".parse().expect("addr");
    c.bench_function("rate_limit/check_per_ip", |b| {
        b.iter(|| {
            // Passing or refused, the cost of one check is the same.
            let mut budget = Budget::default();
            route
                .check_before_auth(black_box(&headers), peer, &mut budget)
                .is_ok()
        })
    });
    let limiters = limits(1_000_000, 1_000_000, client_id(), 100_000);
    let route = limiters.route(&["limit".to_owned()]);
    let mut headers = HeaderMap::new();
    let uuid = "0b8e6a5c-4f1d-4b7e-9a3c-2d6f8e1a7b90";
    headers.insert("x-client-id", uuid.parse().expect("value"));
    c.bench_function("rate_limit/check_per_header", |b| {
        b.iter(|| {
            let mut budget = Budget::default();
            route
                .check_before_auth(black_box(&headers), peer, &mut budget)
                .is_ok()
        })
    });
    // A full limit: every check is a new address that evicts the least recently used key.
    let limiters = limits(1, 1, LimitKey::Ip, 10_000);
    let route = limiters.route(&["limit".to_owned()]);
    let mut n = 0u32;
    c.bench_function("rate_limit/check_new_key_evicting", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let peer = SocketAddr::from((std::net::Ipv4Addr::from(n), 1000));
            let mut budget = Budget::default();
            route
                .check_before_auth(black_box(&headers), peer, &mut budget)
                .is_ok()
        })
    });
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A million distinct client addresses (a limit sized for them), then a prune once their buckets
/// are full again; then a million distinct 1 KiB header values against the default `max_keys`.
fn million_keys(_: &mut Criterion) {
    let before = rss_kib();
    let limiters = limits(1, 1000, LimitKey::Ip, 1_000_000);
    let route = limiters.route(&["limit".to_owned()]);
    let headers = HeaderMap::new();
    for n in 0..1_000_000u32 {
        let peer = SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + n), 1000));
        let _ = route.check_before_auth(&headers, peer, &mut Budget::default());
    }
    // Keys stay until pruned, idle or not.
    let held = rss_kib();
    std::thread::sleep(Duration::from_millis(20));
    limiters.prune();
    let limit = limiters.get("limit").expect("limit");
    let pruned = (limit.key_count(), rss_kib());
    println!(
        "rate_limit/million_keys: RSS {before} KiB before; {held} KiB holding 1000000 keys; {} keys and RSS {} KiB after pruning",
        pruned.0, pruned.1
    );
    drop(limiters);

    let before = rss_kib();
    let limiters = limits(1, 1, client_id(), LimitConfig::DEFAULT_MAX_KEYS);
    let route = limiters.route(&["limit".to_owned()]);
    let peer: SocketAddr = "10.0.0.1:1000".parse().expect("addr");
    let mut value = "v".repeat(LimitConfig::DEFAULT_MAX_KEY_BYTES);
    let mut headers = HeaderMap::new();
    for n in 0..1_000_000u32 {
        value.replace_range(..8, &format!("{n:08x}"));
        headers.insert("x-client-id", value.parse().expect("value"));
        let _ = route.check_before_auth(&headers, peer, &mut Budget::default());
    }
    let limit = limiters.get("limit").expect("limit");
    println!(
        "rate_limit/header_flood: RSS {before} KiB before; {} KiB after 1000000 distinct 1 KiB values: {} keys held, {} evicted",
        rss_kib(),
        limit.key_count(),
        limit.evictions()
    );
}

criterion_group!(benches, jwt, rate_limit, million_keys);
criterion_main!(benches);
