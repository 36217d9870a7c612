//! Native gRPC and gRPC-Web clients: requests whose content type is `application/grpc*` and
//! whose path is `/pkg.Service/Method` of a configured route are forwarded as gRPC, through the
//! same upstream (balancing, breakers, deadline) and recorded by the same finish step as
//! transcoded calls.
//!
//! Native gRPC passes through untouched: headers, message frames in both directions as they
//! arrive (all four RPC kinds), trailers. gRPC-Web (`application/grpc-web`, `+proto`, and the
//! base64 `application/grpc-web-text`) has the same message framing; the gateway sends it on as
//! `application/grpc` and writes the backend's trailers as a last frame flagged `0x80`
//! (the gRPC-Web protocol, PROTOCOL-WEB.md in grpc/grpc).
//!
//! The deadline (the route's timeout, or a smaller `grpc-timeout`) goes to the backend as
//! `grpc-timeout`, so it bounds the whole call as gRPC clients expect; the gateway itself waits
//! at most that long for the response head. The request body cannot be replayed, so only
//! attempts that never sent it are tried again.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use super::auth::Verified;
use super::body::{BodyError, ResponseBody};
use super::ctx::RequestCtx;
use super::outcome::Outcome;
use super::rate_limit::Budget;
use super::{metadata, stream};
use crate::error::{GatewayError, code};
use crate::runtime::{GrpcMethod, RouteOptions, Runtime};
use crate::upstream::stream::{ForwardError, UpstreamBody};
use crate::upstream::{CallOptions, GrpcStatus};

/// Which gRPC protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// `application/grpc` (`+proto`, ...).
    Grpc,
    /// `application/grpc-web` (`+proto`); `text` for the base64 `application/grpc-web-text`.
    GrpcWeb {
        /// Bodies are base64 text both ways.
        text: bool,
    },
}

impl Protocol {
    /// The protocol of a `POST` whose content type is one of the gRPC types.
    pub(super) fn of(method: &Method, headers: &HeaderMap) -> Option<Protocol> {
        if method != Method::POST {
            return None;
        }
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next()?.trim().to_ascii_lowercase();
        let subtype = essence.strip_prefix("application/grpc")?;
        let plain = |rest: &str| rest.is_empty() || rest.starts_with('+');
        if let Some(rest) = subtype.strip_prefix("-web-text") {
            plain(rest).then_some(Protocol::GrpcWeb { text: true })
        } else if let Some(rest) = subtype.strip_prefix("-web") {
            plain(rest).then_some(Protocol::GrpcWeb { text: false })
        } else {
            plain(subtype).then_some(Protocol::Grpc)
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Protocol::Grpc => "application/grpc",
            Protocol::GrpcWeb { text: false } => "application/grpc-web+proto",
            Protocol::GrpcWeb { text: true } => "application/grpc-web-text+proto",
        }
    }
}

/// Request headers that describe the client's connection or are set by the gateway itself.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "te",
    "content-length",
    "content-type",
    "grpc-timeout",
    "user-agent",
    "x-request-id",
];

/// Forwards one gRPC or gRPC-Web request and returns the backend's answer as the client's
/// protocol expects it; failures are gRPC statuses (trailers-only), never JSON.
pub(super) async fn forward<B>(
    runtime: &Runtime,
    request: Request<B>,
    protocol: Protocol,
    ctx: &RequestCtx,
    outcome: &mut Outcome,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(method) = runtime.grpc_methods.get(request.uri().path()).cloned() else {
        let message = format!("unknown method {}", request.uri().path());
        return failed(protocol, outcome, code::UNIMPLEMENTED, &message);
    };
    outcome.grpc_route = Some(method.options.clone());
    let allowed = allowed_origin(&method.options, request.headers());
    let mut response = call(runtime, request, protocol, &method, ctx, outcome).await;
    if let (Some(origin), Some(cors)) = (allowed, &method.options.cors) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Ok(value) = HeaderValue::from_str(&cors.expose_headers.join(", ")) {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
        }
    }
    response
}

/// The `Origin` of a request the route's CORS policy allows.
fn allowed_origin(options: &RouteOptions, headers: &HeaderMap) -> Option<HeaderValue> {
    let cors = options.cors.as_ref()?;
    let origin = headers.get(header::ORIGIN)?;
    cors.allows(origin.to_str().ok()?).then(|| origin.clone())
}

