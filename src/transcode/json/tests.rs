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
            r#"{"structValue":{"a":[1.0,"x",null,{"b":true}]}}"#,
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
    ];
    for (json, expected) in cases {
        assert_eq!(roundtrip(json), expected, "input {json}");
    }
}

#[test]
fn rejects_invalid_values_with_path_and_reason() {
    let cases = [
        (
            r#"{"int32Value":2147483648}"#,
            "int32Value",
            "2147483648 is out of range for int32",
        ),
        (
            r#"{"uint32Value":-1}"#,
            "uint32Value",
            "-1 is out of range for uint32",
        ),
        (
            r#"{"int64Value":9223372036854775808}"#,
            "int64Value",
            "9223372036854775808 is out of range for int64",
        ),
        (
            r#"{"int64Value":"9223372036854775808"}"#,
            "int64Value",
            "9223372036854775808 is out of range for int64",
        ),
        (
            r#"{"uint64Value":18446744073709551616}"#,
            "uint64Value",
            "1.8446744073709552e19 is too large to be exact in exponent or fraction form; write the integer digits",
        ),
        (
            r#"{"uint64Value":"18446744073709551616"}"#,
            "uint64Value",
            "18446744073709551616 is out of range for uint64",
        ),
        (
            r#"{"int64Value":9007199254740993.0}"#,
            "int64Value",
            "9.007199254740994e15 is too large to be exact in exponent or fraction form; write the integer digits",
        ),
        (
            r#"{"int32Value":1.5}"#,
            "int32Value",
            "1.5 is not an integer",
        ),
        (
            r#"{"int32Value":"abc"}"#,
            "int32Value",
            "`abc` is not an integer",
        ),
        (
            r#"{"int32Value":"inf"}"#,
            "int32Value",
            "`inf` is not an integer",
        ),
        (
            r#"{"int32Value":true}"#,
            "int32Value",
            "expected int32, found boolean",
        ),
        (
            r#"{"floatValue":1e39}"#,
            "floatValue",
            "1e39 is out of range for float",
        ),
        (
            r#"{"doubleValue":"1e400"}"#,
            "doubleValue",
            "`1e400` is out of range for double",
        ),
        (
            r#"{"doubleValue":"infinity"}"#,
            "doubleValue",
            "`infinity` is not a number",
        ),
        (
            r#"{"boolValue":"true"}"#,
            "boolValue",
            "expected bool, found string",
        ),
        (
            r#"{"boolValue":1}"#,
            "boolValue",
            "expected bool, found number",
        ),
        (
            r#"{"stringValue":5}"#,
            "stringValue",
            "expected string, found number",
        ),
        (
            r#"{"bytesValue":"a$b"}"#,
            "bytesValue",
            "invalid base64: Invalid symbol 36, offset 1.",
        ),
        (
            r#"{"color":"COLOR_BLUE"}"#,
            "color",
            "`COLOR_BLUE` is not a value of enum tai.Color",
        ),
        (
            r#"{"color":"1"}"#,
            "color",
            "`1` is not a value of enum tai.Color",
        ),
        (
            r#"{"nested":{"child":{"values":[1,2.5]}}}"#,
            "nested.child.values[1]",
            "2.5 is not an integer",
        ),
        (
            r#"{"repeatedNested":[{},{"name":7}]}"#,
            "repeatedNested[1].name",
            "expected string, found number",
        ),
        (
            r#"{"repeatedString":["a",null]}"#,
            "repeatedString[1]",
            "null is not allowed in an array",
        ),
        (
            r#"{"repeatedString":"a"}"#,
            "repeatedString",
            "invalid type: string \"a\", expected an array of string",
        ),
        (
            r#"{"stringToInt64":{"k":"x"}}"#,
            "stringToInt64.k",
            "`x` is not an integer",
        ),
        (
            r#"{"stringToInt64":{"k":null}}"#,
            "stringToInt64.k",
            "null is not allowed as a map value",
        ),
        (
            r#"{"int32ToString":{"a":"x"}}"#,
            "int32ToString",
            "`a` is not a valid int32 map key",
        ),
        (
            r#"{"int32ToString":{"1":"x","01":"y"}}"#,
            "int32ToString",
            "duplicate map key `1`",
        ),
        (
            r#"{"nested":"x"}"#,
            "nested",
            "expected tai.EchoNested, found string",
        ),
        (
            r#"{"nested":[]}"#,
            "nested",
            "expected tai.EchoNested, found array",
        ),
        (
            r#"{"stringValue":{}}"#,
            "stringValue",
            "expected string, found object",
        ),
    ];
    for (json, path, reason) in cases {
        let err = decode(json).expect_err(json);
        assert_eq!(
            (err.path.as_str(), err.reason.as_str()),
            (path, reason),
            "input {json}"
        );
    }
}

