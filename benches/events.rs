//! The cost of the event stream on a write route: `POST /v1/policies/propose` through
//! `Gateway::handle` (no client sockets, as the listener would call it) with the in-process
//! Governor stub, events off vs. on (`before_response`: the answer waits for the spool's fsync,
//! shared by concurrent writes; `best_effort`: no wait), the drain publishing to the local
//! JSON-lines file (fsync per batch) on the same disk. Each variant gets fresh stubs and a fresh
//! spool; `EVENTS_CONCURRENCY` writers (default 16) send `EVENTS_WRITES` writes (default 20000)
//! after 1000 to warm up. Reported: writes/s, p50/p99 latency, and the process' CPU per write
//! (every thread's on-CPU time from /proc/self/task/*/schedstat: gateway, stub, spool writer,
//! drain — the stub's share is the same in every variant, so the difference is what events add).
//! Run: `cargo bench --bench events` (figures go to benches/RESULTS.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tai_gateway::config::Config;
use tai_gateway::events::Events;
use tai_gateway::pipeline::Gateway;
use tai_gateway::runtime::Runtime;
use tai_stubs::StubServers;

const VARIANTS: [(&str, &str); 3] = [
    ("events off", ""),
    (
        "events on, before_response",
        "    events: { durability: before_response, methods: { ProposePolicy: { type: policy.proposed, aggregate_id: response.policyId } } }\n",
    ),
    (
        "events on, best_effort",
        "    events: { durability: best_effort, methods: { ProposePolicy: { type: policy.proposed, aggregate_id: response.policyId } } }\n",
    ),
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds every thread of this process has spent on a CPU.
fn cpu_nanos() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn gateway(stubs: &StubServers, dir: &Path, events: &str) -> Gateway {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let text = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: {}\nroutes:\n  - service: tai.Governor\n    upstream: governor\n{events}",
        proto.display(),
        stubs.governor_addr,
    );
    let config = Config::parse(&dir.join("bench.yaml"), &text).expect("config");
    let runtime = Runtime::build(config).expect("runtime");
    let wanted = Events::wanted(&runtime.config);
    let events = wanted.then(|| Events::open(&runtime.config.events).expect("spool"));
    let mut gateway = Gateway::new(runtime);
    if let Some(events) = events {
        gateway = gateway.recording(events);
    }
    gateway
}

fn propose() -> Request<Full<Bytes>> {
    Request::post("/v1/policies/propose")
        .header("host", "gateway.bench")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"policyType":"access","policyName":"bench","rules":{"effect":"deny","scope":"external"}}"#,
        )))
        .expect("request")
}

/// `writes` writes from `concurrency` writers; every latency, sorted.
async fn run(gateway: &Arc<Gateway>, writes: usize, concurrency: usize) -> Vec<Duration> {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let gateway = gateway.clone();
        let share = writes / concurrency;
        tasks.spawn(async move {
            let mut took = Vec::with_capacity(share);
            for _ in 0..share {
                let started = Instant::now();
                let response = gateway.handle(propose(), peer).await;
                assert_eq!(response.status(), StatusCode::OK);
                took.push(started.elapsed());
            }
            took
        });
    }
    let mut all = Vec::with_capacity(writes);
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("writer"));
    }
    all.sort_unstable();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

fn main() {
    let (writes, concurrency) = (
        env_or("EVENTS_WRITES", 20_000),
        env_or("EVENTS_CONCURRENCY", 16),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/out/events");
    println!(
        "{writes} writes, {concurrency} writers, 2 tokio workers, spool on {}",
        base.display()
    );
    println!("| variant | writes/s | p50 | p99 | CPU per write |\n|---|---|---|---|---|");
    for (name, events) in VARIANTS {
        let dir = base.join(name.replace([' ', ','], "_"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench dir");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let stubs = runtime
            .block_on(StubServers::start(any, any))
            .expect("stubs");
        let gateway = Arc::new(gateway(&stubs, &dir, events));
        let drain = gateway.events().cloned().map(|events| {
            let publisher = Events::publisher(&gateway.runtime().config.events, None);
            runtime.spawn(async move {
                events.drain(&*publisher, std::future::pending()).await;
            })
        });
        runtime.block_on(run(&gateway, 1000, concurrency));
        let (cpu, wall) = (cpu_nanos(), Instant::now());
        let took = runtime.block_on(run(&gateway, writes, concurrency));
        let (cpu, wall) = (cpu_nanos() - cpu, wall.elapsed());
        println!(
            "| {name} | {:.0} | {:.0} µs | {:.0} µs | {:.1} µs |",
            took.len() as f64 / wall.as_secs_f64(),
            percentile(&took, 0.5).as_secs_f64() * 1e6,
            percentile(&took, 0.99).as_secs_f64() * 1e6,
            cpu as f64 / 1e3 / took.len() as f64,
        );
        if let Some(drain) = drain {
            drain.abort();
        }
    }
}
