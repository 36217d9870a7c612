//! Checks of the JSON and header mapping options: `transcoding:` and `headers:` (top level, and
//! per route over the top level), and `transcoding.path_unescape` (top level only).

use super::checker::{Checker, place};
use crate::config::raw::{At, RawHeaders, RawTranscoding};
use crate::config::route::{HeaderRules, TranscodingOptions};
use crate::config::streaming::StreamFormat;
use crate::transcode::router::UnescapeMode;

/// Headers that carry protocol meaning on one side or the other and must never be copied across.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
    "content-type",
    "content-encoding",
    ":authority",
    "user-agent",
];

/// A `transcoding:` section over `base` (the defaults, or the top-level section for a route).
pub(super) fn transcoding(
    c: &mut Checker<'_>,
    base: &TranscodingOptions,
    raw: &RawTranscoding,
    key: &str,
) -> TranscodingOptions {
    let mut t = base.clone();
    switches(&mut t, raw);
    if let Some(v) = &raw.path_unescape
        && key != "transcoding"
    {
        c.error(
            place(v),
            format!("{key}.path_unescape"),
            "can only be set in the top-level transcoding section",
        );
    }
    if let Some(v) = &raw.max_json_depth {
        if v.value == 0 || v.value > 1000 {
            c.error(
                place(v),
                format!("{key}.max_json_depth"),
                "must be between 1 and 1000",
            );
        } else {
            t.max_json_depth = v.value;
        }
    }
    if let Some(v) = &raw.max_request_bytes
        && let Some(n) = c.size(v, &format!("{key}.max_request_bytes"))
    {
        t.max_request_bytes = n;
    }
    if let Some(v) = &raw.stream_format
        && let Some(format) = stream_format(c, v, key)
    {
        t.stream_format = format;
    }
    t
}

/// The options any value of their type is valid for: written ones replace those of `t`.
fn switches(t: &mut TranscodingOptions, raw: &RawTranscoding) {
    if let Some(v) = raw.ignore_unknown_fields {
        t.ignore_unknown_fields = v;
    }
    if let Some(v) = raw.ignore_unknown_query_parameters {
        t.ignore_unknown_query_parameters = v;
    }
    if let Some(v) = &raw.ignored_query_parameters {
        t.ignored_query_parameters = v.clone();
    }
    if let Some(v) = raw.query_unescape_plus {
        t.query_unescape_plus = v;
    }
    if let Some(v) = raw.emit_defaults {
        t.emit_defaults = v;
    }
    if let Some(v) = raw.proto_field_names {
        t.proto_field_names = v;
    }
    if let Some(v) = raw.enums_as_ints {
        t.enums_as_ints = v;
    }
}

/// `<key>.stream_format`: `json_array`, `ndjson` or `sse`.
fn stream_format(c: &mut Checker<'_>, v: &At<String>, key: &str) -> Option<StreamFormat> {
    let format = StreamFormat::parse(&v.value);
    if format.is_none() {
        c.error(
            place(v),
            format!("{key}.stream_format"),
            format!(
                "unknown stream format `{}` (expected json_array, ndjson or sse)",
                v.value
            ),
        );
    }
    format
}

/// A `headers:` section; an empty list keeps `base`'s list.
pub(super) fn header_rules(
    c: &mut Checker<'_>,
    base: &HeaderRules,
    raw: &RawHeaders,
    key: &str,
) -> HeaderRules {
    HeaderRules {
        request_to_metadata: header_list(
            c,
            &raw.request_to_metadata,
            &format!("{key}.request_to_metadata"),
            &base.request_to_metadata,
        ),
        metadata_to_response: header_list(
            c,
            &raw.metadata_to_response,
            &format!("{key}.metadata_to_response"),
            &base.metadata_to_response,
        ),
    }
}

/// One list of header names (lower-cased; a trailing `*` is a prefix), or `fallback` when empty.
/// Names HTTP or gRPC give a meaning to are refused.
fn header_list(
    c: &mut Checker<'_>,
    items: &[At<String>],
    key: &str,
    fallback: &[String],
) -> Vec<String> {
    if items.is_empty() {
        return fallback.to_vec();
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name_lc = item.value.trim().to_ascii_lowercase();
        let stem = name_lc.strip_suffix('*').unwrap_or(&name_lc);
        let valid = !stem.is_empty()
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !valid {
            c.error(
                place(item),
                format!("{key}[{i}]"),
                format!("`{}` is not a header name", item.value),
            );
        } else if RESERVED_HEADERS.contains(&stem) || stem.starts_with("grpc-") {
            c.error(
                place(item),
                format!("{key}[{i}]"),
                format!(
                    "`{}` is reserved by HTTP or gRPC and cannot be forwarded",
                    item.value
                ),
            );
        } else {
            out.push(name_lc);
        }
    }
    out
}

/// `transcoding.path_unescape`: how multi-segment path variables are percent-decoded.
pub(super) fn path_unescape(c: &mut Checker<'_>, raw: Option<&At<String>>) -> UnescapeMode {
    let Some(v) = raw else {
        return UnescapeMode::AllExceptReserved;
    };
    match v.value.as_str() {
        "all_except_reserved" => UnescapeMode::AllExceptReserved,
        "all_except_slash" => UnescapeMode::AllExceptSlash,
        "all" => UnescapeMode::All,
        other => {
            c.error(
                place(v),
                "transcoding.path_unescape",
                format!("`{other}`: use all_except_reserved, all_except_slash or all"),
            );
            UnescapeMode::AllExceptReserved
        }
    }
}