#[test]
fn rejects_ill_formed_documents() {
    let cases = [
        (
            r#"{"stringValue":"a","stringValue":"b"}"#,
            "",
            "duplicate field `stringValue`",
        ),
        (
            r#"{"string_value":"a","stringValue":"b"}"#,
            "",
            "duplicate field `stringValue`",
        ),
        (
            r#"{"nested":{"name":"a","name":"a"}}"#,
            "nested",
            "duplicate field `name`",
        ),
        (
            r#"{"choiceText":"t","choiceNumber":1}"#,
            "",
            "`choiceNumber` and another member of oneof `choice` are both set",
        ),
        (
            r#"{"auth":"y"}"#,
            "",
            "unknown field `auth` in tai.EchoMessage",
        ),
        (
            r#"{"nested":{"bogus":1}}"#,
            "nested",
            "unknown field `bogus` in tai.EchoNested",
        ),
        (
            r#"{"structValue":{"a":1,"a":2}}"#,
            "structValue",
            "duplicate key `a`",
        ),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.Nope"}}"#,
            "anyValue",
            "unknown type `tai.Nope` in `@type`",
        ),
        (
            r#"{"anyValue":{"id":"p"}}"#,
            "anyValue",
            "missing `@type` in Any",
        ),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.Policy","version":"9223372036854775808"}}"#,
            "anyValue.version",
            "9223372036854775808 is out of range for int64",
        ),
        (
            r#"{"anyValue":{"@type":"type.googleapis.com/tai.Policy","id":"a","id":"b"}}"#,
            "anyValue",
            "duplicate field `id`",
        ),
        (
            r#"{"timestamp":"2024-02-30T00:00:00Z"}"#,
            "timestamp",
            "`2024-02-30T00:00:00Z` is not an RFC 3339 timestamp",
        ),
        (
            r#"{"timestamp":"2024-05-01T10:00:00"}"#,
            "timestamp",
            "`2024-05-01T10:00:00` is not an RFC 3339 timestamp",
        ),
        (
            r#"{"timestamp":"2024-05-01T10:00:00.1234567890Z"}"#,
            "timestamp",
            "`2024-05-01T10:00:00.1234567890Z` is not an RFC 3339 timestamp",
        ),
        (
            r#"{"timestamp":"0001-01-01T00:00:00+01:00"}"#,
            "timestamp",
            "`0001-01-01T00:00:00+01:00` is outside 0001-01-01 to 9999-12-31",
        ),
        (
            r#"{"duration":"1.5"}"#,
            "duration",
            "`1.5` is not a duration such as \"1.5s\"",
        ),
        (
            r#"{"duration":"315576000001s"}"#,
            "duration",
            "`315576000001s` exceeds ±315576000000s",
        ),
        (
            r#"{"fieldMask":"foo_bar"}"#,
            "fieldMask",
            "`foo_bar` is not a lowerCamel field mask path",
        ),
        (
            r#"{"int64Wrapper":"1.5"}"#,
            "int64Wrapper",
            "1.5 is not an integer",
        ),
        (
            r#"{"boolWrapper":"true"}"#,
            "boolWrapper",
            "expected bool, found string",
        ),
        (
            r#"{"timestamp":{}}"#,
            "timestamp",
            "expected google.protobuf.Timestamp, found object",
        ),
        (r#"[]"#, "", "expected tai.EchoMessage, found array"),
    ];
    for (json, path, reason) in cases {
        let err = decode(json).expect_err(json);
        assert_eq!(
            (err.path.as_str(), err.reason.as_str()),
            (path, reason),
            "input {json}"
        );
    }
}

#[test]
fn rejects_syntax_errors_and_trailing_garbage() {
    let cases: [(&[u8], &str, &str); 5] = [
        (
            b"{\"stringValue\":\"a\"} x",
            "",
            "trailing characters at line 1 column 21",
        ),
        (b"{", "", "EOF while parsing an object at line 1 column 1"),
        (b"", "", "EOF while parsing a value at line 1 column 0"),
        (
            b"{\"stringValue\":\"\xff\"}",
            "stringValue",
            "invalid unicode code point at line 1 column 17",
        ),
        (
            b"{\"stringValue\" 1}",
            "stringValue",
            "expected `:` at line 1 column 16",
        ),
    ];
    for (json, path, reason) in cases {
        let err =
            decode_message(&message(ECHO), json, &DecodeOptions::default()).expect_err("must fail");
        assert_eq!((err.path.as_str(), err.reason.as_str()), (path, reason));
    }
}

#[test]
fn enforces_the_depth_limit_everywhere() {
    let nest = |n: usize| {
        format!(
            "{}{}",
            r#"{"child":"#.repeat(n),
            "{}".to_owned() + &"}".repeat(n)
        )
    };
    let opts = DecodeOptions {
        max_depth: 4,
        ..DecodeOptions::default()
    };
    let nested = |json: String| decode_message(&message("tai.EchoNested"), json.as_bytes(), &opts);
    assert!(nested(nest(3)).is_ok());
    let err = nested(nest(4)).expect_err("too deep");
    assert_eq!(
        (err.path.as_str(), err.reason.as_str()),
        ("child.child.child.child", "nesting deeper than 4 levels")
    );

    let ignoring = DecodeOptions {
        ignore_unknown_fields: true,
        max_depth: 4,
    };
    let deep_unknown = br#"{"x":[[[[1]]]]}"#;
    let err = decode_message(&message(ECHO), deep_unknown, &ignoring).expect_err("too deep");
    assert_eq!(err.reason, "nesting deeper than 4 levels");
    let shallow_unknown = br#"{"x":[[1]],"stringValue":"kept"}"#;
    let msg = decode_message(&message(ECHO), shallow_unknown, &ignoring).expect("skips");
    assert_eq!(
        msg.get_field_by_name("string_value").as_deref(),
        Some(&Value::String("kept".into()))
    );

    let deep_struct = br#"{"structValue":{"a":{"b":{"c":{}}}}}"#;
    let err = decode_message(&message(ECHO), deep_struct, &opts).expect_err("too deep");
    assert_eq!(
        (err.path.as_str(), err.reason.as_str()),
        ("structValue.a.b.c", "nesting deeper than 4 levels")
    );
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
