//! Server streams to HTTP clients: each gRPC message is transcoded and written as it arrives,
//! as a JSON array, NDJSON or Server-Sent Events (`transcoding.stream_format`, or the client's
//! `Accept`), or raw for `google.api.HttpBody` streams.
//!
//! The response head waits for the first message, so an error before it is an ordinary error
//! response (mapped status, JSON body). After it the status line is gone; an error then is
//! written as a last element every format can carry — `{"error":{"code":…,"message":…,
//! "details":[…]}}` as the final array element or NDJSON line, an SSE `event: error` — plus
//! `grpc-status`/`grpc-message` trailers when the client sent `TE: trailers`. A raw stream has
//! no room for an error element: without trailers its response is aborted instead, so a
//! truncated download never looks complete.
//!
//! The body is polled straight through to the upstream stream: nothing is read from the
//! backend until the client is ready for more, so a slow client holds the backend back (HTTP/2
//! flow control) instead of growing a buffer, and a client that goes away drops the body, which
//! resets the upstream HTTP/2 stream and cancels the call at the backend.

use std::collections::VecDeque;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response, header};
use http_body::Frame;
use prost_reflect::{DescriptorPool, FieldDescriptor, MessageDescriptor};

use super::answer::{Answer, Failure, HttpCall};
use super::outcome::{Outcome, UpstreamCall};
use super::request::{call_options, read_message};
use crate::body::{
    BodyError, FrameSource, Frames, Polled, RequestBody, ResponseBody, StreamStatus,
};
use crate::config::StreamFormat;
use crate::edge::metadata::response_headers;
use crate::error::{GatewayError, percent_encode};
use crate::runtime::{Binding, Runtime};
use crate::transcode::json::EncodeOptions;
use crate::transcode::response::decode_and_encode;
use crate::upstream::stream::{MessageStream, OpenedStream, StreamItem};
use crate::upstream::{CallOutcome, UpstreamError};

/// Reads and transcodes the request, opens the backend's stream (the route's retries apply
/// until its first message), and answers with the stream.
pub(crate) async fn call<B: RequestBody>(call: HttpCall<'_, B>, outcome: &mut Outcome) -> Answer {
    let (runtime, prefs) = (call.runtime, ClientPrefs::of(call.request.headers()));
    let trace = call.trace;
    let message = read_message(call, outcome).await?;
    let (binding, route) = (&message.binding, &message.binding.method);
    let options = call_options(binding, message.admitted.deadline, message.client, trace);
    let started = tokio::time::Instant::now();
    let (opened, attempts) = route
        .upstream
        .open_stream(
            &route.grpc_path,
            message.payload,
            message.admitted.metadata,
            &options,
        )
        .await;
    outcome.call = Some(UpstreamCall::new(&route.upstream, started, attempts));
    let attempts = CallOutcome::attempts_only(attempts);
    respond(runtime, binding, opened, attempts, prefs)
}

/// What the client asked of a stream, read before its request is consumed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientPrefs {
    /// The format its `Accept` header names, if any.
    format: Option<StreamFormat>,
    /// It sent `TE: trailers`.
    trailers: bool,
}

impl ClientPrefs {
    /// Reads `Accept` and `TE`.
    pub(crate) fn of(headers: &HeaderMap) -> ClientPrefs {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        ClientPrefs {
            format: text(header::ACCEPT).and_then(StreamFormat::from_accept),
            trailers: text(header::TE).is_some_and(|te| {
                te.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            }),
        }
    }
}

/// The answer to a server-streaming call: the error response when the stream failed before
/// its first message, else a streaming response whose head carries `extra` headers.
#[allow(clippy::result_large_err)] // the error path is cold; `Failure` is the pipeline's one shape
pub(crate) fn respond(
    runtime: &Runtime,
    binding: &Binding,
    opened: Result<OpenedStream, UpstreamError>,
    mut extra: HeaderMap,
    prefs: ClientPrefs,
) -> Answer {
    let route = &binding.method;
    let opened = opened.map_err(|e| Failure::with(e, &extra))?;
    extra.extend(response_headers(
        &opened.reply.metadata,
        &route.options.headers,
    ));
    let Some(first) = opened.reply.message else {
        if !opened.reply.status.is_ok() {
            return Err(Failure {
                error: GatewayError::Backend(opened.reply.status),
                headers: extra,
            });
        }
        return Ok(empty(binding, prefs, extra));
    };
    let mut writer = Writer::new(runtime, binding, prefs);
    let encoded = writer
        .message(&first)
        .map_err(|error| Failure::with(error, &extra))?;
    let format = writer.format;
    let mut stream = Transcoded {
        rest: opened.rest,
        writer,
        pending: VecDeque::from([Frame::data(encoded.chunk)]),
        abort: None,
    };
    if stream.rest.is_none() {
        // The stream ended with the first message (no trailers were seen: report OK).
        stream.finish(None);
    }
    let status = stream.writer.status.clone();
    let mut response = Response::new(ResponseBody::stream(Frames(stream)));
    response.extensions_mut().insert(status);
    set_head(
        &mut response,
        content_type(binding, format, Some(&encoded.content_type)),
        extra,
    );
    if prefs.trailers {
        response.headers_mut().insert(
            header::TRAILER,
            HeaderValue::from_static("grpc-status, grpc-message"),
        );
    }
    Ok(response)
}

