//! Every way a request can fail, and the ONE table that turns a failure into the response a client
//! sees: HTTP status, gRPC code, and the JSON body `{"code":…,"message":…,"details":[…]}`
//! (the `google.rpc.Status` shape; codes and HTTP mapping from `google/rpc/code.proto`).

use http::{HeaderValue, StatusCode, header};
use prost_reflect::DescriptorPool;

use crate::transcode::json::EncodeOptions;
use crate::transcode::request::RequestError;
use crate::upstream::{GrpcStatus, UpstreamError};

/// gRPC status codes used by the gateway's own errors (`google.rpc.Code`).
pub mod code {
    /// Not an error.
    pub const OK: i32 = 0;
    /// The client went away.
    pub const CANCELLED: i32 = 1;
    /// Unknown error.
    pub const UNKNOWN: i32 = 2;
    /// The request is malformed.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// The deadline passed.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// No such resource or route.
    pub const NOT_FOUND: i32 = 5;
    /// A resource or size limit was hit.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// The caller is authenticated but not allowed.
    pub const PERMISSION_DENIED: i32 = 7;
    /// The operation is not implemented (or not allowed on this path).
    pub const UNIMPLEMENTED: i32 = 12;
    /// An internal invariant broke, or the backend spoke invalid gRPC.
    pub const INTERNAL: i32 = 13;
    /// The backend cannot be reached.
    pub const UNAVAILABLE: i32 = 14;
    /// The request has no valid credentials.
    pub const UNAUTHENTICATED: i32 = 16;
}

