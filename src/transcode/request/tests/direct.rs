//! Differential tests: `encode_request`'s direct JSON → wire path against `build_request` +
//! `encode_message`, over every JSON document the transcoder's other tests use, for every
//! message type of the test pool and several option sets.

use prost_reflect::{DynamicMessage, MessageDescriptor};

use super::super::{
    BodyRule, QueryOptions, RequestError, RequestParts, build_request, encode_message,
    encode_request,
};
use crate::transcode::json::test_pool::{message, pool};
use crate::transcode::json::{DecodeOptions, encode_wire};

/// Test sources whose raw string literals (`r#"..."#`) make up most of the corpus.
const SOURCES: [&str; 6] = [
    include_str!("../../json/tests.rs"),
    include_str!("../../json/tests/reject.rs"),
    include_str!("../../json/print_tests.rs"),
    include_str!("../../response_tests.rs"),
    include_str!("../tests.rs"),
    include_str!("query.rs"),
];

/// Cases the other tests lack: bool and integer map keys, packed runs, negative numbers,
/// exponents, presence, nesting, and their rejections.
const EXTRA: &[&str] = &[
    r#"{"id":"pol-42","policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"},"version":"3","createdAt":"2026-11-26T10:00:00Z","state":"POLICY_STATE_ACTIVE"}"#,
    r#"{"byBool":{"true":"y","false":"n"},"byUint64":{"18446744073709551615":-1},"bySint32":{"-5":-0.0,"7":1e300}}"#,
    r#"{"byFixed32":{"4294967295":"AAEC","0":""},"byEnum":{"-9223372036854775808":"RED","1":0}}"#,
    r#"{"nested":{"a":{"nested":{"b":{"child":{}}}}},"child":{"child":{"floatValue":1.5}}}"#,
    r#"{"sfixed":["-1",2,"3e2"],"doubles":[0,-0.0,"NaN","Infinity","-Infinity",1e-300],"flags":[true,false]}"#,
    r#"{"blobs":["","AA==","-_8","+/8="],"sfixed32Value":-2147483648,"floatValue":-3.4028234e38}"#,
    r#"{"maybe":"","sfixed":[],"doubles":[],"pickText":""}"#,
    r#"{"pickChild":{},"child":null,"maybe":null,"byBool":null}"#,
    r#"{"pickText":"a","pickChild":{}}"#,
    r#"{"pickText":null,"pickChild":{}}"#,
    r#"{"byBool":{"yes":"y"}}"#,
    r#"{"byBool":{"true":"y","true":"n"}}"#,
    r#"{"byUint64":{"-1":1}}"#,
    r#"{"byUint64":{"1":null}}"#,
    r#"{"bySint32":{"2147483648":1}}"#,
    r#"{"byEnum":{"1":"BLUE"}}"#,
    r#"{"sfixed":[null]}"#,
    r#"{"sfixed":[1,[2]]}"#,
    r#"{"doubles":"1"}"#,
    r#"{"flags":[1]}"#,
    r#"{"floatValue":3.5e38}"#,
    r#"{"child":{"child":{"child":{"child":{"child":{}}}}}}"#,
    r#"{"nested":{"a":{"bogus":1}}}"#,
    r#"{"count":0,"mood":"CALM","unpacked":[1,-2,3]}"#,
    r#"{"count":7,"item":{"label":"x"}}"#,
    r#"{"mood":3}"#,
    r#"{"stringValue":"","int32Value":0,"boolValue":false,"colors":[],"optionalInt32":0}"#,
    r#"{"int32Value":-1,"int64Value":"-2","sint32Value":-2147483648,"sint64Value":"-9223372036854775808"}"#,
    r#"{"int32Value":1E2,"uint32Value":2.5e1,"fixed64Value":1e15,"doubleValue":-1.5E-3}"#,
    r#"{"repeatedNested":[{"name":"a","values":[1,2,-3]},{},{"values":[]}]}"#,
    r#"{"int32ToString":{"-1":"a","2147483647":"b"},"stringToInt64":{"x":"9007199254740993"}}"#,
    r#"{"timestamp":"1970-01-01T00:00:00Z","duration":"-0.5s","int64Wrapper":"0","boolWrapper":false}"#,
    r#"{"timestamp":"0001-01-01T00:00:00.000000001+01:00"}"#,
    r#"{"duration":"315576000001s"}"#,
    r#"{"stringWrapper":null,"dynamicValue":null,"anyValue":{}}"#,
    r#"{"customJsonName":"x","json_named":"y"}"#,
    r#"{"string_value":"a","stringValue":"b"}"#,
    r#"null"#,
    r#"  {}  "#,
    r#"[]"#,
    r#""text""#,
    r#"{"stringValue":"a"} x"#,
    r#"{"stringValue":"a""#,
    "{\"stringValue\":\"\u{e9}\\u00e9\\ud83d\\ude00\"}",
];