/// Answers a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) for a gRPC
/// method's path; `None` for every other request.
pub(super) fn preflight<B>(
    runtime: &Runtime,
    request: &Request<B>,
) -> Option<Response<ResponseBody>> {
    if request.method() != Method::OPTIONS
        || !request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let method = runtime.grpc_methods.get(request.uri().path())?;
    let mut response = Response::new(http_body_util::Full::new(Bytes::new()).into());
    let (Some(origin), Some(cors)) = (
        allowed_origin(&method.options, request.headers()),
        &method.options.cors,
    ) else {
        *response.status_mut() = http::StatusCode::FORBIDDEN;
        return Some(response);
    };
    *response.status_mut() = http::StatusCode::NO_CONTENT;
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
    Some(response)
}

/// The edge checks every call passes, gRPC ones included: the per-client rate limits, the token,
/// then the per-subject limits, with the route's policies.
async fn edge_checks(
    runtime: &Runtime,
    method: &GrpcMethod,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
) -> Result<Option<Verified>, GatewayError> {
    let (limits, policy) = (&method.options.rate_limits, &method.options.auth);
    // gRPC answers carry no RateLimit-* headers, so the budget is only used for the checks.
    let mut budget = Budget::default();
    limits.check_before_auth(headers, peer, &mut budget)?;
    let verified = runtime.auth.authenticate(policy, headers, None).await?;
    let claims = verified.as_ref().map(|v| &*v.claims);
    limits.check_after_auth(claims, headers, peer, &mut budget)?;
    Ok(verified)
}

/// The call itself, once the method is known.
async fn call<B>(
    runtime: &Runtime,
    request: Request<B>,
    protocol: Protocol,
    method: &GrpcMethod,
    ctx: &RequestCtx,
    outcome: &mut Outcome,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let verified = match edge_checks(runtime, method, request.headers(), ctx.peer).await {
        Ok(verified) => verified,
        Err(error) => {
            let reply = error.to_reply(&runtime.pool, &runtime.default_encode);
            outcome.failed(&error, reply.code);
            return failed(protocol, outcome, reply.code, &error.to_string());
        }
    };
    let timeout = match metadata::deadline(method.options.timeout, request.headers()) {
        Ok(timeout) => timeout,
        Err(e) => return failed(protocol, outcome, code::INVALID_ARGUMENT, &e.to_string()),
    };
    let (parts, body) = request.into_parts();
    let mut forwarded = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    // Verified claims in, client-sent copies (and, per route, Authorization) out.
    let policy = &method.options.auth;
    runtime
        .auth
        .forward(&mut forwarded, policy, verified.as_ref(), &parts.headers);
    forwarded.insert(
        HeaderName::from_static("x-request-id"),
        ctx.request_id.clone(),
    );
    let body = body.map_err(|e| ForwardError(e.into().to_string()));
    let body = match protocol {
        Protocol::GrpcWeb { text: true } => UnsyncBoxBody::new(Base64Decode {
            inner: body,
            carry: BytesMut::new(),
        }),
        _ => UnsyncBoxBody::new(body),
    };
    let options = CallOptions {
        deadline: timeout,
        per_try_timeout: None,
        retryable: false,
        retry_on: None,
    };
    let started = tokio::time::Instant::now();
    let (result, attempts) = method
        .upstream
        .forward(
            &method.grpc_path,
            forwarded,
            UpstreamBody::Stream(body),
            &options,
        )
        .await;
    outcome.upstream = Some((method.upstream.clone(), started.elapsed()));
    outcome.attempts = attempts;
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            let error = GatewayError::Upstream(e);
            let reply = error.to_reply(&runtime.pool, &runtime.default_encode);
            outcome.failed(&error, reply.code);
            return failed(protocol, outcome, reply.code, &error.to_string());
        }
    };
    let (mut parts, body) = response.into_parts();
    if let Some(status) = GrpcStatus::from_headers(&parts.headers) {
        outcome.grpc_status = status.code;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match protocol {
        Protocol::Grpc => ResponseBody::stream(body.map_err(|e| Box::new(e) as BodyError)),
        Protocol::GrpcWeb { text } => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(protocol.content_type()),
            );
            ResponseBody::stream(WebResponse {
                inner: body,
                text,
                carry: BytesMut::new(),
                done: false,
            })
        }
    };
    Response::from_parts(parts, body)
}

