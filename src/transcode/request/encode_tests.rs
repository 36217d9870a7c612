//! The request encoder against prost-reflect: same bytes where the order is canonical, and
//! bytes that decode to an equal message everywhere.

use prost::Message as _;
use prost_reflect::DynamicMessage;

use super::encode_message;
use crate::transcode::json::test_pool::message;
use crate::transcode::json::{DecodeOptions, decode_message};

fn decoded(name: &str, json: &str) -> DynamicMessage {
    decode_message(&message(name), json.as_bytes(), &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn encodes_bytes_that_decode_to_the_same_message() {
    let every_kind = r#"{"stringValue":"héllo","int32Value":-5,"int64Value":"-9000000000","uint32Value":4000000000,"uint64Value":"18446744073709551615","sint32Value":-7,"sint64Value":"-8","fixed64Value":"9","floatValue":1.5,"doubleValue":-2.25e-10,"boolValue":true,"bytesValue":"AAEC/w==","color":"COLOR_GREEN","nested":{"name":"n","values":[1,-2,3],"child":{"name":"c"}},"repeatedString":["a","b"],"repeatedNested":[{"name":"x"},{}],"stringToInt64":{"k":"1","j":"-2"},"int32ToString":{"-3":"neg","4":""},"choiceNumber":0,"timestamp":"2024-05-01T10:00:00.123Z","duration":"-1.5s","fieldMask":"a.bC","stringWrapper":"w","int64Wrapper":"7","boolWrapper":false,"structValue":{"a":[1,null,"x",{"b":true}]},"dynamicValue":2.5,"anyValue":{"@type":"type.googleapis.com/tai.EchoNested","name":"n"},"colors":["COLOR_RED",2,-1],"optionalInt32":0,"customJsonName":"j"}"#;
    let long = "x".repeat(300);
    let long_json = format!(r#"{{"nested":{{"name":"{long}","child":{{"name":"{long}"}}}}}}"#);
    // (type, JSON, maps with several entries: byte order may differ from prost-reflect's)
    let cases = [
        (
            "tai.Policy",
            r#"{"id":"pol-42","policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"},"version":"3","createdAt":"2026-11-26T10:00:00Z","state":"POLICY_STATE_ACTIVE"}"#,
            true,
        ),
        (
            "tai.Policy",
            r#"{"id":"p","rules":{"a":"1"},"version":"-1","state":9}"#,
            false,
        ),
        ("tai.Policy", "{}", false),
        ("tai.EchoMessage", every_kind, true),
        (
            "tai.EchoMessage",
            r#"{"floatValue":"NaN","doubleValue":"-Infinity","sint32Value":-2147483648,"sint64Value":"-9223372036854775808"}"#,
            false,
        ),
        (
            "tai.EchoMessage",
            r#"{"choiceText":"","optionalInt32":-1,"nested":{}}"#,
            false,
        ),
        ("tai.EchoMessage", &long_json, false),
        (
            "tai.SearchPoliciesRequest",
            r#"{"states":["POLICY_STATE_ACTIVE",1],"minVersion":3,"cursor":"AQI=","maxAge":"3s","limit":"12"}"#,
            false,
        ),
    ];
    for (name, json, several_map_entries) in cases {
        let msg = decoded(name, json);
        let ours = encode_message(&msg);
        let theirs = msg.encode_to_vec();
        // Map entries come in HashMap order, and entries keep default keys and values that
        // prost-reflect leaves out: both valid, so those are compared after decoding both
        // (a DynamicMessage also remembers explicitly set defaults, which no encoding carries).
        // Not assert_eq: Debug of a Struct-typed descriptor recurses without end.
        if several_map_entries {
            let back = |bytes: &[u8]| DynamicMessage::decode(message(name), bytes).expect(json);
            assert!(back(&ours) == back(&theirs), "{json}\n{ours:?}\n{theirs:?}");
        } else {
            assert!(ours == theirs, "{json}\n{ours:?}\n{theirs:?}");
        }
    }
}
