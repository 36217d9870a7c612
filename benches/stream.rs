//! Server-stream benchmark: messages per second of `tai.Governor/WatchPolicies` (synthetic 1 KiB
//! events) straight from the stub (tonic client), through the gateway as native gRPC
//! (pass-through), and through the gateway as NDJSON over HTTP/1.1 (transcoded), in one run so
//! the ratios hold on a noisy machine.
//!
//! Run: `cargo bench --bench stream` (optional env: STREAM_MESSAGES=200000, STREAM_ROUNDS=3).
//! Stubs, gateway and clients share this process (separate runtimes would not change the
//! ratio much on two cores); every phase is bounded by its message count and a 120 s limit.

use std::time::{Duration, Instant};

use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tai_gateway::config::Config;
use tai_gateway::runtime::Runtime;
use tai_gateway::server::ServerHandle;
use tai_stubs::StubServers;
use tai_stubs::proto::tai::WatchPoliciesRequest;
use tai_stubs::proto::tai::governor_client::GovernorClient;
use tonic::transport::Channel;

const LIMIT: Duration = Duration::from_secs(120);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Messages received over gRPC from `uri`, and how long they took.
async fn grpc_phase(uri: String, messages: u64) -> (u64, Duration) {
    let channel = Channel::from_shared(uri)
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = GovernorClient::new(channel).max_decoding_message_size(1 << 20);
    let request = WatchPoliciesRequest {
        synthetic_events: i32::try_from(messages).expect("count fits"),
        ..Default::default()
    };
    let started = Instant::now();
    let mut stream = client
        .watch_policies(request)
        .await
        .expect("watch")
        .into_inner();
    let mut seen = 0;
    while started.elapsed() < LIMIT {
        match stream.message().await.expect("message") {
            Some(_) => seen += 1,
            None => break,
        }
    }
    (seen, started.elapsed())
}

/// NDJSON lines received over HTTP/1.1 from the gateway, and how long they took.
async fn ndjson_phase(base: &str, messages: u64) -> (u64, Duration) {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(format!(
        "{base}/v1/policies:watch?syntheticEvents={messages}"
    ))
    .header("accept", "application/x-ndjson")
    .body(Full::default())
    .expect("request");
    let started = Instant::now();
    let mut body = client.request(request).await.expect("send").into_body();
    let mut seen = 0;
    while started.elapsed() < LIMIT {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame.expect("frame").into_data() {
                    seen += data.iter().filter(|&&b| b == b'\n').count() as u64;
                }
            }
            None => break,
        }
    }
    (seen, started.elapsed())
}

fn rate((messages, took): (u64, Duration)) -> f64 {
    messages as f64 / took.as_secs_f64()
}

fn main() {
    let messages: u64 = env_or("STREAM_MESSAGES", 200_000);
    let rounds: u32 = env_or("STREAM_ROUNDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let any = "127.0.0.1:0".parse().expect("addr");
        let stubs = StubServers::start(any, any).await.expect("stubs");
        let text = format!(
            "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{proto}\"]\n\
             upstreams:\n  governor:\n    address: {gov}\n    max_response_bytes: 1MiB\n\
             routes:\n  - service: tai.Governor\n    upstream: governor\n    timeout: 60s\n\
             access_log:\n  enabled: false\nreload:\n  watch: false\n",
            proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto"),
            gov = stubs.governor_addr,
        );
        let config = Config::parse(std::path::Path::new("bench.yaml"), &text)
            .unwrap_or_else(|e| panic!("config: {e}"));
        let gateway_runtime = Runtime::build(config).unwrap_or_else(|e| panic!("runtime: {e:?}"));
        let gateway = ServerHandle::start(gateway_runtime).await.expect("gateway");
        let base = format!("http://{}", gateway.http_addr.expect("http"));
        let direct_uri = format!("http://{}", stubs.governor_addr);
        println!("server stream, {messages} messages of ~1 KiB per phase, {rounds} rounds");
        println!("{:<28}{:>14}{:>14}{:>14}", "phase", "messages/s", "MiB/s", "vs direct");
        for round in 1..=rounds {
            let direct = grpc_phase(direct_uri.clone(), messages).await;
            let passthrough = grpc_phase(base.clone(), messages).await;
            let ndjson = ndjson_phase(&base, messages).await;
            for (name, phase) in [
                ("direct gRPC (tonic)", direct),
                ("gateway gRPC pass-through", passthrough),
                ("gateway NDJSON (HTTP/1.1)", ndjson),
            ] {
                assert_eq!(phase.0, messages, "{name}: stream incomplete");
                println!(
                    "{:<28}{:>14.0}{:>14.1}{:>13.0}%   (round {round})",
                    name,
                    rate(phase),
                    rate(phase) * 1100.0 / (1 << 20) as f64,
                    rate(phase) / rate(direct) * 100.0,
                );
            }
        }
        gateway.shutdown().await;
    });
}
