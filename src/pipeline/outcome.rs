//! What the pipeline learned about a request on its way (route, admission, upstream call, sizes,
//! gRPC status), and the finish step that turns it into metrics, the server span of its trace and
//! an access log line — the one place per request where they are recorded.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Response;
use http_body::Body;

use super::ctx::RequestCtx;
use super::route::Served;
use crate::access_log::{AccessLog, AccessRecord, Rfc3339};
use crate::body::{BodyError, ResponseBody, StreamStatus};
use crate::edge::Admission;
use crate::error::GatewayError;
use crate::metrics::{Metrics, RequestLabels, RequestRecord, UNMATCHED_ROUTE};
use crate::runtime::{Binding, RouteOptions};
use crate::trace::RequestEnd;
use crate::transcode::request::RequestError;
use crate::upstream::{GrpcStatus, Upstream, UpstreamError};

/// Facts gathered while a request is handled, each written by the phase that learns it.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The route the request matched (finding the route).
    pub(crate) route: Option<Arc<RouteOptions>>,
    /// The rate-limit budget and the token's subject (admission).
    pub(crate) admission: Admission,
    /// Request body bytes read (the call).
    pub(crate) request_bytes: u64,
    /// The upstream call, when one was made (the call).
    pub(crate) call: Option<UpstreamCall>,
    /// gRPC status of the answer, 0 on success (responding; streams: when they end).
    pub(crate) grpc_status: i32,
    /// What kind of failure the request ended with, for the metrics (responding).
    pub(crate) failure: FailureKinds,
    /// How the response cache served it (`hit`, `miss`, ...), when its route caches (the call).
    pub(crate) cache: Option<&'static str>,
    /// The HTTP rule a transcoded call came through (its template is the span's `http.route`).
    pub(crate) binding: Option<Arc<Binding>>,
}

/// One upstream call as the metrics and access log report it.
#[derive(Debug)]
pub(crate) struct UpstreamCall {
    /// The upstream called.
    pub(crate) upstream: Arc<Upstream>,
    /// How long the call took, retries included.
    pub(crate) took: Duration,
    /// Attempts made (0 when it failed fast on open breakers).
    pub(crate) attempts: u32,
    /// `host:port` of the endpoint the last attempt went to, when known.
    pub(crate) endpoint: Option<String>,
}

impl UpstreamCall {
    /// A call to `upstream` that started at `started` and took `attempts`.
    pub(crate) fn new(
        upstream: &Arc<Upstream>,
        started: tokio::time::Instant,
        attempts: u32,
    ) -> UpstreamCall {
        UpstreamCall {
            upstream: upstream.clone(),
            took: started.elapsed(),
            attempts,
            endpoint: None,
        }
    }
}

/// The kinds of failure the metrics count, by family.
#[derive(Debug, Default)]
pub(crate) struct FailureKinds {
    /// Kind of transcoding failure.
    transcode: Option<&'static str>,
    /// Why the upstream call produced no gRPC answer.
    upstream: Option<&'static str>,
    /// Why authentication refused the request (401/403).
    auth: Option<&'static str>,
    /// The rate limit that refused the request (429).
    rate_limit: Option<String>,
}

impl Outcome {
    /// Notes the failure the request is answered with: its gRPC code and its kinds.
    pub(crate) fn failed(&mut self, error: &GatewayError) {
        self.grpc_status = error.code();
        let per_try = self.route.as_ref().and_then(|r| r.retry.per_try_timeout);
        self.failure = FailureKinds {
            transcode: transcode_kind(error),
            upstream: upstream_failure(error, per_try),
            auth: match error {
                GatewayError::Auth(e) => Some(e.metric_reason()),
                _ => None,
            },
            rate_limit: match error {
                GatewayError::RateLimited(e) => Some(e.limit_name().to_owned()),
                _ => None,
            },
        };
    }
}

