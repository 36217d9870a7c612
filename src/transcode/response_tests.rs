//! Table-driven tests for reply and status printing, and the full-cycle timing loop.

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};

use super::{HttpResponseBody, decode_and_encode, encode_response, status_to_json};
use crate::transcode::json::test_pool::{field, message, pool};
use crate::transcode::json::{DecodeOptions, EncodeError, EncodeOptions, decode_message};

const POLICY_JSON: &str = r#"{"id":"p1","policyType":"t","policyName":"n","rules":{"a":"1","b":"2"},"version":"5","createdAt":"2024-05-01T10:00:00Z","state":"POLICY_STATE_ACTIVE"}"#;

fn json_msg(name: &str, json: &str) -> DynamicMessage {
    decode_message(&message(name), json.as_bytes(), &DecodeOptions::default()).expect(json)
}

fn json_body(text: &str) -> HttpResponseBody {
    HttpResponseBody {
        content_type: "application/json".into(),
        body: text.as_bytes().to_vec(),
    }
}

#[test]
fn prints_replies_per_encode_options() {
    let defaults = EncodeOptions::default();
    let sparse = EncodeOptions {
        emit_defaults: false,
        ..defaults.clone()
    };
    let proto_names = EncodeOptions {
        proto_field_names: true,
        emit_defaults: false,
        ..defaults.clone()
    };
    let enum_ints = EncodeOptions {
        enums_as_ints: true,
        emit_defaults: false,
        ..defaults.clone()
    };
    let cases = [
        (
            r#"{"id":"p1"}"#,
            &defaults,
            r#"{"id":"p1","policyType":"","policyName":"","rules":{},"version":"0","state":"POLICY_STATE_UNSPECIFIED"}"#,
        ),
        (r#"{"id":"p1"}"#, &sparse, r#"{"id":"p1"}"#),
        (
            r#"{"policyName":"n","state":2}"#,
            &proto_names,
            r#"{"policy_name":"n","state":"POLICY_STATE_ACTIVE"}"#,
        ),
        (
            r#"{"state":"POLICY_STATE_ACTIVE"}"#,
            &enum_ints,
            r#"{"state":2}"#,
        ),
        (
            r#"{"version":"-9223372036854775808"}"#,
            &sparse,
            r#"{"version":"-9223372036854775808"}"#,
        ),
    ];
    for (input, opts, expected) in cases {
        let got = encode_response(&json_msg("tai.Policy", input), None, opts).expect("prints");
        assert_eq!(got, json_body(expected), "{input} {opts:?}");
    }
}

#[test]
fn prints_only_the_response_body_field() {
    let sparse = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    let cases = [
        (
            "tai.Policy",
            POLICY_JSON,
            "rules",
            &sparse,
            r#"{"a":"1","b":"2"}"#,
        ),
        ("tai.Policy", "{}", "rules", &sparse, "{}"),
        ("tai.Policy", "{}", "version", &sparse, r#""0""#),
        (
            "tai.Policy",
            POLICY_JSON,
            "created_at",
            &sparse,
            r#""2024-05-01T10:00:00Z""#,
        ),
        ("tai.Policy", "{}", "created_at", &sparse, "null"),
        (
            "tai.Policy",
            POLICY_JSON,
            "state",
            &sparse,
            r#""POLICY_STATE_ACTIVE""#,
        ),
        ("tai.ListPoliciesResponse", "{}", "policies", &sparse, "[]"),
        (
            "tai.ListPoliciesResponse",
            r#"{"policies":[{"id":"a"}]}"#,
            "policies",
            &sparse,
            r#"[{"id":"a"}]"#,
        ),
    ];
    for (name, input, field_name, opts, expected) in cases {
        let field = field(name, field_name);
        let got = encode_response(&json_msg(name, input), Some(&field), opts).expect("prints");
        assert_eq!(got, json_body(expected), "{name}.{field_name} of {input}");
    }
}

#[test]
fn sends_http_body_replies_raw() {
    let opts = EncodeOptions::default();
    let raw = |content_type: &str, data: &[u8]| HttpResponseBody {
        content_type: content_type.into(),
        body: data.to_vec(),
    };
    let cases = [
        (
            r#"{"contentType":"text/html","data":"PGI+aGk8L2I+"}"#,
            raw("text/html", b"<b>hi</b>"),
        ),
        (
            r#"{"data":"AAE="}"#,
            raw("application/octet-stream", &[0, 1]),
        ),
    ];
    for (input, expected) in cases {
        let payload = json_msg("google.api.HttpBody", input).encode_to_vec();
        let got = decode_and_encode(&message("google.api.HttpBody"), &payload, None, &opts)
            .expect("prints");
        assert_eq!(got, expected, "{input}");
    }
    let download = json_msg(
        "tai_test.DownloadResponse",
        r#"{"name":"x","file":{"contentType":"text/csv","data":"YSxi"}}"#,
    );
    let file = field("tai_test.DownloadResponse", "file");
    assert_eq!(
        encode_response(&download, Some(&file), &opts).expect("prints"),
        raw("text/csv", b"a,b")
    );
    let empty = json_msg("tai_test.DownloadResponse", "{}");
    assert_eq!(
        encode_response(&empty, Some(&file), &opts).expect("prints"),
        raw("application/octet-stream", b"")
    );
}

#[test]
fn reports_invalid_upstream_payloads() {
    let opts = EncodeOptions::default();
    let policy = message("tai.Policy");
    let cases: [(&[u8], &str); 3] = [
        (
            &[0x0a, 0x05, b'a'],
            "upstream reply is not a valid tai.Policy: failed to decode Protobuf message: buffer underflow",
        ),
        (
            &[0x0a, 0x01, 0xff],
            "upstream reply is not a valid tai.Policy: failed to decode Protobuf message: invalid string value: data is not UTF-8 encoded",
        ),
        (
            &[0x07],
            "upstream reply is not a valid tai.Policy: failed to decode Protobuf message: invalid wire type value: 7",
        ),
    ];
    for (payload, expected) in cases {
        let err = decode_and_encode(&policy, payload, None, &opts).expect_err("invalid");
        assert!(matches!(err, EncodeError::InvalidPayload { .. }));
        assert_eq!(err.to_string(), expected);
    }
}

/// An encoded `google.rpc.Status` with one `BadRequest` detail and one detail of an unknown type.
fn status_with_bad_request() -> Vec<u8> {
    let bad_request = json_msg(
        "google.rpc.BadRequest",
        r#"{"fieldViolations":[{"field":"id","description":"must not be empty"}]}"#,
    );
    let any = |type_url: &str, value: Vec<u8>| {
        let mut any = DynamicMessage::new(message("google.protobuf.Any"));
        any.set_field_by_name("type_url", Value::String(type_url.into()));
        any.set_field_by_name("value", Value::Bytes(value.into()));
        Value::Message(any)
    };
    let mut status = DynamicMessage::new(message("google.rpc.Status"));
    status.set_field_by_name("code", Value::I32(3));
    status.set_field_by_name(
        "details",
        Value::List(vec![
            any(
                "type.googleapis.com/google.rpc.BadRequest",
                bad_request.encode_to_vec(),
            ),
            any("type.googleapis.com/x.Unknown", vec![1, 2]),
        ]),
    );
    status.encode_to_vec()
}

#[test]
fn prints_grpc_status_with_details() {
    let sparse = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    let defaults = EncodeOptions::default();
    let details = status_with_bad_request();
    let cases: [(Option<&[u8]>, &EncodeOptions, &str); 5] = [
        (
            Some(&details),
            &sparse,
            r#"{"code":3,"message":"bad \"id\"","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"id","description":"must not be empty"}]}]}"#,
        ),
        (
            Some(&details),
            &defaults,
            r#"{"code":3,"message":"bad \"id\"","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"id","description":"must not be empty","reason":""}]}]}"#,
        ),
        (
            None,
            &sparse,
            r#"{"code":3,"message":"bad \"id\"","details":[]}"#,
        ),
        (
            Some(b"\xff\xff"),
            &sparse,
            r#"{"code":3,"message":"bad \"id\"","details":[]}"#,
        ),
        (
            Some(b""),
            &sparse,
            r#"{"code":3,"message":"bad \"id\"","details":[]}"#,
        ),
    ];
    for (bin, opts, expected) in cases {
        let got = status_to_json(pool(), 3, "bad \"id\"", bin, opts);
        assert_eq!(String::from_utf8(got).expect("utf-8"), expected);
    }
    let empty_pool = prost_reflect::DescriptorPool::new();
    let got = status_to_json(&empty_pool, 5, "not found", Some(&details), &sparse);
    assert_eq!(got, br#"{"code":5,"message":"not found","details":[]}"#);
}

/// Full cycle JSON -> message -> protobuf -> message -> JSON, and each phase; run with
/// `cargo test --release --lib -- --ignored --nocapture full_cycle`.
///
/// It reports instead of asserting: the 2 µs budget is not met yet (about 4.5 µs here, of
/// which prost-reflect's own protobuf encode + decode take about 2 µs).
#[test]
#[ignore = "timing loop; run in release mode"]
fn full_cycle_timing_report() {
    let desc = message("tai.Policy");
    let opts = (DecodeOptions::default(), EncodeOptions::default());
    let cycle = || {
        let msg = decode_message(&desc, POLICY_JSON.as_bytes(), &opts.0).expect("decodes");
        let bytes = msg.encode_to_vec();
        decode_and_encode(&desc, &bytes, None, &opts.1).expect("prints")
    };
    for _ in 0..10_000 {
        std::hint::black_box(cycle());
    }
    let rounds = 200_000;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(cycle());
    }
    let per_cycle = start.elapsed() / rounds;
    println!("full cycle: {per_cycle:?}");
    let msg = decode_message(&desc, POLICY_JSON.as_bytes(), &opts.0).expect("decodes");
    let bytes = msg.encode_to_vec();
    let phases: [(&str, &dyn Fn()); 4] = [
        ("json decode", &|| {
            drop(std::hint::black_box(decode_message(
                &desc,
                POLICY_JSON.as_bytes(),
                &opts.0,
            )))
        }),
        ("proto encode", &|| {
            drop(std::hint::black_box(msg.encode_to_vec()))
        }),
        ("proto decode", &|| {
            drop(std::hint::black_box(DynamicMessage::decode(
                desc.clone(),
                bytes.as_slice(),
            )))
        }),
        ("json encode", &|| {
            drop(std::hint::black_box(encode_response(&msg, None, &opts.1)))
        }),
    ];
    for (name, phase) in phases {
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            phase();
        }
        println!("{name}: {:?}", start.elapsed() / rounds);
    }
}

#[test]
fn floats_print_as_grpc_gateway_prints_them() {
    let opts = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    let echo = json_msg(
        "tai.EchoMessage",
        r#"{"floatValue":1.1,"doubleValue":1e21,"dynamicValue":2,"structValue":{"n":0.5}}"#,
    );
    let whole = encode_response(&echo, None, &opts).expect("prints");
    assert_eq!(
        String::from_utf8(whole.body).expect("utf-8"),
        r#"{"floatValue":1.1,"doubleValue":1e+21,"structValue":{"n":0.5},"dynamicValue":2}"#
    );
    // `response_body` keeps the `float` digits too (no widening to double on the way).
    let field = field("tai.EchoMessage", "float_value");
    let single = encode_response(&echo, Some(&field), &opts).expect("prints");
    assert_eq!(String::from_utf8(single.body).expect("utf-8"), "1.1");
}

#[test]
fn a_message_response_body_keeps_its_field_order_and_sorts_map_keys() {
    let sparse = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    let request = json_msg(
        "tai.UpdatePolicyRequest",
        r#"{"policy":{"state":"POLICY_STATE_ACTIVE","rules":{"b":"2","a":"1","c":"3"},"id":"p","policyName":"n"}}"#,
    );
    let field = field("tai.UpdatePolicyRequest", "policy");
    let printed = encode_response(&request, Some(&field), &sparse).expect("prints");
    assert_eq!(
        String::from_utf8(printed.body).expect("utf-8"),
        r#"{"id":"p","policyName":"n","rules":{"a":"1","b":"2","c":"3"},"state":"POLICY_STATE_ACTIVE"}"#
    );
}

#[test]
fn a_message_inside_any_is_printed_in_the_same_order() {
    let sparse = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    // Plain string literals: the direct-encoding test harvests raw-string documents, and packed
    // map entries inside an Any have no canonical byte order to compare there.
    let echo = json_msg(
        "tai.EchoMessage",
        "{\"anyValue\":{\"@type\":\"type.googleapis.com/tai.Policy\",\"rules\":{\"b\":\"2\",\"a\":\"1\"},\"id\":\"p\"}}",
    );
    let printed = encode_response(&echo, None, &sparse).expect("prints");
    assert_eq!(
        String::from_utf8(printed.body).expect("utf-8"),
        "{\"anyValue\":{\"@type\":\"type.googleapis.com/tai.Policy\",\"id\":\"p\",\"rules\":{\"a\":\"1\",\"b\":\"2\"}}}"
    );
}
