//! CORS for browsers calling through the gateway, JSON and gRPC-Web routes alike: the preflight
//! answer (before rate limits and authentication: a preflight carries no credentials), and the
//! grant every actual response to an allowed origin carries, errors included.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::body::ResponseBody;
use crate::config::{CorsConfig, Origin};

/// Why the gateway refuses a preflight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsRefusal {
    /// The `Origin` header is not an origin serialization.
    #[error("malformed Origin header `{origin}`: {reason}")]
    MalformedOrigin {
        /// The header as sent (lossily decoded).
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The route's policy does not list the origin.
    #[error("origin `{0}` may not call this route from a browser")]
    OriginNotAllowed(String),
    /// The route has no CORS policy.
    #[error("this route does not allow cross-origin calls from browsers (it has no cors policy)")]
    NotEnabled,
}

/// The request's `Origin`, when the policy allows it (a malformed one is never allowed).
pub fn allowed_origin(
    cors: Option<&CorsConfig>,
    origin: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    let origin = origin?;
    let parsed = Origin::parse(origin.to_str().ok()?).ok()?;
    cors?.allows(&parsed).then(|| origin.clone())
}

/// True for a CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight for a path where `methods` exist (`GET, POST`): 204 with the grant
/// for an allowed origin; a refusal otherwise, answered as a JSON error without a grant.
pub fn preflight(
    cors: Option<&CorsConfig>,
    headers: &HeaderMap,
    methods: &str,
) -> Result<Response<ResponseBody>, CorsRefusal> {
    let origin = headers
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let text = origin.to_str().map_err(|_| CorsRefusal::MalformedOrigin {
        origin: String::from_utf8_lossy(origin.as_bytes()).into_owned(),
        reason: "it is not ASCII",
    })?;
    let parsed = Origin::parse(text).map_err(|reason| CorsRefusal::MalformedOrigin {
        origin: text.to_owned(),
        reason,
    })?;
    let cors = cors.ok_or(CorsRefusal::NotEnabled)?;
    if !cors.allows(&parsed) {
        return Err(CorsRefusal::OriginNotAllowed(text.to_owned()));
    }
    let mut response = Response::new(Full::new(Bytes::new()).into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    // The answer depends on what was asked, not only on the origin.
    let vary = "origin, access-control-request-method, access-control-request-headers";
    out.insert(header::VARY, HeaderValue::from_static(vary));
    grant_origin(cors, origin, out);
    let methods = format!("{methods}, OPTIONS");
    if let Ok(value) = HeaderValue::from_str(&methods) {
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    if let Ok(value) = HeaderValue::from_str(&cors.allow_headers.join(", ")) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(cors.max_age.as_secs()),
    );
    Ok(response)
}

/// Grants an allowed `origin` on a response (errors included).
pub fn grant(cors: &CorsConfig, origin: HeaderValue, headers: &mut HeaderMap) {
    grant_origin(cors, origin, headers);
    if let Ok(value) = HeaderValue::from_str(&cors.expose_headers.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
}

/// `Access-Control-Allow-Origin` (and `-Credentials` when the policy allows them): what a
/// preflight and an actual answer both carry.
fn grant_origin(cors: &CorsConfig, origin: HeaderValue, headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if cors.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// The CORS part of any response of a route with policy `cors`: `Vary: Origin` (the answer
/// depends on it, for caches) and the grant when the request's origin is allowed.
pub fn apply(cors: &CorsConfig, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = allowed_origin(Some(cors), origin) {
        grant(cors, origin, headers);
    }
}
