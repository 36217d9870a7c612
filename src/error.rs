//! Every way a request can fail, and the ONE table that turns a failure into the response a client
//! sees, in the protocol it spoke: for HTTP/JSON clients an HTTP status and the JSON body
//! `{"code":…,"message":…,"details":[…]}` (the `google.rpc.Status` shape); for gRPC and gRPC-Web
//! clients a trailers-only answer with `grpc-status`, `grpc-message` and, when there are details,
//! `grpc-status-details-bin`. Codes and the HTTP mapping follow `google/rpc/code.proto`.
//!
//! Each stage defines its own error type (`RequestError` in transcoding, `EdgeError` at the edge,
//! `UpstreamError` for backend calls); this module imports them, never the other way round.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message;
use prost_reflect::DescriptorPool;

use crate::body::ResponseBody;
use crate::compression::RequestEncodingError;
use crate::edge::EdgeError;
use crate::edge::auth::AuthError;
use crate::edge::cors::CorsRefusal;
use crate::edge::metadata::DeadlineError;
use crate::edge::rate_limit::{Exceeded, KeyTooLong, Unavailable as RateLimitUnavailable};
use crate::events::outbox::SpoolError;
use crate::listener::connection::Refused;
use crate::listener::refusal::HeadRefused;
use crate::pipeline::protocol::Protocol;
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
    /// hyper refused an HTTP/1.1 request head before the pipeline saw it (400, 414, 431); the
    /// listener answers with this error's reply in place of hyper's empty one.
    #[error(transparent)]
    HeadRefused(#[from] HeadRefused),
    /// The path has malformed percent-encoding.
    #[error("malformed request path: {0}")]
    MalformedPath(String),
    /// A path variable's value has a `.` or `..` segment once decoded (`..%2F..%2Fetc`): it would
    /// name another resource than the one routed to (see `transcode::normalize`).
    #[error("path variable `{field}` holds a dot segment (`.` or `..`); it is refused")]
    DotSegment {
        /// The field the variable binds.
        field: String,
    },
    /// An HTTP/1.1 request without a `Host` header, or any request with more than one
    /// (RFC 9112 §3.2).
    #[error("a request must carry exactly one Host header (RFC 9112 §3.2); this one has {count}")]
    HostHeader {
        /// How many `Host` headers the request has.
        count: usize,
    },
    /// The request body's media type cannot be transcoded.
    #[error("unsupported content type `{0}`; send application/json")]
    UnsupportedMediaType(String),
    /// The request body exceeds the route's limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A call to (or, for JSON, a path possibly of) a routed service of an upstream with
    /// `reflection: true` whose descriptors the backend has not described yet.
    #[error("{services} not available yet: no descriptors by server reflection ({reason})")]
    SchemaPending {
        /// The service(s) waited for, as shown to the client.
        services: String,
        /// Why: the fetch's failure.
        reason: String,
    },
    /// A native gRPC or gRPC-Web call to a method no route exposes.
    #[error("unknown method {path}")]
    UnknownGrpcMethod {
        /// The request path (`/pkg.Service/Method`).
        path: String,
    },
    /// The client's deadline header (`grpc-timeout`, `x-request-timeout`) is malformed.
    #[error(transparent)]
    Deadline(#[from] DeadlineError),
    /// The request body could not be read from the client.
    #[error("cannot read request body: {0}")]
    BodyRead(String),
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
    Auth(#[from] AuthError),
    /// A rate limit refused the request (429).
    #[error(transparent)]
    RateLimited(#[from] Exceeded),
    /// The answer is large and too many answer bytes already wait for clients to take them.
    #[error(transparent)]
    AnswerRefused(#[from] Refused),
    /// The header or claim a rate limit counts by is longer than its `max_key_bytes` (400).
    #[error(transparent)]
    RateLimitKey(#[from] KeyTooLong),
    /// A global rate limit could not be checked and says `on_redis_error: closed` (503).
    #[error(transparent)]
    RateLimitUnavailable(#[from] RateLimitUnavailable),
    /// A request body in a `Content-Encoding` the gateway cannot take (415), damaged gzip (400),
    /// or past the body limit once decompressed (413).
    #[error(transparent)]
    RequestEncoding(#[from] RequestEncodingError),
    /// A CORS preflight the gateway refuses: a malformed `Origin` (400), an origin the route's
    /// policy does not list, or a route without a policy (403).
    #[error(transparent)]
    Cors(#[from] CorsRefusal),
    /// A write of a `before_response` events route whose event cannot be spooled: the spool is
    /// full (refused before the backend is called) or cannot be written (503).
    #[error(transparent)]
    EventSpool(#[from] SpoolError),
}

impl From<EdgeError> for GatewayError {
    fn from(error: EdgeError) -> GatewayError {
        match error {
            EdgeError::RateLimited(e) => GatewayError::RateLimited(e),
            EdgeError::Auth(e) => GatewayError::Auth(e),
            EdgeError::Deadline(e) => GatewayError::Deadline(e),
            EdgeError::RateLimitKey(e) => GatewayError::RateLimitKey(e),
            EdgeError::RateLimitUnavailable(e) => GatewayError::RateLimitUnavailable(e),
        }
    }
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

/// Where a failure lands in the table: HTTP status, gRPC code, and the request field it names.
struct Row {
    status: StatusCode,
    code: i32,
    field: Option<String>,
}

impl GatewayError {
    /// The one table: HTTP status, gRPC code and the field at fault, for every failure.
    fn row(&self) -> Row {
        let row = |status, code| Row {
            status,
            code,
            field: None,
        };
        match self {
            GatewayError::RouteNotFound { .. } => row(StatusCode::NOT_FOUND, code::NOT_FOUND),
            GatewayError::MethodNotAllowed { .. } => {
                row(StatusCode::METHOD_NOT_ALLOWED, code::UNIMPLEMENTED)
            }
            GatewayError::UnknownGrpcMethod { .. } => {
                row(StatusCode::NOT_FOUND, code::UNIMPLEMENTED)
            }
            GatewayError::SchemaPending { .. } => {
                row(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE)
            }
            GatewayError::HeadRefused(HeadRefused::TooLarge) => row(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                code::RESOURCE_EXHAUSTED,
            ),
            GatewayError::HeadRefused(HeadRefused::UriTooLong) => {
                row(StatusCode::URI_TOO_LONG, code::RESOURCE_EXHAUSTED)
            }
            GatewayError::HeadRefused(HeadRefused::Malformed) => {
                row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT)
            }
            GatewayError::DotSegment { field } => Row {
                field: Some(field.clone()),
                ..row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT)
            },
            GatewayError::MalformedPath(_)
            | GatewayError::HostHeader { .. }
            | GatewayError::Deadline(_)
            | GatewayError::RateLimitKey(_)
            | GatewayError::BodyRead(_) => row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT),
            GatewayError::BodyReadTimeout { .. } => {
                row(StatusCode::REQUEST_TIMEOUT, code::DEADLINE_EXCEEDED)
            }
            GatewayError::UnsupportedMediaType(_) => {
                row(StatusCode::UNSUPPORTED_MEDIA_TYPE, code::INVALID_ARGUMENT)
            }
            GatewayError::PayloadTooLarge { .. } => {
                row(StatusCode::PAYLOAD_TOO_LARGE, code::RESOURCE_EXHAUSTED)
            }
            GatewayError::BadRequest(e) => Row {
                field: e.field(),
                ..row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT)
            },
            GatewayError::Upstream(UpstreamError::Unavailable { .. })
            | GatewayError::Upstream(UpstreamError::CircuitOpen { .. }) => {
                row(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE)
            }
            GatewayError::Upstream(UpstreamError::DeadlineExceeded { .. }) => {
                row(StatusCode::GATEWAY_TIMEOUT, code::DEADLINE_EXCEEDED)
            }
            GatewayError::Upstream(UpstreamError::InvalidResponse { .. })
            | GatewayError::ResponseTranscode(_) => row(StatusCode::BAD_GATEWAY, code::INTERNAL),
            // The backend cannot be reached securely: a bad gateway, not a passing outage.
            GatewayError::Upstream(UpstreamError::Tls { .. }) => {
                row(StatusCode::BAD_GATEWAY, code::UNAVAILABLE)
            }
            GatewayError::Auth(e) if e.is_forbidden() => {
                row(StatusCode::FORBIDDEN, code::PERMISSION_DENIED)
            }
            // RFC 6750 §3.1: `invalid_request` (two tokens) is a 400, with its challenge.
            GatewayError::Auth(e) if e.is_invalid_request() => {
                row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT)
            }
            GatewayError::Auth(_) => row(StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
            GatewayError::RequestEncoding(e) => match e {
                RequestEncodingError::Corrupt(_) => {
                    row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT)
                }
                RequestEncodingError::TooLarge { .. } => {
                    row(StatusCode::PAYLOAD_TOO_LARGE, code::RESOURCE_EXHAUSTED)
                }
                _ => row(StatusCode::UNSUPPORTED_MEDIA_TYPE, code::INVALID_ARGUMENT),
            },
            GatewayError::Cors(CorsRefusal::MalformedOrigin { .. }) => {
                row(StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT)
            }
            GatewayError::Cors(_) => row(StatusCode::FORBIDDEN, code::PERMISSION_DENIED),
            GatewayError::RateLimited(_) => {
                row(StatusCode::TOO_MANY_REQUESTS, code::RESOURCE_EXHAUSTED)
            }
            GatewayError::AnswerRefused(_) => {
                row(StatusCode::SERVICE_UNAVAILABLE, code::RESOURCE_EXHAUSTED)
            }
            GatewayError::RateLimitUnavailable(_) | GatewayError::EventSpool(_) => {
                row(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE)
            }
            GatewayError::Backend(status) => row(http_status_for(status.code), status.code),
        }
    }

    /// The failure's gRPC code.
    pub fn code(&self) -> i32 {
        self.row().code
    }

    /// The HTTP status a JSON client gets for this failure.
    pub fn http_status(&self) -> StatusCode {
        self.row().status
    }

    /// The message a gRPC client reads in `grpc-message`: the backend's own for its statuses.
    pub fn grpc_message(&self) -> String {
        match self {
            GatewayError::Backend(status) => status.message.clone(),
            other => other.to_string(),
        }
    }

    /// The failure as a JSON client sees it. `pool` decodes backend error details.
    pub fn to_reply(&self, pool: &DescriptorPool, json: &EncodeOptions) -> ErrorReply {
        let Row {
            status,
            code,
            field,
        } = self.row();
        let body = match self {
            GatewayError::Backend(backend) => crate::transcode::response::status_to_json(
                pool,
                backend.code,
                &backend.message,
                backend.details.as_deref(),
                json,
            ),
            _ => error_json(code, &self.to_string(), field.as_deref()),
        };
        ErrorReply {
            status,
            code,
            body,
            headers: self.extra_headers(),
        }
    }

    /// The failure as a JSON client sees it, for failures outside any route (no backend
    /// details to decode, default JSON options): the listener's own refusals.
    pub fn to_plain_reply(&self) -> ErrorReply {
        self.to_reply(&DescriptorPool::new(), &EncodeOptions::default())
    }

    /// Headers an HTTP client needs to act on the failure (`Allow`, `Retry-After`,
    /// `WWW-Authenticate`, `RateLimit-*`).
    fn extra_headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        match self {
            GatewayError::MethodNotAllowed { allow, .. } => {
                if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.push((header::ALLOW, value));
                }
            }
            GatewayError::Upstream(UpstreamError::CircuitOpen { retry_after, .. }) => {
                let secs = crate::upstream::retry_after_secs(*retry_after);
                headers.push((header::RETRY_AFTER, HeaderValue::from(secs)));
            }
            GatewayError::Auth(e) => headers.push((header::WWW_AUTHENTICATE, e.challenge())),
            GatewayError::RateLimited(e) => headers.extend(e.headers()),
            GatewayError::AnswerRefused(_)
            | GatewayError::RateLimitUnavailable(_)
            | GatewayError::EventSpool(_) => {
                headers.push((header::RETRY_AFTER, HeaderValue::from(1)));
            }
            _ => {}
        }
        headers
    }

    /// The complete response to a request that failed with this error, in the protocol the
    /// request spoke; `extra` are headers already earned (backend metadata, the attempt count).
    pub fn to_response(
        &self,
        protocol: Protocol,
        pool: &DescriptorPool,
        json: &EncodeOptions,
        extra: HeaderMap,
    ) -> Response<ResponseBody> {
        if protocol.is_grpc() {
            return self.to_grpc_response(protocol);
        }
        let reply = self.to_reply(pool, json);
        let mut response = Response::new(Full::new(Bytes::from(reply.body)).into());
        *response.status_mut() = reply.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.extend(extra);
        for (name, value) in reply.headers {
            headers.insert(name, value);
        }
        response
    }

    /// A trailers-only gRPC answer: `grpc-status`, `grpc-message`, and the details (a field
    /// at fault, or the backend's own) in `grpc-status-details-bin`.
    fn to_grpc_response(&self, protocol: Protocol) -> Response<ResponseBody> {
        let Row { code, field, .. } = self.row();
        let message = self.grpc_message();
        let mut response = Response::new(Full::new(Bytes::new()).into());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(protocol.content_type()),
        );
        headers.insert("grpc-status", HeaderValue::from(code));
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&message)) {
            headers.insert("grpc-message", value);
        }
        let details = match (self, field) {
            (GatewayError::Backend(status), _) => status.details.clone(),
            (_, Some(field)) => Some(status_with_field(code, &message, &field)),
            _ => None,
        };
        if let Some(details) = details {
            let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&details);
            if let Ok(value) = HeaderValue::from_str(&text) {
                headers.insert("grpc-status-details-bin", value);
            }
        }
        response
    }
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `google.rpc.Status` (`google/rpc/status.proto`), as sent in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `google.rpc.BadRequest` (`google/rpc/error_details.proto`).
#[derive(Clone, PartialEq, prost::Message)]
struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    field_violations: Vec<FieldViolation>,
}

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, prost::Message)]
struct FieldViolation {
    #[prost(string, tag = "1")]
    field: String,
    #[prost(string, tag = "2")]
    description: String,
}

