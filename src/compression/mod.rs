//! gzip between the gateway and HTTP clients: answers compressed for clients whose
//! `Accept-Encoding` allows it (whole answers past a size, streams message by message, each one
//! flushed so it arrives when it happens), and gzip request bodies decompressed under the
//! route's body limit.
//!
//! # Layout
//! - [`accept`]: what `Accept-Encoding` allows (q-values: `gzip;q=0` is a no).
//! - [`gzip`]: the compressed body of a streamed answer, and of a whole one; inflating under a
//!   limit (request bodies, gRPC messages from backends).
//! - [`request`]: a request body's `Content-Encoding`.

pub mod accept;
pub mod gzip;
pub mod request;

use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::body::ResponseBody;
use crate::config::CompressionConfig;

pub use request::{ContentEncoding, RequestEncodingError};

/// `response`, compressed when the policy and the client allow: its type is one `config`
/// compresses, nothing encoded it already, and a whole body is at least `min_size`. An answer
/// whose form depends on `Accept-Encoding` says so in `Vary`.
pub fn compress(
    response: Response<ResponseBody>,
    accepts_gzip: bool,
    config: &CompressionConfig,
) -> Response<ResponseBody> {
    if !config.enabled || !compressible(&response, config) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let body = if body.is_stream() {
        if accepts_gzip {
            ResponseBody::stream(gzip::GzipBody::new(body, config.level))
        } else {
            body
        }
    } else {
        let whole = body.into_whole().unwrap_or_default();
        if whole.len() < config.min_size {
            return Response::from_parts(parts, Full::new(whole).into());
        }
        if accepts_gzip {
            Full::new(gzip::whole(&whole, config.level)).into()
        } else {
            Full::new(whole).into()
        }
    };
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    if accepts_gzip {
        parts.headers.remove(header::CONTENT_LENGTH);
        parts
            .headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        gzip_etag(&mut parts.headers);
    }
    Response::from_parts(parts, body)
}

/// A strong `ETag` names one representation: its gzip form gets its own tag, `"…-gzip"`.
fn gzip_etag(headers: &mut http::HeaderMap) {
    let Some(tag) = headers.get(header::ETAG).and_then(|t| t.to_str().ok()) else {
        return;
    };
    if tag.starts_with("W/") || !tag.ends_with('"') {
        return;
    }
    let tagged = format!("{}-gzip\"", &tag[..tag.len() - 1]);
    if let Ok(value) = HeaderValue::from_str(&tagged) {
        headers.insert(header::ETAG, value);
    }
}

/// A type the policy compresses, not encoded already, with a body to compress.
fn compressible(response: &Response<ResponseBody>, config: &CompressionConfig) -> bool {
    let status = response.status();
    let bodiless = status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational();
    let headers = response.headers();
    !bodiless
        && !headers.contains_key(header::CONTENT_ENCODING)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| config.compresses(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::io::Read;

    fn answer(content_type: &str, body: &str) -> Response<ResponseBody> {
        let mut response = Response::new(Full::new(Bytes::from(body.to_owned())).into());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("type"),
        );
        response
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .expect("gzip");
        text
    }

    #[test]
    fn a_large_json_answer_is_gzipped_and_says_so() {
        let config = CompressionConfig::default();
        let json = format!("{{\"a\":\"{}\"}}", "x".repeat(2000));
        let response = compress(answer("application/json", &json), true, &config);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let body = response.into_body().into_whole().expect("whole");
        assert!(body.len() < 200, "{}", body.len());
        assert_eq!(gunzip(&body), json);
    }

    #[test]
    fn a_gzipped_answer_has_its_own_strong_tag_and_weak_tags_stay() {
        let config = CompressionConfig::default();
        let json = "x".repeat(2000);
        let tagged = |tag: &str, gzip: bool| {
            let mut response = answer("application/json", &json);
            let value = HeaderValue::from_str(tag).expect("tag");
            response.headers_mut().insert(header::ETAG, value);
            compress(response, gzip, &config).headers()[header::ETAG].clone()
        };
        assert_eq!(tagged("\"abc\"", true), "\"abc-gzip\"");
        assert_eq!(tagged("\"abc\"", false), "\"abc\"");
        assert_eq!(tagged("W/\"abc\"", true), "W/\"abc\"");
    }

    #[test]
    fn small_binary_or_unaccepted_answers_are_left_alone() {
        let config = CompressionConfig::default();
        let small = compress(answer("application/json", "{}"), true, &config);
        assert!(!small.headers().contains_key(header::CONTENT_ENCODING));
        assert!(!small.headers().contains_key(header::VARY));
        let large = "x".repeat(5000);
        let png = compress(answer("image/png", &large), true, &config);
        assert!(!png.headers().contains_key(header::CONTENT_ENCODING));
        let refused = compress(answer("application/json", &large), false, &config);
        assert!(!refused.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(refused.headers()[header::VARY], "accept-encoding");
        let mut encoded = answer("application/json", &large);
        encoded
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        let encoded = compress(encoded, true, &config);
        assert_eq!(encoded.headers()[header::CONTENT_ENCODING], "br");
    }
}
