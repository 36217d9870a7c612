//! Transcoding alone, no sockets: JSON → protobuf bytes → JSON for a `tai.Policy`, and each phase,
//! through the same functions the pipeline calls (`encode_request`, `decode_and_encode`).
//! `policy/json_to_proto_via_message` keeps the `DynamicMessage` route (`build_request` +
//! `encode_message`, what the pipeline did before) for comparison.
//! Run: `cargo bench --bench transcode` (figures go to benches/RESULTS.md).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use tai_gateway::config::{DescriptorSources, Located, Place};
use tai_gateway::transcode::json::{DecodeOptions, EncodeOptions};
use tai_gateway::transcode::request::{
    BodyRule, QueryOptions, RequestParts, build_request, encode_message, encode_request,
};
use tai_gateway::transcode::response::decode_and_encode;

const POLICY_JSON: &str = r#"{"id":"pol-42","policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"},"version":"3","createdAt":"2026-11-26T10:00:00Z","state":"POLICY_STATE_ACTIVE"}"#;

fn policy_descriptor() -> prost_reflect::MessageDescriptor {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let sources = DescriptorSources {
        proto_dirs: vec![Located {
            value: proto,
            place: Place::default(),
            key: "bench".to_owned(),
        }],
        ..DescriptorSources::default()
    };
    let pool =
        tai_gateway::descriptors::load(&sources, Path::new("bench.yaml")).expect("protos compile");
    pool.get_message_by_name("tai.Policy").expect("tai.Policy")
}

fn transcoding(c: &mut Criterion) {
    let desc = policy_descriptor();
    let (decode, query) = (DecodeOptions::default(), QueryOptions::default());
    let encode = EncodeOptions::default();
    // What the pipeline passes for `POST` with `body: "*"` and no query string.
    let parts = |body| RequestParts {
        path_bindings: &[],
        query: None,
        body,
        content_type: Some("application/json"),
    };
    let to_proto = |body| {
        encode_request(&desc, &BodyRule::Whole, &parts(body), &decode, &query).expect("encodes")
    };
    let bytes = to_proto(POLICY_JSON.as_bytes());

    c.bench_function("policy/full_cycle", |b| {
        b.iter(|| {
            let bytes = to_proto(black_box(POLICY_JSON.as_bytes()));
            decode_and_encode(&desc, &bytes, None, &encode).expect("prints")
        })
    });
    c.bench_function("policy/json_to_proto", |b| {
        b.iter(|| to_proto(black_box(POLICY_JSON.as_bytes())))
    });
    c.bench_function("policy/json_to_proto_via_message", |b| {
        b.iter(|| {
            let parts = parts(black_box(POLICY_JSON.as_bytes()));
            let message =
                build_request(&desc, &BodyRule::Whole, &parts, &decode, &query).expect("decodes");
            encode_message(&message)
        })
    });
    c.bench_function("policy/proto_to_json", |b| {
        b.iter(|| decode_and_encode(&desc, black_box(&bytes), None, &encode).expect("prints"))
    });
}

criterion_group!(benches, transcoding);
criterion_main!(benches);
