//! Client-streaming and bidirectional methods from HTTP clients: the request body, NDJSON or
//! one JSON array, is split into elements as it arrives and each element is sent to the backend
//! as one gRPC message at once (no whole-body buffering); path and query bindings apply to every
//! message. The answer is one JSON object (client streaming) or a stream in the formats of
//! [`super::server_stream`] (bidirectional).
//!
//! A malformed element ends the upstream request stream with a reset; the client then gets
//! that element's error (400), not the backend's view of the reset.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

use super::answer::{Answer, Failure, HttpCall};
use super::outcome::{Outcome, UpstreamCall};
use super::server_stream::{self, ClientPrefs};
use super::unary;
use crate::body::{BodyError, FrameSource, Frames, Polled, RequestBody};
use crate::compression::{self, ContentEncoding, RequestEncodingError};
use crate::edge::metadata::response_headers;
use crate::error::GatewayError;
use crate::runtime::{Binding, MethodRoute};
use crate::transcode::request::{RequestParts, build_request, encode_message};
use crate::transcode::split::{Framing, SplitError, Splitter};
use crate::upstream::codec::{self, MessageEncoding};
use crate::upstream::stream::{
    ForwardError, MessageStream, OpenedStream, StreamItem, UpstreamBody,
};
use crate::upstream::{CallOptions, CallOutcome, Caller, GrpcReply, GrpcStatus, UpstreamError};

/// The request stream's framing from its `Content-Type`: NDJSON for `application/x-ndjson`
/// (or `application/jsonl`), a JSON array for `application/json` or none.
fn framing(headers: &HeaderMap) -> Result<Framing, GatewayError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Framing::JsonArray);
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    match essence.to_ascii_lowercase().as_str() {
        "application/x-ndjson" | "application/jsonl" => Ok(Framing::Ndjson),
        "application/json" => Ok(Framing::JsonArray),
        _ => Err(GatewayError::UnsupportedMediaType(text.to_owned())),
    }
}

/// A request element that could not become a message, kept for the client's answer.
type FailureSlot = Arc<Mutex<Option<GatewayError>>>;

/// Streamed request bodies are read as they arrive: a compressed one is refused (415).
fn identity_only(headers: &HeaderMap) -> Result<(), RequestEncodingError> {
    match compression::request::content_encoding(headers)? {
        ContentEncoding::Identity => Ok(()),
        ContentEncoding::Gzip => Err(RequestEncodingError::Streamed),
    }
}

/// Runs the call; the response head waits for the backend's first message (or its status).
pub(crate) async fn call<B: RequestBody>(call: HttpCall<'_, B>, outcome: &mut Outcome) -> Answer {
    let (runtime, binding, admitted) = (call.runtime, &call.binding, call.admitted);
    let route = &binding.method;
    let slot: FailureSlot = Arc::default();
    let (parts, body) = call.request.into_parts();
    identity_only(&parts.headers)?;
    let prefs = ClientPrefs::of(&parts.headers);
    let requests = Requests::new(
        binding,
        &call.vars,
        admitted.query,
        &parts.headers,
        body,
        &slot,
    )?;
    let caller = Caller::new(call.client, admitted.deadline, route.options.timeout);
    let options = CallOptions::streamed(admitted.deadline, caller)
        .traced(call.trace, route.grpc_path.as_str());
    let started = tokio::time::Instant::now();
    let (result, attempts) = send(route, admitted.metadata, requests, &options).await;
    outcome.call = Some(UpstreamCall::new(&route.upstream, started, attempts));
    let extra = CallOutcome::attempts_only(attempts);
    // A request element that failed explains whatever the backend made of the reset.
    let fail = |error: GatewayError, headers: &HeaderMap| {
        let element = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        Failure::with(element.unwrap_or(error), headers)
    };
    let opened = first_message(route, result, admitted.deadline).await;
    let (mut head, first, mut rest) = opened.map_err(|e| fail(e, &extra))?;
    if route.server_streaming {
        let opened = OpenedStream {
            rest: first.is_some().then_some(rest),
            reply: GrpcReply {
                status: GrpcStatus::ok(),
                message: first,
                metadata: head,
            },
        };
        return server_stream::respond(runtime, binding, Ok(opened), extra, prefs);
    }
    let message = only_message(route, first, &mut rest, &mut head).await;
    let message = message.map_err(|e| fail(e, &extra))?;
    let mut headers = extra;
    headers.extend(response_headers(&head, &route.options.headers));
    unary::respond(binding, &message, headers)
}

