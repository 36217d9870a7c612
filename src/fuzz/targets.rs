//! The transcoding and gRPC-framing fuzz targets (the JWT one sits beside the private token
//! reader, in `edge::auth::token`). Each is a `#[test]`; see the parent module for the bounds.

use bytes::{Bytes, BytesMut};
use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::transcode::json::test_pool::message;
use crate::transcode::json::{
    DecodeOptions, EncodeOptions, decode_message, encode_message_json, print_wire_message,
};
use crate::transcode::request::{
    BodyRule, QueryOptions, RequestError, RequestParts, build_request, encode_message,
    encode_request,
};
use crate::transcode::router::{RouterBuilder, UnescapeMode};
use crate::transcode::template::PathTemplate;
use crate::upstream::codec::{MessageEncoding, frame, take_frame, unframe_single};

/// Template and path syntax.
const PATH_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"=",
    b"*",
    b"**",
    b"/",
    b":",
    b"%2F",
    b"%",
    b"\n",
    b".",
    b"{a.b=**}",
];

/// Member names and values of `tai.EchoMessage`.
const JSON_TOKENS: &[&[u8]] = &[
    b"\"stringValue\":",
    b"\"int64Value\":",
    b"\"uint64Value\":",
    b"\"floatValue\":",
    b"\"bytesValue\":",
    b"\"color\":",
    b"\"nested\":{",
    b"\"repeatedNested\":[",
    b"\"stringToInt64\":{",
    b"\"int32ToString\":{",
    b"\"timestamp\":",
    b"\"duration\":",
    b"\"fieldMask\":",
    b"\"structValue\":",
    b"\"dynamicValue\":",
    b"\"anyValue\":{\"@type\":\"type.googleapis.com/tai.EchoNested\"",
    b"\"@type\":",
    b"\"type.googleapis.com/google.protobuf.Any\"",
    b"\"value\":",
    b"\"choiceText\":",
    b"\"choiceNumber\":",
    b"\"optionalInt32\":",
    b"\"NaN\"",
    b"\"Infinity\"",
    b"\"1970-01-01T00:00:00Z\"",
    b"\"1.5s\"",
    b"\\u0000",
    b"{}",
    b"[]",
    b",",
];

/// Parameter names and syntax of the three query targets.
const QUERY_TOKENS: &[&[u8]] = &[
    b"&",
    b"=",
    b"%",
    b"%5B",
    b"%5D",
    b"[",
    b"]",
    b".",
    b"+",
    b"string_to_int64",
    b"int32ToString",
    b"by_bool",
    b"by_uint64",
    b"nested",
    b"child.",
    b"filter.name_prefix",
    b"states",
    b"created_after",
    b"max_age",
    b"read_mask",
    b"min_version",
    b"cursor",
    b"choice_text",
    b"colors",
];

/// Frame headers: empty, short, compressed, huge.
const FRAME_TOKENS: &[&[u8]] = &[
    b"\0\0\0\0\0",
    b"\0\0\0\0\x05",
    b"\x01\0\0\0\x01",
    b"\0\xff\xff\xff\xff",
    b"\0\0\0\x10\0",
];

/// Templates every router of the path target holds besides the fuzzed one.
const FIXED_TEMPLATES: &[&str] = &[
    "/v1/policies/{id}",
    "/v1/{parent=tenants/*}/policies:search",
    "/v1/documents/{path=**}",
    "/v1/policies/{id}:enforce",
    "/v1/{name=shelves/*/books/**}/x",
];

/// `template\npath`: the template is parsed (its canonical form must parse to itself) and
/// routed beside fixed ones; the path is looked up under every unescape mode.
#[test]
fn fuzz_path_templates() {
    super::run("path_template", PATH_TOKENS, |input| {
        let text = String::from_utf8_lossy(input);
        let (template, path) = text.split_once('\n').unwrap_or((&text, "/"));
        let parsed = PathTemplate::parse(template).ok();
        if let Some(parsed) = &parsed {
            let canonical = parsed.canonical();
            let again = PathTemplate::parse(&canonical).expect("a canonical form parses");
            assert_eq!(
                again.canonical(),
                canonical,
                "canonical form of {template:?}"
            );
        }
        for mode in [
            UnescapeMode::AllExceptReserved,
            UnescapeMode::AllExceptSlash,
            UnescapeMode::All,
        ] {
            let mut builder = RouterBuilder::new(mode);
            for (i, fixed) in FIXED_TEMPLATES.iter().enumerate() {
                let fixed = PathTemplate::parse(fixed).expect("fixed template");
                builder.insert("GET", fixed, i).expect("no conflict");
            }
            if let Some(parsed) = parsed.clone() {
                let _ = builder.insert("*", parsed, usize::MAX);
            }
            let _ = builder.build().lookup("GET", path);
        }
    });
}

fn print(msg: &DynamicMessage) -> String {
    let json = encode_message_json(msg, &EncodeOptions::default())
        .unwrap_or_else(|e| panic!("an accepted message must print: {e}"));
    String::from_utf8(json).expect("printed JSON is UTF-8")
}