/// The answer to a stream that ended OK without a message: complete at once.
fn empty(binding: &Binding, prefs: ClientPrefs, extra: HeaderMap) -> Response<ResponseBody> {
    let format = prefs.format.unwrap_or(binding.method.options.stream_format);
    let empty: &'static [u8] = match format {
        StreamFormat::JsonArray if !is_raw(binding) => b"[]",
        _ => b"",
    };
    let mut response = Response::new(http_body_util::Full::new(Bytes::from_static(empty)).into());
    set_head(&mut response, content_type(binding, format, None), extra);
    response
}

/// The binding's responses are `google.api.HttpBody`, sent raw.
fn is_raw(binding: &Binding) -> bool {
    const HTTP_BODY: &str = "google.api.HttpBody";
    match &binding.response_body {
        Some(field) => field
            .kind()
            .as_message()
            .is_some_and(|m| m.full_name() == HTTP_BODY),
        None => binding.method.output.full_name() == HTTP_BODY,
    }
}

fn content_type(binding: &Binding, format: StreamFormat, first: Option<&str>) -> HeaderValue {
    if is_raw(binding) {
        return first
            .and_then(|t| HeaderValue::from_str(t).ok())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    }
    HeaderValue::from_static(format.content_type())
}

fn set_head(response: &mut Response<ResponseBody>, content_type: HeaderValue, extra: HeaderMap) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type.clone());
    if content_type == "text/event-stream" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    headers.extend(extra);
}

/// One message as written to the client, and the content type it would have alone.
struct Encoded {
    chunk: Bytes,
    content_type: String,
}

/// Turns messages and the stream's end into the bytes of the chosen format.
struct Writer {
    format: StreamFormat,
    raw: bool,
    output: MessageDescriptor,
    response_body: Option<FieldDescriptor>,
    encode: EncodeOptions,
    pool: DescriptorPool,
    trailers: bool,
    /// A message was written (the next array element needs a comma).
    wrote: bool,
    /// The code the stream ended with, for the request's metrics and access log line.
    status: StreamStatus,
}

impl Writer {
    /// The writer of `binding`'s stream in the format the client asked for (or the route's).
    fn new(runtime: &Runtime, binding: &Binding, prefs: ClientPrefs) -> Writer {
        let route = &binding.method;
        Writer {
            format: prefs.format.unwrap_or(route.options.stream_format),
            raw: is_raw(binding),
            output: route.output.clone(),
            response_body: binding.response_body.clone(),
            encode: route.options.encode.clone(),
            pool: runtime.pool.clone(),
            trailers: prefs.trailers,
            wrote: false,
            status: StreamStatus::default(),
        }
    }

    fn message(&mut self, payload: &[u8]) -> Result<Encoded, GatewayError> {
        let encoded = decode_and_encode(
            &self.output,
            payload,
            self.response_body.as_ref(),
            &self.encode,
        )
        .map_err(|e| GatewayError::ResponseTranscode(e.to_string()))?;
        let chunk = if self.raw {
            Bytes::from(encoded.body)
        } else {
            self.element(&encoded.body, false)
        };
        self.wrote = true;
        Ok(Encoded {
            chunk,
            content_type: encoded.content_type,
        })
    }

    /// One JSON value in the stream's framing; `error` marks the final error element.
    fn element(&self, json: &[u8], error: bool) -> Bytes {
        let mut out = BytesMut::with_capacity(json.len() + 24);
        match self.format {
            StreamFormat::JsonArray => {
                out.put_slice(if self.wrote { b"," } else { b"[" });
                out.put_slice(json);
            }
            StreamFormat::Ndjson => {
                out.put_slice(json);
                out.put_u8(b'\n');
            }
            StreamFormat::Sse => {
                if error {
                    out.put_slice(b"event: error\n");
                }
                out.put_slice(b"data: ");
                out.put_slice(json);
                out.put_slice(b"\n\n");
            }
        }
        out.freeze()
    }