/// Sends the request stream to the route's upstream (its messages gzip-compressed when the
/// upstream takes them so, `send_compressed`; the client's `grpc-encoding` never goes on): the
/// response and the attempts made.
async fn send<B>(
    route: &MethodRoute,
    mut metadata: HeaderMap,
    requests: Requests<B>,
    options: &CallOptions<'_>,
) -> (Result<http::Response<Incoming>, UpstreamError>, u32)
where
    Requests<B>: FrameSource<Error = ForwardError> + Send + 'static,
{
    match route.upstream.config().send_gzip_from {
        Some(_) => metadata.insert("grpc-encoding", HeaderValue::from_static("gzip")),
        None => metadata.remove("grpc-encoding"),
    };
    let body = UpstreamBody::Stream(UnsyncBoxBody::new(Frames(requests)));
    let upstream = &route.upstream;
    upstream
        .forward(&route.grpc_path, metadata, body, options)
        .await
}

/// The backend's response head and its first message (`None` for an empty OK stream), waited
/// for at most `deadline`, and the rest of its stream.
async fn first_message(
    route: &MethodRoute,
    response: Result<http::Response<Incoming>, UpstreamError>,
    deadline: Duration,
) -> Result<(HeaderMap, Option<Bytes>, MessageStream), GatewayError> {
    let (parts, body) = response?.into_parts();
    if let Some(status) = GrpcStatus::from_headers(&parts.headers) {
        return Err(if status.is_ok() {
            GatewayError::Upstream(invalid(route, "trailers-only OK without a message"))
        } else {
            GatewayError::Backend(status)
        });
    }
    let limit = route.upstream.max_response_bytes();
    let mut rest = MessageStream::new(body, limit, route.upstream.name.clone())
        .encoded(MessageEncoding::of(&parts.headers));
    let first = tokio::time::timeout(deadline, rest.next())
        .await
        .unwrap_or_else(|_| {
            Err(UpstreamError::DeadlineExceeded {
                upstream: route.upstream.name.clone(),
                timeout: deadline,
            })
        })?;
    match first {
        StreamItem::Message(message) => Ok((parts.headers, Some(message), rest)),
        StreamItem::End(status, _) if !status.is_ok() => Err(GatewayError::Backend(status)),
        StreamItem::End(..) => Ok((parts.headers, None, rest)),
    }
}

/// The one message of a client-streaming call's answer, which must end right after it; its
/// trailers join the response head.
async fn only_message(
    route: &MethodRoute,
    first: Option<Bytes>,
    rest: &mut MessageStream,
    head: &mut HeaderMap,
) -> Result<Bytes, GatewayError> {
    let Some(message) = first else {
        let reason = "client-streaming call ended without a response message";
        return Err(invalid(route, reason).into());
    };
    match rest.next().await? {
        StreamItem::End(status, trailers) if status.is_ok() => head.extend(trailers),
        StreamItem::End(status, _) => return Err(GatewayError::Backend(status)),
        StreamItem::Message(_) => {
            let reason = "a second response message on a unary response";
            return Err(invalid(route, reason).into());
        }
    }
    Ok(message)
}

fn invalid(route: &MethodRoute, reason: &str) -> UpstreamError {
    UpstreamError::InvalidResponse {
        upstream: route.upstream.name.clone(),
        reason: reason.to_owned(),
    }
}