/// A failed request, from any stage of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No route has a template matching the path.
    #[error("no route for {path}")]
    RouteNotFound {
        /// The request path.
        path: String,
    },
    /// The path matches routes, but none for this HTTP method.
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
        /// Methods that would match.
        allow: Vec<String>,
    },
    /// The path has malformed percent-encoding.
    #[error("malformed request path: {0}")]
    MalformedPath(String),
    /// The request body's media type cannot be transcoded.
    #[error("unsupported content type `{0}`; send application/json")]
    UnsupportedMediaType(String),
    /// The request body exceeds the route's limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The client's `grpc-timeout` header is malformed.
    #[error("invalid grpc-timeout header `{0}`")]
    InvalidTimeout(String),
    /// The request body could not be read from the client.
    #[error("cannot read request body: {0}")]
    BodyRead(String),
    /// The client's `x-request-timeout` header is not a positive duration (`250ms`, `2s`).
    #[error("invalid x-request-timeout header `{0}`: use a positive duration such as 250ms or 2s")]
    InvalidRequestTimeout(String),
    /// The client did not send the whole request body in time.
    #[error("request body not received within {after:?}")]
    BodyReadTimeout {
        /// The configured `limits.body_read_timeout`.
        after: std::time::Duration,
    },
    /// The request could not be turned into a gRPC message.
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    /// The backend could not be called or spoke invalid gRPC.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The backend answered with a non-OK gRPC status.
    #[error("backend returned gRPC status {}: {}", .0.code, .0.message)]
    Backend(GrpcStatus),
    /// The backend's answer could not be turned into JSON.
    #[error("cannot transcode the backend response: {0}")]
    ResponseTranscode(String),
    /// No valid token (401) or a token without the required audience, scope or claim (403).
    #[error(transparent)]
    Auth(#[from] crate::pipeline::auth::AuthError),
    /// A rate limit refused the request (429).
    #[error(transparent)]
    RateLimited(#[from] crate::pipeline::rate_limit::Exceeded),
}

/// What a [`GatewayError`] looks like on the wire.
#[derive(Debug)]
pub struct ErrorReply {
    /// HTTP status.
    pub status: StatusCode,
    /// gRPC code in the body.
    pub code: i32,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Extra headers (`Allow`, ...).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// HTTP status for a gRPC code (`google/rpc/code.proto`; FAILED_PRECONDITION is 400, not 412,
/// as every transcoder agrees). Codes outside the table are 500.
pub fn http_status_for(code: i32) -> StatusCode {
    match code {
        0 => StatusCode::OK,
        1 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        4 => StatusCode::GATEWAY_TIMEOUT,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        8 => StatusCode::TOO_MANY_REQUESTS,
        12 => StatusCode::NOT_IMPLEMENTED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        16 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl GatewayError {
    /// The one mapping from failure to response. `pool` decodes backend error details.
    pub fn to_reply(&self, pool: &DescriptorPool, json: &EncodeOptions) -> ErrorReply {
        let message = self.to_string();
        let (status, code, field) = match self {
            GatewayError::RouteNotFound { .. } => (StatusCode::NOT_FOUND, code::NOT_FOUND, None),
            GatewayError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, code::UNIMPLEMENTED, None)
            }
            GatewayError::MalformedPath(_)
            | GatewayError::InvalidTimeout(_)
            | GatewayError::InvalidRequestTimeout(_)
            | GatewayError::BodyRead(_) => (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT, None),
            GatewayError::BodyReadTimeout { .. } => {
                (StatusCode::REQUEST_TIMEOUT, code::DEADLINE_EXCEEDED, None)
            }
            GatewayError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID_ARGUMENT,
                None,
            ),
            GatewayError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                code::RESOURCE_EXHAUSTED,
                None,
            ),
            GatewayError::BadRequest(e) => {
                (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT, e.field())
            }
            GatewayError::Upstream(UpstreamError::Unavailable { .. })
            | GatewayError::Upstream(UpstreamError::CircuitOpen { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, None)
            }
            GatewayError::Upstream(UpstreamError::DeadlineExceeded { .. }) => {
                (StatusCode::GATEWAY_TIMEOUT, code::DEADLINE_EXCEEDED, None)
            }
            GatewayError::Upstream(UpstreamError::InvalidResponse { .. })
            | GatewayError::ResponseTranscode(_) => (StatusCode::BAD_GATEWAY, code::INTERNAL, None),
            GatewayError::Auth(e) if e.is_forbidden() => {
                (StatusCode::FORBIDDEN, code::PERMISSION_DENIED, None)
            }
            GatewayError::Auth(_) => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, None),
            GatewayError::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                code::RESOURCE_EXHAUSTED,
                None,
            ),
            GatewayError::Backend(status) => {
                let body = crate::transcode::response::status_to_json(
                    pool,
                    status.code,
                    &status.message,
                    status.details.as_deref(),
                    json,
                );
                return ErrorReply {
                    status: http_status_for(status.code),
                    code: status.code,
                    body,
                    headers: Vec::new(),
                };
            }
        };
        let mut headers = Vec::new();
        if let GatewayError::MethodNotAllowed { allow, .. } = self
            && let Ok(value) = HeaderValue::from_str(&allow.join(", "))
        {
            headers.push((header::ALLOW, value));
        }
        if let GatewayError::Upstream(UpstreamError::CircuitOpen { retry_after, .. }) = self {
            let secs = crate::upstream::retry_after_secs(*retry_after);
            headers.push((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if let GatewayError::Auth(e) = self {
            headers.push((header::WWW_AUTHENTICATE, e.challenge()));
        }
        if let GatewayError::RateLimited(e) = self {
            headers.extend(e.headers());
        }
        ErrorReply {
            status,
            code,
            body: error_json(code, &message, field.as_deref()),
            headers,
        }
    }
}

/// `{"code":…,"message":…,"details":[…]}`; a field path becomes a `google.rpc.BadRequest` detail.
pub fn error_json(code: i32, message: &str, field: Option<&str>) -> Vec<u8> {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".to_owned());
    let details = match field {
        Some(field) => format!(
            r#"[{{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{{"field":{},"description":{}}}]}}]"#,
            serde_json::to_string(field).unwrap_or_else(|_| "\"\"".to_owned()),
            message,
        ),
        None => "[]".to_owned(),
    };
    format!(r#"{{"code":{code},"message":{message},"details":{details}}}"#).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_grpc_code_to_its_http_status() {
        let expected = [
            (0, 200),
            (1, 499),
            (2, 500),
            (3, 400),
            (4, 504),
            (5, 404),
            (6, 409),
            (7, 403),
            (8, 429),
            (9, 400),
            (10, 409),
            (11, 400),
            (12, 501),
            (13, 500),
            (14, 503),
            (15, 500),
            (16, 401),
            (99, 500),
        ];
        for (code, http) in expected {
            assert_eq!(http_status_for(code).as_u16(), http, "code {code}");
        }
    }

    #[test]
    fn error_json_has_code_message_details_in_order() {
        let body = String::from_utf8(error_json(5, "no route for /x", None)).expect("utf8");
        assert_eq!(
            body,
            r#"{"code":5,"message":"no route for /x","details":[]}"#
        );
    }

    #[test]
    fn error_json_names_the_field_in_a_bad_request_detail() {
        let body =
            String::from_utf8(error_json(3, "bad \"v\"", Some("policy.version"))).expect("utf8");
        assert_eq!(
            body,
            r#"{"code":3,"message":"bad \"v\"","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"policy.version","description":"bad \"v\""}]}]}"#
        );
    }
}
