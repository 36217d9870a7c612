//! What the pipeline learned about a request on its way (route, upstream call, sizes, gRPC
//! status), and the finish step that turns it into metrics and an access log line — the one
//! place per request where both are recorded.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Response;

use super::body::{BodyError, ResponseBody, StreamStatus};
use super::ctx::RequestCtx;
use crate::access_log::{AccessLog, AccessRecord, rfc3339};
use crate::error::GatewayError;
use crate::metrics::{Metrics, RequestLabels, RequestRecord, UNMATCHED_ROUTE};
use crate::runtime::Binding;
use crate::transcode::request::RequestError;
use crate::upstream::{GrpcStatus, Upstream, UpstreamError};

/// Facts gathered while a request is handled.
#[derive(Debug, Default, Clone)]
pub(super) struct Outcome {
    /// The binding the path selected.
    pub(super) binding: Option<Arc<Binding>>,
    /// Request body bytes read.
    pub(super) request_bytes: u64,
    /// The upstream called and how long the call took, retries included.
    pub(super) upstream: Option<(Arc<Upstream>, Duration)>,
    /// Attempts the upstream call made (0 when it failed fast on open breakers).
    pub(super) attempts: u32,
    /// gRPC status of the answer (0 on success).
    pub(super) grpc_status: i32,
    /// Kind of transcoding failure, if one happened.
    pub(super) transcode_error: Option<&'static str>,
    /// Why the upstream call produced no gRPC answer, if it did not.
    pub(super) upstream_failure: Option<&'static str>,
    /// The route of a native gRPC / gRPC-Web call (those have no HTTP binding).
    pub(super) grpc_route: Option<Arc<crate::runtime::RouteOptions>>,
    /// The rate limit that refused the request (429), if one did.
    pub(super) rate_limited: Option<String>,
    /// Why authentication refused the request (401/403), if it did.
    pub(super) auth_failure: Option<&'static str>,
    /// `sub` of the verified token, for the access log.
    pub(super) subject: Option<String>,
    /// `host:port` of the endpoint the upstream call's last attempt went to.
    pub(super) endpoint: Option<String>,
}

impl Outcome {
    /// Notes the failure's gRPC code and, for transcoding failures, their kind.
    pub(super) fn failed(&mut self, error: &GatewayError, code: i32) {
        self.grpc_status = code;
        self.transcode_error = transcode_kind(error);
        match error {
            GatewayError::RateLimited(e) => self.rate_limited = Some(e.limit_name().to_owned()),
            GatewayError::Auth(e) => self.auth_failure = Some(e.metric_reason()),
            _ => {}
        }
        self.upstream_failure = match error {
            GatewayError::Upstream(UpstreamError::Unavailable { .. }) => Some("unavailable"),
            // The call loop reports a per-try timeout with the per-try bound, and the whole
            // call's deadline with the deadline.
            GatewayError::Upstream(UpstreamError::DeadlineExceeded { timeout, .. })
                if self
                    .binding
                    .as_ref()
                    .and_then(|b| b.method.options.retry.per_try_timeout)
                    == Some(*timeout) =>
            {
                Some("per_try_timeout")
            }
            GatewayError::Upstream(UpstreamError::DeadlineExceeded { .. }) => {
                Some("deadline_exceeded")
            }
            GatewayError::Upstream(UpstreamError::CircuitOpen { .. }) => Some("circuit_open"),
            GatewayError::Upstream(UpstreamError::InvalidResponse { .. }) => {
                Some("invalid_response")
            }
            _ => None,
        };
    }
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

/// Records the finished request once: metrics, then the access log line.
pub(super) fn finish<B: http_body::Body>(
    ctx: &RequestCtx,
    outcome: &Outcome,
    response: &Response<B>,
    metrics: &Metrics,
    access_log: Option<&AccessLog>,
) {
    let response_bytes = response.body().size_hint().exact().unwrap_or(0);
    record(
        ctx,
        outcome,
        response.status().as_u16(),
        response_bytes,
        metrics,
        access_log,
    );
}

/// Records a request whose status and body size are known (streams: when the body has ended).
pub(super) fn record(
    ctx: &RequestCtx,
    outcome: &Outcome,
    status: u16,
    response_bytes: u64,
    metrics: &Metrics,
    access_log: Option<&AccessLog>,
) {
    let duration = ctx.started.elapsed();
    let route = outcome
        .binding
        .as_ref()
        .map(|b| b.method.options.name.as_str())
        .or_else(|| outcome.grpc_route.as_ref().map(|o| o.name.as_str()));
    let attempts = outcome.attempts;
    metrics.record_request(&RequestRecord {
        labels: RequestLabels {
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            response_code: status,
            grpc_response_status: outcome.grpc_status,
        },
        duration,
        request_bytes: outcome.request_bytes,
        response_bytes,
        upstream: outcome
            .upstream
            .as_ref()
            .map(|(u, took)| (u.name.as_str(), *took, attempts)),
        transcode_error: outcome.transcode_error,
        upstream_failure: outcome.upstream_failure,
        rate_limited: outcome.rate_limited.as_deref(),
        auth_failure: outcome.auth_failure,
    });
    if let Some(log) = access_log {
        log.write(&AccessRecord {
            time: rfc3339(SystemTime::now()),
            request_id: ctx.request_id.to_str().unwrap_or_default(),
            client: ctx.peer.to_string(),
            method: ctx.method.as_str(),
            path: ctx.uri.path(),
            route,
            status,
            grpc_status: outcome.grpc_status,
            duration_ms: duration.as_secs_f64() * 1000.0,
            bytes_in: outcome.request_bytes,
            bytes_out: response_bytes,
            upstream: outcome.upstream.as_ref().map(|(u, _)| u.name.as_str()),
            upstream_endpoint: outcome.endpoint.as_deref(),
            attempts,
            subject: outcome.subject.as_deref(),
        });
    }
}

/// Hands a streaming response back with a body that records the request when the stream ends
/// (bytes written, the final gRPC status), instead of at the response head.
pub(super) fn record_when_done(
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