/// The `reason` label of an upstream call that produced no gRPC answer.
fn upstream_failure(
    error: &GatewayError,
    per_try_timeout: Option<Duration>,
) -> Option<&'static str> {
    let GatewayError::Upstream(error) = error else {
        return None;
    };
    Some(match error {
        UpstreamError::Unavailable { .. } => "unavailable",
        UpstreamError::Tls { .. } => "tls",
        // The call loop reports a per-try timeout with the per-try bound, and the whole call's
        // deadline with the deadline.
        UpstreamError::DeadlineExceeded { timeout, .. } if per_try_timeout == Some(*timeout) => {
            "per_try_timeout"
        }
        UpstreamError::DeadlineExceeded { .. } => "deadline_exceeded",
        UpstreamError::CircuitOpen { .. } => "circuit_open",
        UpstreamError::InvalidResponse { .. } => "invalid_response",
    })
}

/// The `kind` label of a transcoding failure; `None` for failures that are not transcoding.
fn transcode_kind(error: &GatewayError) -> Option<&'static str> {
    match error {
        GatewayError::BadRequest(e) => Some(match e {
            RequestError::Json(_) => "request_json",
            RequestError::UnknownQueryParameter { .. }
            | RequestError::InvalidQueryParameter { .. }
            | RequestError::RepeatedScalarQueryParameter { .. }
            | RequestError::QueryParameterInBody { .. } => "request_query",
            RequestError::InvalidPathParameter { .. } => "request_path",
            _ => "request_body",
        }),
        GatewayError::UnsupportedMediaType(_) => Some("content_type"),
        GatewayError::ResponseTranscode(_) => Some("response"),
        _ => None,
    }
}

/// Records a finished request once: metrics, then the access log line. A streaming answer is
/// recorded when its body ends (bytes written, the final gRPC status), not at its head.
pub(crate) fn finish(
    response: Response<ResponseBody>,
    ctx: RequestCtx,
    outcome: Outcome,
    metrics: &Arc<Metrics>,
    access_log: Option<&AccessLog>,
) -> Response<ResponseBody> {
    if response.body().is_stream() {
        let (metrics, log) = (metrics.clone(), access_log.cloned());
        return record_when_done(response, ctx, outcome, metrics, log);
    }
    let response_bytes = response.body().size_hint().exact().unwrap_or(0);
    let status = response.status().as_u16();
    record(&ctx, &outcome, status, response_bytes, metrics, access_log);
    response
}

/// Records a request whose status and body size are known (streams: when the body has ended).
fn record(
    ctx: &RequestCtx,
    outcome: &Outcome,
    status: u16,
    response_bytes: u64,
    metrics: &Metrics,
    access_log: Option<&AccessLog>,
) {
    let duration = ctx.started.elapsed();
    let route = outcome.route.as_ref().map(|r| r.name.as_str());
    let call = outcome.call.as_ref();
    metrics.record_request(&RequestRecord {
        labels: RequestLabels {
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            response_code: status,
            grpc_response_status: outcome.grpc_status,
            listener: ctx
                .served
                .as_ref()
                .map_or_else(|| Arc::from(""), |s| s.listener_name()),
        },
        duration,
        request_bytes: outcome.request_bytes,
        response_bytes,
        upstream: call.map(|c| (c.upstream.name.as_str(), c.took, c.attempts)),
        transcode_error: outcome.failure.transcode,
        upstream_failure: outcome.failure.upstream,
        rate_limited: outcome.failure.rate_limit.as_deref(),
        auth_failure: outcome.failure.auth,
        cache: outcome.cache,
    });
    end_span(ctx, outcome, status);
    if let Some(log) = access_log {
        write_line(log, ctx, outcome, (status, response_bytes), duration);
    }
}