/// Every raw string literal in the test sources, plus [`EXTRA`].
fn corpus() -> Vec<String> {
    let mut docs: Vec<String> = EXTRA.iter().map(|s| (*s).to_owned()).collect();
    for source in SOURCES {
        let mut rest = source;
        while let Some(at) = rest.find("r#\"") {
            let body = &rest[at + 3..];
            let Some(end) = body.find("\"#") else { break };
            docs.push(body[..end].to_owned());
            rest = &body[end + 2..];
        }
    }
    // Depth: our limit, and serde_json's own at 128 levels.
    for n in [3, 4, 5, 63, 64, 70, 130] {
        docs.push(format!("{}{{}}{}", r#"{"child":"#.repeat(n), "}".repeat(n)));
        docs.push(format!("{}{{}}{}", r#"{"a":"#.repeat(n), "}".repeat(n)));
        docs.push(format!(r#"{{"x":{}1{}}}"#, "[".repeat(n), "]".repeat(n)));
        docs.push(format!(
            r#"{{"structValue":{}{{}}{}}}"#,
            r#"{"a":"#.repeat(n),
            "}".repeat(n)
        ));
        docs.push(format!(
            r#"{{"repeatedNested":[{}{{}}{}]}}"#,
            r#"{"child":"#.repeat(n),
            "}".repeat(n)
        ));
    }
    docs.sort();
    docs.dedup();
    docs
}

/// Message types of the test pool that a request could name (map entries excluded).
fn targets() -> Vec<MessageDescriptor> {
    pool()
        .all_messages()
        .filter(|m| !m.is_map_entry())
        .filter(|m| m.package_name().starts_with("tai"))
        .collect()
}

fn option_sets() -> Vec<DecodeOptions> {
    let base = DecodeOptions::default();
    vec![
        base.clone(),
        DecodeOptions {
            ignore_unknown_fields: true,
            ..base.clone()
        },
        DecodeOptions {
            max_depth: 2,
            ..base.clone()
        },
        DecodeOptions {
            max_depth: 4,
            ..base.clone()
        },
        DecodeOptions {
            ignore_unknown_fields: true,
            max_depth: 3,
        },
    ]
}

fn old_path(
    desc: &MessageDescriptor,
    body: &str,
    opts: &DecodeOptions,
) -> Result<Vec<u8>, RequestError> {
    build_request(
        desc,
        &BodyRule::Whole,
        &parts(body),
        opts,
        &QueryOptions::default(),
    )
    .map(|msg| encode_message(&msg))
}

fn parts(body: &str) -> RequestParts<'_> {
    RequestParts {
        path_bindings: &[],
        query: None,
        body: body.as_bytes(),
        content_type: Some("application/json"),
    }
}

/// Equal bytes, or (fields in another order, map entries in another order) equal messages.
fn same_message(desc: &MessageDescriptor, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let decode = |bytes: &[u8]| DynamicMessage::decode(desc.clone(), bytes).expect("valid wire");
    decode(a) == decode(b)
}

#[test]
fn direct_encoding_matches_dynamic_message_path_for_every_corpus_document() {
    let (docs, targets) = (corpus(), targets());
    assert!(docs.len() > 250, "corpus has only {} documents", docs.len());
    let (mut direct_ok, mut direct_err, mut fallbacks) = (0, 0, 0);
    for opts in option_sets() {
        for desc in &targets {
            for doc in &docs {
                let old = old_path(desc, doc, &opts);
                let new = encode_request(
                    desc,
                    &BodyRule::Whole,
                    &parts(doc),
                    &opts,
                    &QueryOptions::default(),
                );
                let context = || format!("{} {doc} {opts:?}", desc.full_name());
                match (&old, &new) {
                    (Ok(a), Ok(b)) => {
                        assert!(same_message(desc, a, b), "{}: {a:?} vs {b:?}", context())
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", context()),
                    _ => panic!("{}: {old:?} vs {new:?}", context()),
                }
                match encode_wire(desc, doc.as_bytes(), &opts) {
                    Ok(Some(_)) => direct_ok += 1,
                    Ok(None) => fallbacks += 1,
                    Err(_) => direct_err += 1,
                }
            }
        }
    }
    // The comparison means something only if the direct path really ran, both ways.
    assert!(direct_ok > 1000, "{direct_ok} direct successes");
    assert!(direct_err > 1000, "{direct_err} direct rejections");
    assert!(fallbacks > 0, "no group field fell back");
}

#[test]
fn group_fields_take_the_dynamic_message_path() {
    let desc = message("tai_test.Legacy");
    let doc = r#"{"count":7,"item":{"label":"x"}}"#;
    let opts = DecodeOptions::default();
    assert_eq!(encode_wire(&desc, doc.as_bytes(), &opts), Ok(None));
    let encoded = encode_request(
        &desc,
        &BodyRule::Whole,
        &parts(doc),
        &opts,
        &QueryOptions::default(),
    );
    assert_eq!(encoded, old_path(&desc, doc, &opts));
}

#[test]
fn policy_request_is_encoded_directly_and_decodes_to_the_same_message() {
    let desc = message("tai.Policy");
    let doc = EXTRA[0];
    let opts = DecodeOptions::default();
    let direct = encode_wire(&desc, doc.as_bytes(), &opts)
        .expect("valid")
        .expect("no fallback for Policy");
    let old = old_path(&desc, doc, &opts).expect("valid");
    assert!(same_message(&desc, &direct, &old));
}

#[test]
fn bodies_that_are_not_utf8_or_not_json_fail_alike() {
    let desc = message("tai.EchoMessage");
    let opts = DecodeOptions::default();
    let bodies: [&[u8]; 6] = [
        b"{\"stringValue\":\"\xff\"}",
        b"{\"stringValue\":\"a\"}\xff",
        b"\xef\xbb\xbf{}",
        b"  ",
        b"{\"stringValue\":\"\\ud800\"}",
        b"{\"string\xc3\xa9\":1}",
    ];
    for body in bodies {
        let parts = RequestParts {
            path_bindings: &[],
            query: None,
            body,
            content_type: None,
        };
        let query = QueryOptions::default();
        let old = build_request(&desc, &BodyRule::Whole, &parts, &opts, &query)
            .map(|msg| encode_message(&msg));
        let new = encode_request(&desc, &BodyRule::Whole, &parts, &opts, &query);
        assert!(old.is_err(), "{body:?} must be rejected");
        assert_eq!(old, new, "{body:?}");
    }
}