    /// The frames that end the stream: an error element (if `error`), the closing bracket, the
    /// trailers; `Err` when the stream can only be aborted.
    fn end(&mut self, error: Option<&GatewayError>) -> Result<Vec<Frame<Bytes>>, BodyError> {
        let mut frames = Vec::new();
        let (code, message) = match error {
            Some(error) => {
                let reply = error.to_reply(&self.pool, &self.encode);
                if self.raw {
                    if !self.trailers {
                        return Err(error.to_string().into());
                    }
                } else {
                    let mut json = b"{\"error\":".to_vec();
                    json.extend_from_slice(&reply.body);
                    json.push(b'}');
                    frames.push(Frame::data(self.element(&json, true)));
                    self.wrote = true;
                }
                (reply.code, error.grpc_message())
            }
            None => (0, String::new()),
        };
        self.status.set(code);
        if self.format == StreamFormat::JsonArray && !self.raw {
            frames.push(Frame::data(Bytes::from_static(b"]")));
        }
        if self.trailers {
            let mut trailers = HeaderMap::new();
            trailers.insert(
                HeaderName::from_static("grpc-status"),
                HeaderValue::from(code),
            );
            if !message.is_empty()
                && let Ok(value) = HeaderValue::from_str(&percent_encode(&message))
            {
                trailers.insert(HeaderName::from_static("grpc-message"), value);
            }
            frames.push(Frame::trailers(trailers));
        }
        Ok(frames)
    }
}

/// Bytes of messages that already arrived gathered into one frame at most: one chunk for the
/// client (and one write) per batch instead of per message, without waiting for any message.
const BATCH: usize = 64 * 1024;

/// The streaming body: frames already made, then the upstream stream, polled through.
struct Transcoded {
    /// `None` once the upstream stream has ended.
    rest: Option<MessageStream>,
    writer: Writer,
    /// At most a batch of messages, then the end of the stream.
    pending: VecDeque<Frame<Bytes>>,
    /// The stream can only be aborted, once `pending` is sent.
    abort: Option<BodyError>,
}

impl Transcoded {
    /// Queues the end of the stream, or the abort.
    fn finish(&mut self, error: Option<&GatewayError>) {
        self.rest = None;
        match self.writer.end(error) {
            Ok(frames) => self.pending.extend(frames),
            Err(abort) => self.abort = Some(abort),
        }
    }

    /// Queues what `item` makes: a message's frame, or the end of the stream.
    fn take(&mut self, item: Result<StreamItem, UpstreamError>) {
        let error = match item {
            Ok(StreamItem::Message(payload)) => match self.writer.message(&payload) {
                Ok(encoded) => {
                    self.pending.push_back(Frame::data(encoded.chunk));
                    return;
                }
                Err(error) => error,
            },
            Ok(StreamItem::End(status, _)) if status.is_ok() => return self.finish(None),
            Ok(StreamItem::End(status, _)) => GatewayError::Backend(status),
            Err(error) => GatewayError::Upstream(error),
        };
        tracing::debug!(error = %error, "server stream failed after its first message");
        self.finish(Some(&error));
    }

    /// Takes the items that are already there (never waits), up to [`BATCH`] bytes, and joins
    /// the data frames queued first into one.
    fn gather(&mut self, cx: &mut Context<'_>) {
        let mut size: usize = self
            .pending
            .iter()
            .filter_map(Frame::data_ref)
            .map(Bytes::len)
            .sum();
        while size < BATCH && self.abort.is_none() {
            let Some(rest) = self.rest.as_mut() else {
                break;
            };
            let Poll::Ready(item) = rest.poll_item(cx) else {
                break;
            };
            let before = self.pending.len();
            self.take(item);
            size += self
                .pending
                .range(before..)
                .filter_map(Frame::data_ref)
                .map(Bytes::len)
                .sum::<usize>();
        }
        let joined = self.pending.iter().take_while(|f| f.is_data()).count();
        if joined > 1 {
            let mut batch = BytesMut::with_capacity(size);
            for frame in self.pending.drain(..joined) {
                if let Some(data) = frame.data_ref() {
                    batch.put_slice(data);
                }
            }
            self.pending.push_front(Frame::data(batch.freeze()));
        }
    }
}

impl FrameSource for Transcoded {
    type Error = BodyError;

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<BodyError> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if let Some(abort) = self.abort.take() {
                return Poll::Ready(Some(Err(abort)));
            }
            let Some(rest) = self.rest.as_mut() else {
                return Poll::Ready(None);
            };
            let item = ready!(rest.poll_item(cx));
            self.take(item);
            self.gather(cx);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.rest.is_none() && self.abort.is_none()
    }
}
