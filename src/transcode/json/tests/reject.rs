//! Rejections: every invalid input names its path and reason.

use prost_reflect::Value;

use super::ECHO;
use crate::transcode::json::test_pool::message;
use crate::transcode::json::{DecodeOptions, decode_message};

/// Decodes each input as a `tai.EchoMessage` and checks the error's path and reason.
fn assert_rejects<J: AsRef<[u8]>>(cases: &[(J, &str, &str)]) {
    for (json, path, reason) in cases {
        let json = json.as_ref();
        let err =
            decode_message(&message(ECHO), json, &DecodeOptions::default()).expect_err("must fail");
        assert_eq!(
            (err.path.as_str(), err.reason.as_str()),
            (*path, *reason),
            "input {}",
            String::from_utf8_lossy(json)
        );
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
            "9.007199254740992e15 is too large to be exact in exponent or fraction form; write the integer digits",
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
    assert_rejects(&cases);
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
            "auth",
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
            r#"{"anyValue":{"@type":"empty-any.tai-gateway.invalid/tai.Policy"}}"#,
            "anyValue",
            "`@type` `empty-any.tai-gateway.invalid/tai.Policy` uses the prefix reserved for empty Any values",
        ),
        (
            // Fuzz finding: resolved by the pool, but printed as an ordinary message.
            r#"{"anyValue":{"@type":"type.googleapis.com/.google.protobuf.Duration","value":"1s"}}"#,
            "anyValue",
            "`@type` `type.googleapis.com/.google.protobuf.Duration` names `.google.protobuf.Duration`: a type name has no leading dot",
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
    assert_rejects(&cases);
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
    assert_rejects(&cases);
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