/// An encoded `google.rpc.Status` whose one detail is a `BadRequest` naming `field`: the same
/// detail the JSON body carries.
fn status_with_field(code: i32, message: &str, field: &str) -> Bytes {
    let bad_request = BadRequest {
        field_violations: vec![FieldViolation {
            field: field.to_owned(),
            description: message.to_owned(),
        }],
    };
    let status = RpcStatus {
        code,
        message: message.to_owned(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.BadRequest".to_owned(),
            value: bad_request.encode_to_vec(),
        }],
    };
    Bytes::from(status.encode_to_vec())
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

    fn grpc_answer(error: &GatewayError) -> http::HeaderMap {
        let pool = DescriptorPool::new();
        let response = error.to_response(
            Protocol::Grpc,
            &pool,
            &EncodeOptions::default(),
            HeaderMap::new(),
        );
        assert_eq!(response.status(), StatusCode::OK);
        response.headers().clone()
    }

    #[test]
    fn a_grpc_client_gets_a_trailers_only_status_from_the_same_table() {
        let headers = grpc_answer(&GatewayError::UnknownGrpcMethod {
            path: "/pkg.S/Gone".to_owned(),
        });
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["grpc-status"], "12");
        assert_eq!(headers["grpc-message"], "unknown method /pkg.S/Gone");
        assert!(headers.get("grpc-status-details-bin").is_none());
        let headers = grpc_answer(&GatewayError::PayloadTooLarge { limit: 10 });
        assert_eq!(headers["grpc-status"], "8");
        assert_eq!(
            headers["grpc-message"],
            "request body exceeds the limit of 10 bytes"
        );
    }

    #[test]
    fn a_field_at_fault_reaches_a_grpc_client_as_a_bad_request_detail() {
        let error = GatewayError::BadRequest(RequestError::UnknownQueryParameter {
            name: "colour".to_owned(),
        });
        let headers = grpc_answer(&error);
        assert_eq!(headers["grpc-status"], "3");
        let text = headers["grpc-status-details-bin"].as_bytes();
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .expect("base64");
        let status = RpcStatus::decode(&bytes[..]).expect("google.rpc.Status");
        assert_eq!(status.code, 3);
        assert_eq!(status.message, "unknown query parameter `colour`");
        let detail = &status.details[0];
        assert_eq!(detail.type_url, "type.googleapis.com/google.rpc.BadRequest");
        let bad = BadRequest::decode(&detail.value[..]).expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, "colour");
    }

    #[test]
    fn grpc_message_is_percent_encoded_outside_printable_ascii() {
        assert_eq!(percent_encode("50% — ok"), "50%25 %E2%80%94 ok");
    }

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
