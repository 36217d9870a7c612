//! Native gRPC and gRPC-Web clients: requests whose content type is `application/grpc*` and
//! whose path is `/pkg.Service/Method` of a configured route are forwarded as gRPC, through the
//! same edge rules, upstream (balancing, breakers, deadline) and finish step as transcoded calls.
//!
//! Native gRPC passes through untouched: headers, message frames in both directions as they
//! arrive (all four RPC kinds), trailers. gRPC-Web (`application/grpc-web`, `+proto`, and the
//! base64 `application/grpc-web-text`) is sent on as `application/grpc` and its answer rewritten
//! by [`super::grpc_web`].
//!
//! A client's gzip messages (`grpc-encoding: gzip`) pass through compressed to a backend set to
//! take gzip (`send_compressed`); to any other they are inflated on the way ([`super::grpc_inflate`]),
//! each bounded by the route's `max_request_bytes`.
//!
//! The deadline (the route's timeout, or a smaller `grpc-timeout`) goes to the backend as
//! `grpc-timeout`, so it bounds the whole call as gRPC clients expect; the gateway itself waits
//! at most that long for the response head. The request body cannot be replayed, so only
//! attempts that never sent it are tried again.

use std::sync::PoisonError;

use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use super::answer::Answer;
use super::grpc_inflate::{self, Inflating, Refusal};
use super::grpc_web::{Base64Decode, WebResponse};
use super::outcome::{Outcome, UpstreamCall};
use super::protocol::Protocol;
use crate::body::{BodyError, Frames, RequestBody, ResponseBody};
use crate::edge::Admitted;
use crate::runtime::GrpcMethod;
use crate::trace::RequestTrace;
use crate::upstream::stream::{ForwardError, UpstreamBody};
use crate::upstream::{CallOptions, Caller, ClientId, GrpcStatus};

/// Forwards one gRPC or gRPC-Web call of `client` and returns the backend's answer as the
/// client's protocol expects it.
pub(crate) async fn forward<B: RequestBody>(
    method: &GrpcMethod,
    request: Request<B>,
    (protocol, client, trace): (Protocol, ClientId, &RequestTrace),
    admitted: Admitted,
    outcome: &mut Outcome,
) -> Answer {
    let mut metadata = admitted.metadata;
    let refusal = Refusal::default();
    let body = request_body(method, request, protocol, (&refusal, &mut metadata));
    let caller = Caller::new(client, admitted.deadline, method.options.timeout);
    let options =
        CallOptions::streamed(admitted.deadline, caller).traced(trace, method.grpc_path.as_str());
    let started = tokio::time::Instant::now();
    let (result, attempts) = method
        .upstream
        .forward(
            &method.grpc_path,
            metadata,
            UpstreamBody::Stream(body),
            &options,
        )
        .await;
    outcome.call = Some(UpstreamCall::new(&method.upstream, started, attempts));
    let refused = refusal
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let (Err(_), Some(why)) = (&result, refused) {
        return Err(why.into());
    }
    let (mut parts, body) = result?.into_parts();
    if let Some(status) = GrpcStatus::from_headers(&parts.headers) {
        outcome.grpc_status = status.code;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match protocol {
        Protocol::GrpcWeb { text } => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(protocol.content_type()),
            );
            ResponseBody::stream(Frames(WebResponse::new(body, text)))
        }
        _ => ResponseBody::stream(body.map_err(|e| Box::new(e) as BodyError)),
    };
    Ok(Response::from_parts(parts, body))
}

/// The client's body as the backend gets it: gRPC-Web text decoded, and gzip messages inflated
/// (a refused one noted in `refusal`, `grpc-encoding` dropped from `metadata`) when the backend
/// is not set to take gzip.
fn request_body<B: RequestBody>(
    method: &GrpcMethod,
    request: Request<B>,
    protocol: Protocol,
    (refusal, metadata): (&Refusal, &mut http::HeaderMap),
) -> UnsyncBoxBody<bytes::Bytes, ForwardError> {
    let takes_gzip = method.upstream.config().send_gzip_from.is_some();
    let inflating = grpc_inflate::needed(request.headers(), takes_gzip);
    let body = request
        .into_body()
        .map_err(|e| ForwardError(e.into().to_string()));
    let body = match protocol {
        Protocol::GrpcWeb { text: true } => UnsyncBoxBody::new(Frames(Base64Decode::new(body))),
        _ => UnsyncBoxBody::new(body),
    };
    if !inflating {
        return body;
    }
    metadata.remove("grpc-encoding");
    let limit = method.options.max_request_bytes;
    UnsyncBoxBody::new(Frames(Inflating::new(body, limit, refusal.clone())))
}
