//! The response cache's payoff: `Gateway::handle` for `GET /v1/policies/{id}` answered from the
//! cache (lookup, answer rebuilt from the stored bytes, `Cache-Status`/`Age`) vs. the same GET
//! through the uncached gateway path (query binding, gRPC call to the in-process Governor stub
//! over loopback h2c, protobuf → JSON). No client sockets: the pipeline is called directly, as
//! the listener would. Also the store alone: a lookup that hits. And the uncached GET through an
//! upstream with `tls:` (the stubs in their TLS mode, a CA made here with rcgen) against the same
//! over h2c: what TLS to a backend costs a request on an open connection.
//! Run: `cargo bench --bench cache` (figures go to benches/RESULTS.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::Full;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tai_gateway::config::{CacheConfig, Config};
use tai_gateway::pipeline::Gateway;
use tai_gateway::runtime::Runtime;
use tai_gateway::state::cache::{CachedAnswer, Lookup, ResponseCache, Tags};
use tai_stubs::{StubServers, StubTls};

/// A gateway on the stubs whose Governor route caches (`cache: true`) or not; over TLS trusting
/// the CA in `ca` when given.
fn gateway(stubs: &StubServers, cache: bool, ca: Option<&Path>) -> Gateway {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let cache = if cache {
        "    cache: { ttl: 5m }\n"
    } else {
        ""
    };
    let tls = ca.map_or(String::new(), |ca| {
        format!("    tls: {{ ca: \"{}\" }}\n", ca.display())
    });
    let text = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: {}\n{tls}routes:\n  - service: tai.Governor\n    upstream: governor\n{cache}",
        proto.display(),
        stubs.governor_addr,
    );
    let config = Config::parse(Path::new("bench.yaml"), &text).expect("config");
    Gateway::new(Runtime::build(config).expect("runtime"))
}

/// A CA and a stub certificate for 127.0.0.1 signed by it; the CA written to a temp file.
fn tls_material() -> (StubTls, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&key, &ca)
        .expect("sign");
    let path = std::env::temp_dir().join(format!("tai-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&path, ca.pem()).expect("write CA");
    (StubTls::new(leaf.pem(), key.serialize_pem()), path)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "gateway.bench")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

fn through_the_gateway(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let stubs = runtime
        .block_on(StubServers::start(any, any))
        .expect("stubs");
    let (stub_tls, ca) = tls_material();
    let tls_stubs = runtime
        .block_on(StubServers::start_tls(any, any, &stub_tls))
        .expect("TLS stubs");
    let (cached, uncached) = (gateway(&stubs, true, None), gateway(&stubs, false, None));
    let over_tls = gateway(&tls_stubs, false, Some(&ca));
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    let propose = || {
        Request::post("/v1/policies/propose")
            .header("host", "gateway.bench")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"policyName":"bench"}"#)))
            .expect("request")
    };
    for gateway in [&uncached, &over_tls] {
        let proposed = runtime.block_on(gateway.handle(propose(), peer));
        assert_eq!(proposed.status(), StatusCode::OK);
    }
    let path = "/v1/policies/pol-1";
    for gateway in [&cached, &over_tls] {
        let warm = runtime.block_on(gateway.handle(get(path), peer));
        assert_eq!(warm.status(), StatusCode::OK);
    }
    let mut group = c.benchmark_group("get_policy");
    group.bench_function("cache_hit", |b| {
        b.iter(|| black_box(runtime.block_on(cached.handle(get(path), peer))))
    });
    group.bench_function("backend_call", |b| {
        b.iter(|| black_box(runtime.block_on(uncached.handle(get(path), peer))))
    });
    group.bench_function("backend_call_tls", |b| {
        b.iter(|| black_box(runtime.block_on(over_tls.handle(get(path), peer))))
    });
    group.finish();
    let _ = std::fs::remove_file(&ca);
}

fn store_alone(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = Arc::new(ResponseCache::new(&CacheConfig::default()));
    let tags: Tags = ["v1/policies/pol-1", "v1/policies"]
        .into_iter()
        .map(Arc::from)
        .collect();
    let key: Arc<str> = Arc::from("GET gateway.bench/v1/policies/pol-1");
    runtime.block_on(async {
        let Lookup::Lead(leader) = cache.lookup(key.clone(), &tags) else {
            panic!("empty cache");
        };
        let answer = CachedAnswer {
            headers: http::HeaderMap::new(),
            body: Bytes::from(vec![b'x'; 200]),
        };
        leader
            .land(Some(answer), std::time::Duration::from_secs(300))
            .await;
    });
    let _entered = runtime.enter();
    c.bench_function("store/lookup_hit", |b| {
        b.iter(|| black_box(matches!(cache.lookup(key.clone(), &tags), Lookup::Hit(_))))
    });
}

criterion_group!(benches, through_the_gateway, store_alone);
criterion_main!(benches);
