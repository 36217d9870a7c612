//! Table-driven tests for the strict JSON decoder.

use prost_reflect::{DynamicMessage, MapKey, Value};

use super::test_pool::{field, message};
use super::{
    DecodeOptions, EncodeOptions, JsonError, decode_field, decode_message, encode_message_json,
};

const ECHO: &str = "tai.EchoMessage";

fn decode(json: &str) -> Result<DynamicMessage, JsonError> {
    decode_message(&message(ECHO), json.as_bytes(), &DecodeOptions::default())
}

/// Decodes and prints back with defaults skipped: a compact, exact picture of what was set.
fn roundtrip(json: &str) -> String {
    let msg = decode(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    let opts = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    String::from_utf8(encode_message_json(&msg, &opts).expect("prints")).expect("utf-8")
}

#[test]
fn accepts_every_field_kind_in_proto3_json() {
    let cases = [
        (r#"{"stringValue":"hi"}"#, r#"{"stringValue":"hi"}"#),
        (r#"{"string_value":"hi"}"#, r#"{"stringValue":"hi"}"#),
        (r#"{"int32Value":5}"#, r#"{"int32Value":5}"#),
        (r#"{"int32Value":"5"}"#, r#"{"int32Value":5}"#),
        (r#"{"int32Value":1.0}"#, r#"{"int32Value":1}"#),
        (r#"{"int32Value":1e2}"#, r#"{"int32Value":100}"#),
        (
            r#"{"int32Value":"-2147483648"}"#,
            r#"{"int32Value":-2147483648}"#,
        ),
        (
            r#"{"int64Value":"9223372036854775807"}"#,
            r#"{"int64Value":"9223372036854775807"}"#,
        ),
        (
            r#"{"int64Value":-9223372036854775808}"#,
            r#"{"int64Value":"-9223372036854775808"}"#,
        ),
        (
            r#"{"uint32Value":4294967295}"#,
            r#"{"uint32Value":4294967295}"#,
        ),
        (
            r#"{"uint64Value":"18446744073709551615"}"#,
            r#"{"uint64Value":"18446744073709551615"}"#,
        ),
        (
            r#"{"sint32Value":-7,"sint64Value":"-8"}"#,
            r#"{"sint32Value":-7,"sint64Value":"-8"}"#,
        ),
        (r#"{"fixed64Value":"1e3"}"#, r#"{"fixed64Value":"1000"}"#),
        (
            r#"{"floatValue":1.5,"doubleValue":"2.25"}"#,
            r#"{"floatValue":1.5,"doubleValue":2.25}"#,
        ),
        (r#"{"doubleValue":"NaN"}"#, r#"{"doubleValue":"NaN"}"#),
        // Fuzz finding (fuzz/corpus/json_every_kind/finding-long-decimal-float): a long decimal
        // must parse to the nearest double (serde_json's `float_roundtrip`), not one ULP off.
        (
            r#"{"doubleValue":2.184467440737095516165,"dynamicValue":2.184467440737095516165}"#,
            r#"{"doubleValue":2.1844674407370954,"dynamicValue":2.1844674407370954}"#,
        ),
        (
            r#"{"floatValue":"-Infinity","doubleValue":"Infinity"}"#,
            r#"{"floatValue":"-Infinity","doubleValue":"Infinity"}"#,
        ),
        (r#"{"boolValue":true}"#, r#"{"boolValue":true}"#),
        (r#"{"bytesValue":"aGk="}"#, r#"{"bytesValue":"aGk="}"#),
        (r#"{"bytesValue":"aGk"}"#, r#"{"bytesValue":"aGk="}"#),
        (r#"{"bytesValue":"-_8"}"#, r#"{"bytesValue":"+/8="}"#),
        (r#"{"color":"COLOR_RED"}"#, r#"{"color":"COLOR_RED"}"#),
        (r#"{"color":2}"#, r#"{"color":"COLOR_GREEN"}"#),
        (r#"{"color":9}"#, r#"{"color":9}"#),
        (
            r#"{"nested":{"name":"n","values":[1,"2"],"child":{"name":"c"}}}"#,
            r#"{"nested":{"name":"n","values":[1,2],"child":{"name":"c"}}}"#,
        ),
        (
            r#"{"repeatedString":["a","b"],"colors":["COLOR_RED",2]}"#,
            r#"{"repeatedString":["a","b"],"colors":["COLOR_RED","COLOR_GREEN"]}"#,
        ),
        (
            r#"{"stringToInt64":{"k":"5"}}"#,
            r#"{"stringToInt64":{"k":"5"}}"#,
        ),
        (
            r#"{"int32ToString":{"-3":"x"}}"#,
            r#"{"int32ToString":{"-3":"x"}}"#,
        ),
        (r#"{"choiceText":"t"}"#, r#"{"choiceText":"t"}"#),
        (
            r#"{"choiceText":null,"choiceNumber":3}"#,
            r#"{"choiceNumber":3}"#,
        ),
        (r#"{"optionalInt32":0}"#, r#"{"optionalInt32":0}"#),
        (r#"{"customJsonName":"j"}"#, r#"{"customJsonName":"j"}"#),
        (r#"{"json_named":"j"}"#, r#"{"customJsonName":"j"}"#),
        (r#"{"stringValue":null,"nested":null}"#, r#"{}"#),
        ("null", "{}"),
        (" {} \n", "{}"),
    ];
    for (json, expected) in cases {
        assert_eq!(roundtrip(json), expected, "input {json}");
    }
}

#[test]
fn accepts_well_known_types_in_their_json_forms() {
    let cases = [
        (
            r#"{"timestamp":"2024-05-01T10:00:00Z"}"#,
            r#"{"timestamp":"2024-05-01T10:00:00Z"}"#,
        ),
        (
            r#"{"timestamp":"2024-05-01T12:00:00.5+02:00"}"#,
            r#"{"timestamp":"2024-05-01T10:00:00.500Z"}"#,
        ),
        (
            r#"{"timestamp":"0001-01-01T00:00:00Z"}"#,
            r#"{"timestamp":"0001-01-01T00:00:00Z"}"#,
        ),
        (
            r#"{"timestamp":"9999-12-31T23:59:59.999999999Z"}"#,
            r#"{"timestamp":"9999-12-31T23:59:59.999999999Z"}"#,
        ),
        (
            r#"{"timestamp":"2024-02-29T00:00:00-00:30"}"#,
            r#"{"timestamp":"2024-02-29T00:30:00Z"}"#,
        ),
        (r#"{"duration":"1.5s"}"#, r#"{"duration":"1.500s"}"#),
        (
            r#"{"duration":"-0.000000001s"}"#,
            r#"{"duration":"-0.000000001s"}"#,
        ),
        (
            r#"{"duration":"315576000000s"}"#,
            r#"{"duration":"315576000000s"}"#,
        ),
        (
            r#"{"fieldMask":"fooBar,baz.qux"}"#,
            r#"{"fieldMask":"fooBar,baz.qux"}"#,
        ),
        (r#"{"fieldMask":""}"#, r#"{"fieldMask":""}"#),
        (
            r#"{"stringWrapper":"","int64Wrapper":"7","boolWrapper":false}"#,
            r#"{"stringWrapper":"","int64Wrapper":"7","boolWrapper":false}"#,
        ),
        (r#"{"int64Wrapper":null}"#, r#"{}"#),
        (
            r#"{"structValue":{"a":[1,"x",null,{"b":true}]}}"#,
            // A Value's number prints as Go's protojson prints it: `1`, not `1.0`.
            r#"{"structValue":{"a":[1,"x",null,{"b":true}]}}"#,
        ),
        (r#"{"dynamicValue":null}"#, r#"{"dynamicValue":null}"#),
        (
            r#"{"dynamicValue":[1.5,{}]}"#,
            r#"{"dynamicValue":[1.5,{}]}"#,
        ),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.Policy","id":"p1","version":"3"}}"#,
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.Policy","id":"p1","version":"3"}}"#,
        ),
        (
            r#"{"anyValue":{"id":"p1","@type":"type.googleapis.com/tai.Policy"}}"#,
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.Policy","id":"p1"}}"#,
        ),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"}}"#,
            r#"{"anyValue":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"}}"#,
        ),
        // An empty Any prints as `{}` (proto3 JSON mapping), at any depth.
        (r#"{"anyValue":{}}"#, r#"{"anyValue":{}}"#),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/google.protobuf.Any","value":{}}}"#,
            r#"{"anyValue":{"@type":"type.googleapis.com/google.protobuf.Any","value":{}}}"#,
        ),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.EchoMessage","anyValue":{}}}"#,
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.EchoMessage","anyValue":{}}}"#,
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(roundtrip(json), expected, "input {json}");
    }
}

#[test]
fn decodes_the_json_of_a_single_field() {
    let opts = DecodeOptions::default();
    let cases = [
        ("tai.UpdatePolicyRequest", "policy", r#"{"id":"p1"}"#, None),
        (
            "tai.EchoMessage",
            "string_value",
            r#""hello""#,
            Some(Value::String("hello".into())),
        ),
        (
            "tai.EchoMessage",
            "int64_value",
            r#""12""#,
            Some(Value::I64(12)),
        ),
        (
            "tai.EchoMessage",
            "repeated_string",
            r#"["a"]"#,
            Some(Value::List(vec![Value::String("a".into())])),
        ),
        (
            "tai.EchoMessage",
            "int32_to_string",
            r#"{"4":"x"}"#,
            Some(Value::Map(
                [(MapKey::I32(4), Value::String("x".into()))].into(),
            )),
        ),
        (
            "tai.EchoMessage",
            "string_value",
            "null",
            Some(Value::String(String::new())),
        ),
    ];
    for (msg, name, json, expected) in cases {
        let value = decode_field(&field(msg, name), json.as_bytes(), &opts).expect(json);
        match expected {
            Some(expected) => assert_eq!(value, expected, "{json}"),
            None => {
                let policy = value.as_message().expect("message");
                assert_eq!(
                    policy.get_field_by_name("id").as_deref(),
                    Some(&Value::String("p1".into()))
                );
            }
        }
    }
    let err = decode_field(
        &field("tai.UpdatePolicyRequest", "policy"),
        br#"{"version":1.5}"#,
        &opts,
    )
    .expect_err("fraction");
    assert_eq!(
        err.to_string(),
        "invalid JSON at `version`: 1.5 is not an integer"
    );
}

mod reject;