/// A trailers-only gRPC answer with `code` and `message`.
fn failed(
    protocol: Protocol,
    outcome: &mut Outcome,
    code: i32,
    message: &str,
) -> Response<ResponseBody> {
    outcome.grpc_status = code;
    let mut response = Response::new(http_body_util::Full::new(Bytes::new()).into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(protocol.content_type()),
    );
    headers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(value) = HeaderValue::from_str(&stream::percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// A gRPC-Web-text request body, base64-decoded as it arrives (4-character groups; a group
/// split across chunks waits for the rest).
struct Base64Decode<B> {
    inner: B,
    carry: BytesMut,
}

impl<B> Body for Base64Decode<B>
where
    B: Body<Data = Bytes, Error = ForwardError> + Unpin,
{
    type Data = Bytes;
    type Error = ForwardError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ForwardError>>> {
        let this = self.get_mut();
        loop {
            let Some(frame) = ready!(Pin::new(&mut this.inner).poll_frame(cx)) else {
                if this.carry.is_empty() {
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(ForwardError(
                    "grpc-web-text body is not whole base64".to_owned(),
                ))));
            };
            let data = match frame?.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            };
            this.carry
                .extend(data.iter().filter(|b| !b.is_ascii_whitespace()));
            let whole = this.carry.len() / 4 * 4;
            if whole == 0 {
                continue;
            }
            let text = this.carry.split_to(whole);
            return Poll::Ready(Some(
                STANDARD
                    .decode(&text)
                    .map(|bytes| Frame::data(Bytes::from(bytes)))
                    .map_err(|e| ForwardError(format!("grpc-web-text body: {e}"))),
            ));
        }
    }
}

/// The backend's gRPC response as gRPC-Web: messages as they are, then the trailers as a frame
/// flagged `0x80`; for `-text`, all of it as one continuous base64 text.
struct WebResponse<B> {
    inner: B,
    text: bool,
    /// `-text`: bytes not yet encoded (fewer than 3).
    carry: BytesMut,
    done: bool,
}

impl<B> WebResponse<B> {
    /// `bytes` as sent: raw, or base64 continuing the text so far (`last` pads the end).
    fn encode(&mut self, bytes: &[u8], last: bool) -> Bytes {
        if !self.text {
            return Bytes::copy_from_slice(bytes);
        }
        self.carry.extend_from_slice(bytes);
        let whole = if last {
            self.carry.len()
        } else {
            self.carry.len() / 3 * 3
        };
        let chunk = self.carry.split_to(whole);
        Bytes::from(STANDARD.encode(&chunk))
    }
}

/// The gRPC-Web trailers frame: `0x80`, length, then `name: value\r\n` lines.
fn trailer_frame(trailers: &HeaderMap) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in trailers {
        block.extend_from_slice(name.as_str().as_bytes());
        block.extend_from_slice(b": ");
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.put_u8(0x80);
    frame.put_u32(block.len() as u32);
    frame.put_slice(&block);
    frame.to_vec()
}

impl<B> Body for WebResponse<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Some(Err(Box::new(e)))),
                None => {
                    // Ended without trailers (trailers-only answers carry the status in headers).
                    this.done = true;
                    let rest = this.encode(&[], true);
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    let chunk = this.encode(&data, false);
                    if !chunk.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                }
                Err(frame) => {
                    let Ok(trailers) = frame.into_trailers() else {
                        continue;
                    };
                    this.done = true;
                    let chunk = this.encode(&trailer_frame(&trailers), true);
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_grpc_content_types() {
        let of = |ct: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("ct"));
            Protocol::of(&Method::POST, &headers)
        };
        assert_eq!(of("application/grpc"), Some(Protocol::Grpc));
        assert_eq!(of("application/grpc+proto"), Some(Protocol::Grpc));
        assert_eq!(
            of("application/grpc-web"),
            Some(Protocol::GrpcWeb { text: false })
        );
        assert_eq!(
            of("application/grpc-web+proto"),
            Some(Protocol::GrpcWeb { text: false })
        );
        assert_eq!(
            of("application/grpc-web-text"),
            Some(Protocol::GrpcWeb { text: true })
        );
        assert_eq!(of("application/grpcx"), None);
        assert_eq!(of("application/json"), None);
    }

    #[test]
    fn trailer_frame_is_flagged_and_length_prefixed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(
            trailer_frame(&trailers),
            b"\x80\x00\x00\x00\x10grpc-status: 0\r\n".to_vec()
        );
    }
}
