//! What gzip costs on a JSON answer of about 4 KiB: `Gateway::handle` for `POST /v1/echo` (the
//! Governor stub in-process over loopback h2c, the answer printed to JSON) with and without
//! `Accept-Encoding: gzip`, and `compression::compress` alone at levels 1 and 6. No client
//! sockets: the pipeline is called directly, as the listener would.
//! Run: `cargo bench --bench compression` (figures go to benches/RESULTS.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use tai_gateway::body::ResponseBody;
use tai_gateway::compression::compress;
use tai_gateway::config::{CompressionConfig, Config};
use tai_gateway::pipeline::Gateway;
use tai_gateway::runtime::Runtime;
use tai_stubs::StubServers;

/// The Echo request whose answer is about 4 KiB of JSON.
fn echo_body() -> Bytes {
    let words: Vec<String> = (0..400).map(|i| format!("policy-{i}")).collect();
    Bytes::from(format!(
        r#"{{"repeatedString":{}}}"#,
        serde_json::to_string(&words).expect("json")
    ))
}

fn echo(gzip: bool) -> Request<Full<Bytes>> {
    let mut request = Request::post("/v1/echo")
        .header("content-type", "application/json")
        .header("x-request-id", "bench");
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    request.body(Full::new(echo_body())).expect("request")
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
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let text = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: {}\nroutes:\n  - service: tai.Governor\n    upstream: governor\n",
        proto.display(),
        stubs.governor_addr,
    );
    let config = Config::parse(Path::new("bench.yaml"), &text).expect("config");
    let gateway = Gateway::new(Runtime::build(config).expect("runtime"));
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    let plain = runtime.block_on(gateway.handle(echo(false), peer));
    assert_eq!(plain.status(), StatusCode::OK);
    let size = plain.into_body().into_whole().expect("whole").len();
    let zipped = runtime.block_on(gateway.handle(echo(true), peer));
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    let zipped_size = zipped.into_body().into_whole().expect("whole").len();
    eprintln!("answer: {size} bytes of JSON, {zipped_size} gzipped (level 6)");
    let mut group = c.benchmark_group("echo_4k");
    group.bench_function("identity", |b| {
        b.iter(|| black_box(runtime.block_on(gateway.handle(echo(false), peer))))
    });
    group.bench_function("gzip", |b| {
        b.iter(|| black_box(runtime.block_on(gateway.handle(echo(true), peer))))
    });
    group.finish();
}

fn compress_alone(c: &mut Criterion) {
    let words: Vec<String> = (0..400).map(|i| format!("policy-{i}")).collect();
    let json = Bytes::from(
        serde_json::to_string(&serde_json::json!({"repeatedString": words})).expect("json"),
    );
    let answer = || {
        let mut response = Response::new(ResponseBody::from(Full::new(json.clone())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/json".parse().expect("type"),
        );
        response
    };
    let mut group = c.benchmark_group("compress_4k");
    for level in [1, 6] {
        let config = CompressionConfig {
            level,
            ..CompressionConfig::default()
        };
        group.bench_function(format!("gzip_level_{level}"), |b| {
            b.iter(|| black_box(compress(answer(), true, &config)))
        });
    }
    group.bench_function("not_accepted", |b| {
        b.iter(|| black_box(compress(answer(), false, &CompressionConfig::default())))
    });
    group.finish();
}

criterion_group!(benches, through_the_gateway, compress_alone);
criterion_main!(benches);