/// The request's access log line.
fn write_line(
    log: &AccessLog,
    ctx: &RequestCtx,
    outcome: &Outcome,
    (status, response_bytes): (u16, u64),
    duration: std::time::Duration,
) {
    let route = outcome.route.as_ref().map(|r| r.name.as_str());
    let call = outcome.call.as_ref();
    log.write(&AccessRecord {
        time: Rfc3339::of(SystemTime::now()),
        request_id: ctx.request_id.to_str().unwrap_or_default(),
        trace_id: ctx.trace.trace_hex().as_str(),
        client: ctx.peer,
        listener: ctx.served.as_deref().map(Served::listener),
        method: ctx.method.as_str(),
        path: ctx.uri.path(),
        route,
        status,
        grpc_status: outcome.grpc_status,
        duration_ms: duration.as_secs_f64() * 1000.0,
        bytes_in: outcome.request_bytes,
        bytes_out: response_bytes,
        upstream: call.map(|c| c.upstream.name.as_str()),
        upstream_endpoint: call.and_then(|c| c.endpoint.as_deref()),
        attempts: call.map_or(0, |c| c.attempts),
        subject: outcome.admission.subject.as_deref(),
    });
}

/// Ends the request's server span (exported when its trace is sampled and spans are exported).
fn end_span(ctx: &RequestCtx, outcome: &Outcome, status: u16) {
    ctx.trace.end_request(&RequestEnd {
        method: ctx.method.as_str(),
        path: ctx.uri.path(),
        route_template: outcome.binding.as_ref().map(|b| b.template.as_str()),
        grpc: ctx.protocol.is_grpc(),
        status,
        grpc_status: outcome.grpc_status,
        peer: ctx.peer,
    });
}

/// Hands a streaming response back with a body that records the request when the stream ends.
fn record_when_done(
    response: Response<ResponseBody>,
    ctx: RequestCtx,
    outcome: Outcome,
    metrics: Arc<Metrics>,
    access_log: Option<AccessLog>,
) -> Response<ResponseBody> {
    let (parts, body) = response.into_parts();
    let writer_status = parts.extensions.get::<StreamStatus>().cloned();
    let pending = Pending {
        ctx,
        outcome,
        status: parts.status.as_u16(),
        metrics,
        access_log,
    };
    let body = Accounted {
        inner: body,
        bytes: 0,
        trailer_status: None,
        writer_status,
        pending: Some(pending),
    };
    Response::from_parts(parts, ResponseBody::stream(body))
}

/// What is needed to record a request later.
struct Pending {
    ctx: RequestCtx,
    outcome: Outcome,
    status: u16,
    metrics: Arc<Metrics>,
    access_log: Option<AccessLog>,
}

/// A streaming body that records its request once, when it ends: normally, with an error, or
/// dropped early because the client went away (then the status is CANCELLED).
struct Accounted {
    inner: ResponseBody,
    bytes: u64,
    /// `grpc-status` of a trailers frame (gRPC pass-through, or clients that asked for trailers).
    trailer_status: Option<i32>,
    /// The status a transcoded stream's writer ended with.
    writer_status: Option<StreamStatus>,
    pending: Option<Pending>,
}

impl Accounted {
    fn done(&mut self, client_left: bool) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        pending.outcome.grpc_status = match (client_left, self.trailer_status, &self.writer_status)
        {
            (true, _, _) => crate::error::code::CANCELLED,
            (false, Some(code), _) => code,
            (false, None, Some(writer)) => writer.get(),
            (false, None, None) => pending.outcome.grpc_status,
        };
        record(
            &pending.ctx,
            &pending.outcome,
            pending.status,
            self.bytes,
            &pending.metrics,
            pending.access_log.as_ref(),
        );
    }
}

impl http_body::Body for Accounted {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.trailer_status = GrpcStatus::from_headers(trailers).map(|s| s.code);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.done(false),
            Poll::Pending => {}
        }
        // hyper stops polling once a body says it has ended, so the end is noticed here too.
        if http_body::Body::is_end_stream(&this.inner) {
            this.done(false);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Accounted {
    fn drop(&mut self) {
        // A body dropped before its end means the client went away.
        let ended = http_body::Body::is_end_stream(&self.inner);
        self.done(!ended);
    }
}
