//! What a global rate limit costs over a local one: `Gateway::handle` for `GET /v1/echo/hi` with
//! a `scope: local` limit vs. the same limit `scope: global` (its local check, then one Lua call
//! to a real `redis-server` on loopback), its budget never exhausted. No client sockets: the
//! pipeline is called directly. Also each variant's p50/p99 over a fixed run of calls.
//! Run: `cargo bench --bench fleet` (needs `redis-server`; figures go to benches/RESULTS.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::Full;
use tai_gateway::config::Config;
use tai_gateway::pipeline::Gateway;
use tai_gateway::runtime::Runtime;
use tai_gateway::state::Shared;
use tai_stubs::StubServers;

/// Calls per variant in the percentile run.
const CALLS: usize = 20_000;

fn redis_server() -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args([
            "--appendonly",
            "no",
            "--dir",
            &std::env::temp_dir().display().to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    std::thread::sleep(Duration::from_millis(300));
    (child, port)
}

/// A gateway on the stubs whose Governor route has a limit of the given `scope`.
fn gateway(stubs: &StubServers, redis_port: u16, scope: &str) -> Gateway {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let text = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: {}\nroutes:\n  - service: tai.Governor\n    upstream: governor\n    rate_limits: [fleet]\nredis:\n  url: redis://127.0.0.1:{redis_port}/0\nrate_limits:\n  limits:\n    fleet: {{ rate: 1000000/s, burst: 1000000, key: ip, scope: {scope} }}\n",
        proto.display(),
        stubs.governor_addr,
    );
    let config = Config::parse(Path::new("bench.yaml"), &text).expect("config");
    let shared = Shared::connect(config.redis.as_ref()).expect("redis client");
    Gateway::new(Runtime::build(config).expect("runtime")).sharing(shared)
}

fn get() -> Request<Full<Bytes>> {
    Request::get("/v1/echo/hi")
        .header("host", "gateway.bench")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

fn percentiles(runtime: &tokio::runtime::Runtime, gateway: &Gateway, peer: SocketAddr) -> String {
    let mut took = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let answer = runtime.block_on(gateway.handle(get(), peer));
        assert_eq!(answer.status(), StatusCode::OK);
        took.push(started.elapsed());
    }
    took.sort_unstable();
    let at = |q: f64| took[((CALLS as f64 * q) as usize).min(CALLS - 1)];
    format!("p50 {:?}, p99 {:?}", at(0.5), at(0.99))
}

fn local_vs_global(c: &mut Criterion) {
    let (mut redis, port) = redis_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let stubs = runtime
        .block_on(StubServers::start(any, any))
        .expect("stubs");
    let _entered = runtime.enter();
    let (local, global) = (
        gateway(&stubs, port, "local"),
        gateway(&stubs, port, "global"),
    );
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    for gateway in [&local, &global] {
        let warm = runtime.block_on(gateway.handle(get(), peer));
        assert_eq!(warm.status(), StatusCode::OK);
    }
    let mut group = c.benchmark_group("echo_with_a_limit");
    group.bench_function("local", |b| {
        b.iter(|| black_box(runtime.block_on(local.handle(get(), peer))))
    });
    group.bench_function("global", |b| {
        b.iter(|| black_box(runtime.block_on(global.handle(get(), peer))))
    });
    group.finish();
    println!("local:  {}", percentiles(&runtime, &local, peer));
    println!("global: {}", percentiles(&runtime, &global, peer));
    let _ = redis.kill();
    let _ = redis.wait();
}

criterion_group!(benches, local_vs_global);
criterion_main!(benches);
