//! The response cache's payoff: `Gateway::handle` for `GET /v1/policies/{id}` answered from the
//! cache (lookup, answer rebuilt from the stored bytes, `Cache-Status`/`Age`) vs. the same GET
//! through the uncached gateway path (query binding, gRPC call to the in-process Governor stub
//! over loopback h2c, protobuf → JSON). No client sockets: the pipeline is called directly, as
//! the listener would. Also the store alone: a lookup that hits.
//! Run: `cargo bench --bench cache` (figures go to benches/RESULTS.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::Full;
use tai_gateway::config::{CacheConfig, Config};
use tai_gateway::pipeline::Gateway;
use tai_gateway::runtime::Runtime;
use tai_gateway::state::cache::{CachedAnswer, Lookup, ResponseCache, Tags};
use tai_stubs::StubServers;

/// A gateway on the stubs whose Governor route caches (`cache: true`) or not.
fn gateway(stubs: &StubServers, cache: bool) -> Gateway {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let cache = if cache {
        "    cache: { ttl: 5m }\n"
    } else {
        ""
    };
    let text = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: {}\nroutes:\n  - service: tai.Governor\n    upstream: governor\n{cache}",
        proto.display(),
        stubs.governor_addr,
    );
    let config = Config::parse(Path::new("bench.yaml"), &text).expect("config");
    Gateway::new(Runtime::build(config).expect("runtime"))
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
    let (cached, uncached) = (gateway(&stubs, true), gateway(&stubs, false));
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    let propose = Request::post("/v1/policies/propose")
        .header("host", "gateway.bench")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"policyName":"bench"}"#)))
        .expect("request");
    let proposed = runtime.block_on(uncached.handle(propose, peer));
    assert_eq!(proposed.status(), StatusCode::OK);
    let path = "/v1/policies/pol-1";
    let warm = runtime.block_on(cached.handle(get(path), peer));
    assert_eq!(warm.status(), StatusCode::OK);
    let mut group = c.benchmark_group("get_policy");
    group.bench_function("cache_hit", |b| {
        b.iter(|| black_box(runtime.block_on(cached.handle(get(path), peer))))
    });
    group.bench_function("backend_call", |b| {
        b.iter(|| black_box(runtime.block_on(uncached.handle(get(path), peer))))
    });
    group.finish();
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