/// The upstream request body: client bytes in, one framed message per element out.
struct Requests<B> {
    body: B,
    /// `None`: raw upload, one message per chunk.
    splitter: Option<Splitter>,
    chunk_limit: usize,
    content_type: Option<String>,
    /// Raw upload: bytes read but not yet sent.
    pending: Bytes,
    binding: Arc<Binding>,
    path_bindings: Vec<(String, String)>,
    query: Option<String>,
    slot: FailureSlot,
    /// The client's body has ended.
    ended: bool,
    /// Every element has been sent (or the stream failed).
    done: bool,
}

impl<B> Requests<B> {
    /// The request stream of `binding` fed from `body`, framed as its `Content-Type` says; a
    /// raw `google.api.HttpBody` upload is sent in chunks of at most `max_request_bytes`.
    fn new(
        binding: &Arc<Binding>,
        vars: &[(&str, String)],
        query: Option<String>,
        headers: &HeaderMap,
        body: B,
        slot: &FailureSlot,
    ) -> Result<Requests<B>, GatewayError> {
        let limit = binding.method.options.max_request_bytes;
        let splitter = match binding.raw_body {
            true => None,
            false => Some(Splitter::new(framing(headers)?, limit)),
        };
        Ok(Requests {
            body,
            splitter,
            chunk_limit: limit,
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            pending: Bytes::new(),
            binding: binding.clone(),
            path_bindings: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            query,
            slot: slot.clone(),
            ended: false,
            done: false,
        })
    }

    fn message(&self, element: &[u8]) -> Result<Bytes, GatewayError> {
        let route = &self.binding.method;
        let bindings: Vec<(&str, String)> = self
            .path_bindings
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let message = build_request(
            &route.input,
            &self.binding.body,
            &RequestParts {
                path_bindings: &bindings,
                query: self.query.as_deref(),
                body: element,
                content_type: self.content_type.as_deref(),
            },
            &route.options.decode,
            &route.options.query,
        )?;
        let encoded = encode_message(&message);
        // Messages of at least the upstream's `send_compressed_min_size` go gzip-compressed; the
        // call's `grpc-encoding: gzip` allows uncompressed ones too.
        Ok(match route.upstream.config().send_gzip_from {
            Some(from) if encoded.len() >= from => codec::frame_gzip(&encoded),
            _ => codec::frame(&encoded),
        })
    }

    fn fail(&mut self, error: GatewayError) -> Poll<Option<Result<Frame<Bytes>, ForwardError>>> {
        self.done = true;
        let reason = error.to_string();
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
        Poll::Ready(Some(Err(ForwardError(reason))))
    }
}

impl<B: Body<Data = Bytes, Error: Into<BodyError>> + Unpin> FrameSource for Requests<B> {
    type Error = ForwardError;

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<ForwardError> {
        let this = self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let next = match &mut this.splitter {
                Some(splitter) => splitter.next_element(this.ended),
                None if this.pending.is_empty() => Ok(None),
                None => {
                    let take = this.pending.len().min(this.chunk_limit);
                    Ok(Some(this.pending.split_to(take)))
                }
            };
            match next {
                Ok(Some(element)) => {
                    return match this.message(&element) {
                        Ok(framed) => Poll::Ready(Some(Ok(Frame::data(framed)))),
                        Err(error) => this.fail(error),
                    };
                }
                Ok(None) if this.ended => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Ok(None) => {}
                Err(SplitError::TooLarge(limit)) => {
                    return this.fail(GatewayError::PayloadTooLarge { limit });
                }
                Err(e @ SplitError::Malformed(_)) => {
                    return this.fail(GatewayError::BodyRead(e.to_string()));
                }
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        match &mut this.splitter {
                            Some(splitter) => splitter.push(&data),
                            None => this.pending = data,
                        }
                    }
                }
                Some(Err(e)) => return this.fail(GatewayError::BodyRead(e.into().to_string())),
                None => this.ended = true,
            }
        }
    }
}
