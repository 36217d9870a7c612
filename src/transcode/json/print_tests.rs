//! Differential tests: the wire printer against the `DynamicMessage` printer, for every
//! combination of [`EncodeOptions`], on JSON-built messages and on hand-made wire bytes.

use prost::Message as _;
use prost_reflect::DynamicMessage;

use super::print_wire_message;
use crate::transcode::json::test_pool::message;
use crate::transcode::json::{DecodeOptions, EncodeOptions, decode_message, encode_message_json};
use crate::transcode::response::decode_and_encode;

const ECHO: &str = "tai.EchoMessage";

/// Every combination of the three printing knobs.
fn all_options() -> Vec<EncodeOptions> {
    let mut all = Vec::new();
    for bits in 0..8u8 {
        all.push(EncodeOptions {
            emit_defaults: bits & 1 != 0,
            proto_field_names: bits & 2 != 0,
            enums_as_ints: bits & 4 != 0,
        });
    }
    all
}

fn wire_of(name: &str, json: &str) -> Vec<u8> {
    decode_message(&message(name), json.as_bytes(), &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{json}: {e}"))
        .encode_to_vec()
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One varint field.
fn vf(number: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(number) << 3, &mut out);
    varint(v, &mut out);
    out
}

/// One length-delimited field.
fn lf(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(number) << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `EchoNested` nested `depth` levels through `child`.
fn deep_nested(depth: usize) -> Vec<u8> {
    let mut inner = lf(1, b"leaf");
    for _ in 0..depth {
        inner = lf(3, &inner);
    }
    lf(14, &inner)
}

/// Checks one payload under every option set: the fast path's output (when it does not
/// decline) equals the `DynamicMessage` printer's byte for byte (map keys included), and
/// `decode_and_encode` always equals it.
fn check(name: &str, bytes: &[u8], fast: bool) {
    let desc = message(name);
    for opts in all_options() {
        let old = DynamicMessage::decode(desc.clone(), bytes)
            .map_err(|e| e.to_string())
            .and_then(|m| encode_message_json(&m, &opts).map_err(|e| e.to_string()));
        let new = print_wire_message(&desc, bytes, &opts);
        assert_eq!(new.is_some(), fast, "fast path taken? {bytes:?} {opts:?}");
        let via_response = decode_and_encode(&desc, bytes, None, &opts)
            .map(|b| b.body)
            .map_err(|e| e.to_string());
        let Ok(old) = old else {
            assert!(via_response.is_err(), "{bytes:?} {opts:?}");
            continue;
        };
        for (what, got) in [("fast", new), ("response", via_response.ok())] {
            let Some(got) = got else { continue };
            let (old_text, got_text) =
                (String::from_utf8_lossy(&old), String::from_utf8_lossy(&got));
            assert_eq!(got_text, old_text, "{what} {opts:?} {bytes:?}");
        }
    }
}

#[test]
fn prints_json_built_messages_like_the_dynamic_printer() {
    let every_kind = r#"{"stringValue":"h\u00e9llo \"q\"\n\u0001","int32Value":-5,"int64Value":"-9000000000","uint32Value":4000000000,"uint64Value":"18446744073709551615","sint32Value":-7,"sint64Value":"-8","fixed64Value":"9","floatValue":1.5,"doubleValue":-2.25e-10,"boolValue":true,"bytesValue":"AAEC/w==","color":"COLOR_GREEN","nested":{"name":"n","values":[1,-2,3],"child":{"name":"c"}},"repeatedString":["a","b\"c"],"repeatedNested":[{"name":"x"},{}],"stringToInt64":{"k":"1"},"int32ToString":{"-3":"neg"},"choiceNumber":0,"timestamp":"2024-05-01T10:00:00.123Z","duration":"-1.5s","stringWrapper":"w","int64Wrapper":"7","boolWrapper":false,"colors":["COLOR_RED",2,7],"optionalInt32":0,"customJsonName":"j","receivedMetadata":{"x-id":"1"}}"#;
    let cases = [
        (
            "tai.Policy",
            r#"{"id":"pol-42","policyType":"access","policyName":"deny-external","rules":{"effect":"deny"},"version":"3","createdAt":"2026-11-26T10:00:00Z","state":"POLICY_STATE_ACTIVE"}"#,
        ),
        (
            "tai.Policy",
            r#"{"version":"-9223372036854775808","state":9}"#,
        ),
        ("tai.Policy", "{}"),
        (ECHO, every_kind),
        (ECHO, "{}"),
        (ECHO, r#"{"floatValue":"NaN","doubleValue":"-Infinity"}"#),
        (ECHO, r#"{"floatValue":"Infinity","doubleValue":"NaN"}"#),
        (ECHO, r#"{"floatValue":-0.0,"doubleValue":1e300}"#),
        (ECHO, r#"{"floatValue":1.1,"doubleValue":1e21}"#),
        (
            ECHO,
            r#"{"floatValue":3.4028235e38,"doubleValue":0.000001}"#,
        ),
        (ECHO, r#"{"floatValue":1e-7,"doubleValue":123456789}"#),
        (ECHO, r#"{"choiceText":""}"#),
        (
            ECHO,
            r#"{"timestamp":"0001-01-01T00:00:00Z","duration":"0.000000001s"}"#,
        ),
        (
            ECHO,
            r#"{"nested":{},"stringWrapper":"","int64Wrapper":"0"}"#,
        ),
        (
            ECHO,
            r#"{"repeatedNested":[{"child":{"child":{"values":[0]}}}]}"#,
        ),
        (
            "tai.ListPoliciesResponse",
            r#"{"policies":[{"id":"a"},{"id":"b","createdAt":"2024-05-01T10:00:00.5Z"}]}"#,
        ),
        (
            "tai.SearchPoliciesResponse",
            r#"{"query":{"states":["POLICY_STATE_ACTIVE"],"minVersion":3,"cursor":"AQI=","maxAge":"3s"}}"#,
        ),
    ];
    for (name, json) in cases {
        check(name, &wire_of(name, json), true);
    }
}

#[test]
fn sorts_map_keys_as_the_dynamic_printer_now_does() {
    let cases = [
        r#"{"stringToInt64":{"b":"2","a":"1","c":"3"}}"#,
        r#"{"int32ToString":{"10":"x","-1":"y","2":"z"}}"#,
    ];
    for json in cases {
        check(ECHO, &wire_of(ECHO, json), true);
    }
    let desc = message(ECHO);
    let printed = print_wire_message(&desc, &wire_of(ECHO, cases[1]), &EncodeOptions::default())
        .expect("fast path");
    let text = String::from_utf8(printed).expect("utf-8");
    assert!(
        text.contains(r#""int32ToString":{"-1":"y","2":"z","10":"x"}"#),
        "{text}"
    );
}

#[test]
fn prints_hand_made_wire_bytes_like_the_dynamic_printer() {
    let entry = |k: &[u8], v: u64| lf(17, &cat(&[lf(1, k), vf(2, v)]));
    let ts = |seconds: u64| lf(21, &vf(1, seconds));
    // (payload, fast path expected)
    let cases: Vec<(Vec<u8>, bool)> = vec![
        // Explicit zeros on the wire: still defaults.
        (cat(&[lf(1, b""), vf(2, 0), vf(13, 0)]), true),
        // Unknown fields before, between and after known ones.
        (cat(&[vf(2, 7), vf(33, 5), lf(35, b"xy"), vf(50, 1)]), true),
        // -1 as a ten-byte varint; int32 truncation; bool from 2.
        (cat(&[vf(2, u64::MAX), vf(4, 1 << 33), vf(11, 2)]), true),
        // Repeated enum unpacked, packed, mixed, and an empty packed run.
        (cat(&[vf(30, 1), vf(30, 2)]), true),
        (cat(&[lf(30, &[1, 2]), vf(30, 5)]), true),
        (lf(30, &[]), true),
        // Map: duplicate key (last wins), missing value, missing key.
        (cat(&[entry(b"k", 1), entry(b"k", 2)]), true),
        (lf(17, &lf(1, b"k")), true),
        (lf(17, &vf(2, 3)), true),
        // Timestamp at the edges of its range.
        (ts(253_402_300_799), true),
        (ts(253_402_300_800), false),
        // Declined: out of order, duplicate singular, oneof conflict, message merge.
        (cat(&[vf(3, 5), vf(2, 7)]), false),
        (cat(&[vf(2, 1), vf(2, 2)]), false),
        (cat(&[lf(19, b"a"), vf(20, 5)]), false),
        (cat(&[lf(14, &lf(1, b"a")), lf(14, &vf(2, 1))]), false),
        // Declined: Any, Struct, FieldMask, deep nesting, malformed bytes.
        (
            wire_of(
                ECHO,
                r#"{"anyValue":{"@type":"type.googleapis.com/tai.EchoNested","name":"n"}}"#,
            ),
            false,
        ),
        (
            wire_of(
                ECHO,
                r#"{"structValue":{"a":[1,null,"x"]},"dynamicValue":2}"#,
            ),
            false,
        ),
        (wire_of(ECHO, r#"{"fieldMask":"a.bC,d"}"#), false),
        (deep_nested(70), false),
        (deep_nested(60), true),
        (vec![0x0a, 0x05, b'a'], false),
        (vec![0x0a, 0x01, 0xff], false),
        (vec![0x07], false),
        (lf(2, b"x"), false),
    ];
    for (bytes, fast) in cases {
        check(ECHO, &bytes, fast);
    }
}

#[test]
fn formats_timestamps_like_prost_types() {
    let (min, max) = (-62_135_596_800i64, 253_402_300_799i64);
    let mut seconds: Vec<i64> = (min..=max).step_by(7_919_999_981).collect();
    seconds.extend([min, max, -1, 0, 1, 951_782_400, 951_868_799, 4_107_542_400]);
    for s in seconds {
        for nanos in [
            0,
            1,
            1_000,
            1_000_000,
            123_456_789,
            500_000_000,
            999_999_999,
        ] {
            let mut ours = Vec::new();
            assert!(super::time::write_timestamp(s, nanos, &mut ours));
            let theirs = prost_types::Timestamp { seconds: s, nanos }.to_string();
            assert_eq!(
                String::from_utf8(ours).expect("utf-8"),
                theirs,
                "{s} {nanos}"
            );
        }
    }
    assert!(!super::time::write_timestamp(0, -1, &mut Vec::new()));
    assert!(!super::time::write_timestamp(max + 1, 0, &mut Vec::new()));
}

#[test]
fn finds_a_character_to_escape_anywhere_in_a_long_string() {
    let plain = "a".repeat(100);
    assert!(!super::needs_escape(plain.as_bytes()));
    for at in [0, 31, 32, 63, 64, 99] {
        for special in [b'"', b'\\', b'\n', 0x1f] {
            let mut bytes = plain.clone().into_bytes();
            bytes[at] = special;
            assert!(super::needs_escape(&bytes), "{special:#x} at {at}");
        }
    }
    assert!(!super::needs_escape("é ☃ 0x7f \u{7f}".as_bytes()));
}
