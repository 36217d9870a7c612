//! CORS for browsers calling through the gateway (today: gRPC-Web methods): the preflight
//! answer, and the headers an allowed origin's actual responses carry.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::body::ResponseBody;
use crate::config::CorsConfig;

/// The request's `Origin`, when the policy allows it.
pub fn allowed_origin(
    cors: Option<&CorsConfig>,
    origin: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    let origin = origin?;
    cors?.allows(origin.to_str().ok()?).then(|| origin.clone())
}

/// True for a CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: 204 with the grant for an allowed origin, else 403 without one.
pub fn preflight(cors: Option<&CorsConfig>, headers: &HeaderMap) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::new()).into());
    let origin = allowed_origin(cors, headers.get(header::ORIGIN));
    let (Some(origin), Some(cors)) = (origin, cors) else {
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    };
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    if let Ok(value) = HeaderValue::from_str(&cors.allow_headers.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(cors.max_age.as_secs()),
    );
    response
}

/// Grants an allowed `origin` on an actual response (errors included).
pub fn grant(cors: &CorsConfig, origin: HeaderValue, headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Ok(value) = HeaderValue::from_str(&cors.expose_headers.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
}