/// JSON bodies for `tai.EchoMessage` (every field kind): the streaming decoder and the direct
/// wire encoder must agree (same message or the same error), an accepted message must print,
/// its printed JSON must decode to a message that prints the same, and the wire-bytes printer
/// must print what the `DynamicMessage` printer does.
#[test]
fn fuzz_json_to_protobuf() {
    let desc = message("tai.EchoMessage");
    super::run("json_every_kind", JSON_TOKENS, |input| {
        check_json(&desc, input)
    });
}

fn check_json(desc: &MessageDescriptor, input: &[u8]) {
    let opts = DecodeOptions::default();
    let parts = RequestParts {
        path_bindings: &[],
        query: None,
        body: input,
        content_type: None,
    };
    let direct = encode_request(
        desc,
        &BodyRule::Whole,
        &parts,
        &opts,
        &QueryOptions::default(),
    );
    if input.is_empty() {
        return; // An empty body is an empty message for `body: "*"`, and no JSON document.
    }
    match (decode_message(desc, input, &opts), direct) {
        (Ok(msg), Ok(wire)) => {
            let printed = print(&msg);
            // What each path sends: the same message (compared as printed, map order aside).
            let decoded = |bytes: &[u8]| {
                let msg = DynamicMessage::decode(desc.clone(), bytes).expect("wire decodes");
                print(&msg)
            };
            let sent = decoded(&wire);
            assert_eq!(
                sent,
                decoded(&encode_message(&msg)),
                "direct encoder differs"
            );
            if let Some(fast) = print_wire_message(desc, &wire, &EncodeOptions::default()) {
                assert_eq!(String::from_utf8_lossy(&fast), sent, "wire printer differs");
            }
            let again = decode_message(desc, printed.as_bytes(), &opts)
                .unwrap_or_else(|e| panic!("printed JSON does not read back: {e}"));
            assert_eq!(print(&again), printed, "round trip changed the message");
        }
        (Err(slow), Err(direct)) => assert_eq!(RequestError::Json(slow), direct),
        (slow, direct) => panic!("decoders disagree: {slow:?} vs {direct:?}"),
    }
}

/// Query strings bound to three request types (nested, repeated, well-known, map fields): no
/// panic, and whatever binds must print.
#[test]
fn fuzz_query_binding() {
    let targets = [
        message("tai.EchoMessage"),
        message("tai.SearchPoliciesRequest"),
        message("tai_test.KeyedMaps"),
    ];
    super::run("query_binding", QUERY_TOKENS, |input| {
        let query = String::from_utf8_lossy(input);
        for desc in &targets {
            let parts = RequestParts {
                path_bindings: &[],
                query: Some(&query),
                body: b"",
                content_type: None,
            };
            for opts in [
                QueryOptions::default(),
                QueryOptions {
                    ignore_unknown: true,
                    unescape_plus: true,
                    ..QueryOptions::default()
                },
            ] {
                if let Ok(msg) = build_request(
                    desc,
                    &BodyRule::None,
                    &parts,
                    &DecodeOptions::default(),
                    &opts,
                ) {
                    print(&msg);
                }
            }
        }
    });
}

/// Response bodies for the gRPC frame decoders: the first byte picks a chunk size for the
/// stream decoder; a body the unary decoder takes must be exactly one stream message, and every
/// message the stream decoder takes must re-frame to the bytes it consumed.
#[test]
fn fuzz_grpc_frames() {
    super::run("grpc_frames", FRAME_TOKENS, |input| {
        let Some((&chunk, body)) = input.split_first() else {
            return;
        };
        let chunk = usize::from(chunk % 16) + 1;
        let (messages, consumed, failed) = stream_decode(body, chunk);
        let mut reframed = Vec::new();
        for m in &messages {
            reframed.extend_from_slice(&frame(m));
        }
        assert_eq!(
            reframed,
            body[..consumed],
            "re-framed messages differ from the input"
        );
        if let Ok(single) = unframe_single(Bytes::copy_from_slice(body)) {
            assert!(
                !failed && consumed == body.len(),
                "unary took what the stream refused"
            );
            assert_eq!(messages, vec![single]);
        }
    });
}

/// Feeds `body` to [`take_frame`] `chunk` bytes at a time: the messages, the bytes they took,
/// and whether the decoder refused the stream.
fn stream_decode(body: &[u8], chunk: usize) -> (Vec<Bytes>, usize, bool) {
    const LIMIT: usize = 1 << 16;
    let mut buffer = BytesMut::new();
    let (mut messages, mut consumed) = (Vec::new(), 0);
    for piece in body.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            match take_frame(&mut buffer, LIMIT, &MessageEncoding::Identity) {
                Ok(Some(message)) => {
                    consumed += 5 + message.len();
                    messages.push(message);
                }
                Ok(None) => break,
                Err(_) => return (messages, consumed, true),
            }
        }
    }
    (messages, consumed, false)
}
