//! The per-request sequence, in one place and in order:
//! route → per-client rate limits → authentication → per-subject rate limits → deadline → body →
//! transcode request → upstream call → transcode response.
//! Every failure becomes a [`GatewayError`] and is answered through its one mapping table.

pub mod auth;
mod body;
mod ctx;
mod grpc;
mod inbound;
mod metadata;
mod outcome;
pub mod rate_limit;
mod stream;

pub use ctx::{RequestCtx, RequestIds};

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::access_log::AccessLog;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::runtime::{Binding, Runtime};
use crate::transcode::request::{RequestParts, encode_request};
use crate::transcode::response::decode_and_encode;
use crate::transcode::router::RouteMiss;
use crate::upstream::CallOptions;

pub use body::{BodyError, ResponseBody};

/// The gateway: the current runtime snapshot plus process-wide request state.
#[derive(Debug)]
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    request_ids: RequestIds,
    /// Every metric family, recorded once per request by the finish step.
    metrics: Arc<Metrics>,
    /// Where access log lines go, when enabled.
    access_log: Option<AccessLog>,
}

impl Gateway {
    /// A gateway serving `runtime`.
    pub fn new(runtime: Runtime) -> Gateway {
        Gateway::with_ops(runtime, Arc::new(Metrics::new()), None)
    }

    /// A gateway serving `runtime` that records into `metrics` and writes `access_log`.
    pub fn with_ops(
        runtime: Runtime,
        metrics: Arc<Metrics>,
        access_log: Option<AccessLog>,
    ) -> Gateway {
        crate::upstream::health::start(&runtime.upstreams);
        Gateway {
            runtime: ArcSwap::from_pointee(runtime),
            request_ids: RequestIds::new(),
            metrics,
            access_log,
        }
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The snapshot new requests use.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new snapshot; requests in flight finish on the one they started with.
    pub fn replace_runtime(&self, runtime: Runtime) {
        crate::upstream::health::start(&runtime.upstreams);
        self.runtime.store(Arc::new(runtime));
    }

    /// Handles one HTTP request; never fails: errors are answered as JSON.
    pub async fn handle<B>(&self, request: Request<B>, peer: SocketAddr) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let runtime = self.runtime.load_full();
        let ctx = RequestCtx::new(&request, peer, &self.request_ids);
        let mut binding_seen = None;
        let mut outcome = outcome::Outcome::default();
        let mut budget = rate_limit::Budget::default();
        // Native gRPC, gRPC-Web and their CORS preflights bypass transcoding.
        if let Some(answer) = grpc::preflight(&runtime, &request) {
            return self.finish_pass_through(&ctx, &outcome, answer);
        }
        if let Some(protocol) = grpc::Protocol::of(request.method(), request.headers()) {
            let answer = grpc::forward(&runtime, request, protocol, &ctx, &mut outcome).await;
            return self.finish_pass_through(&ctx, &outcome, answer);
        }
        let result = async {
            let (binding, bindings) = find_route(&runtime, request.method(), request.uri().path())?;
            binding_seen = Some(binding.clone());
            outcome.binding = Some(binding.clone());
            let route = &binding.method;
            // Edge checks: a cheap per-client limit, the token, then the per-subject limits.
            let (limits, policy) = (&route.options.rate_limits, &route.options.auth);
            limits.check_before_auth(request.headers(), peer, &mut budget)?;
            let token_query = request.uri().query();
            let verified = runtime
                .auth
                .authenticate(policy, request.headers(), token_query)
                .await?;
            let claims = verified.as_ref().map(|v| &*v.claims);
            outcome.subject = auth::subject(claims);
            limits.check_after_auth(claims, request.headers(), peer, &mut budget)?;
            let timeout = metadata::deadline(route.options.timeout, request.headers())?;
            let mut forwarded =
                metadata::forward_request_headers(request.headers(), &route.options.headers, &ctx);
            let headers = request.headers();
            // Verified claims in, client-sent copies (and, per route, Authorization) out.
            runtime
                .auth
                .forward(&mut forwarded, policy, verified.as_ref(), headers);
            let query = runtime.auth.query_without_token(request.uri().query());
            if route.client_streaming {
                let inbound = inbound::Inbound {
                    framing: match binding.raw_body {
                        true => None,
                        false => Some(inbound::framing(request.headers())?),
                    },
                    content_type: request
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    prefs: stream::ClientPrefs::of(request.headers()),
                    binding: binding.clone(),
                    path_bindings: bindings
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                    query,
                    forwarded,
                    timeout,
                };
                let answer = inbound::call(&runtime, inbound, request.into_body(), &mut outcome);
                return answer.await.map(Answer::Stream);
            }
            // A content type describes a body; clients that send one on a bodiless GET or
            // DELETE must not be refused for it.
            let content_type = if has_no_body(request.body()) && !binding.raw_body {
                None
            } else {
                check_content_type(&binding, request.headers())?
            };
            let stream_prefs = route
                .server_streaming
                .then(|| stream::ClientPrefs::of(request.headers()));
            let body = read_body(
                request.into_body(),
                route.options.max_request_bytes,
                runtime.config.limits.body_read_timeout,
            )
            .await?;
            outcome.request_bytes = body.len() as u64;
            let bindings: Vec<(&str, String)> = bindings;
            let payload = encode_request(
                &route.input,
                &binding.body,
                &RequestParts {
                    path_bindings: &bindings,
                    query: query.as_deref(),
                    body: &body,
                    content_type: content_type.as_deref(),
                },
                &route.options.decode,
                &route.options.query,
            )
            .map(Bytes::from)?;
            let call = CallOptions::for_route(&route.options.retry, &binding.http_method, timeout);
            let upstream_started = tokio::time::Instant::now();
            if let Some(prefs) = stream_prefs {
                let grpc_path = &route.grpc_path;
                let (opened, attempts) = route
                    .upstream
                    .open_stream(grpc_path, payload, forwarded, &call)
                    .await;
                outcome.upstream = Some((route.upstream.clone(), upstream_started.elapsed()));
                outcome.attempts = attempts;
                let extra = crate::upstream::CallOutcome::attempts_only(attempts);
                return stream::respond(&runtime, &binding, opened, extra, prefs)
                    .map(Answer::Stream);
            }
            let called = route
                .upstream
                .call(&route.grpc_path, payload, forwarded, &call)
                .await;
            outcome.upstream = Some((route.upstream.clone(), upstream_started.elapsed()));
            outcome.attempts = called.attempts;
            outcome.endpoint = called.endpoint.as_ref().map(|e| e.authority.clone());
            let attempts = called.attempts_header();
            let reply = called.result.map_err(|e| Failure {
                error: e.into(),
                headers: attempts.clone(),
            })?;
            let mut response_headers =
                metadata::response_headers(&reply.metadata, &route.options.headers);
            response_headers.extend(attempts);
            let Some(message) = reply.message else {
                return Err(Failure {
                    error: GatewayError::Backend(reply.status),
                    headers: response_headers,
                });
            };
            let encoded = decode_and_encode(
                &route.output,
                &message,
                binding.response_body.as_ref(),
                &route.options.encode,
            )
            .map_err(|e| Failure {
                error: GatewayError::ResponseTranscode(e.to_string()),
                headers: response_headers.clone(),
            })?;
            Ok(Answer::Unary(encoded, response_headers))
        }
        .await;
        let mut response = match result {
            Ok(Answer::Stream(response)) => response,
            Ok(Answer::Unary(encoded, extra)) => {
                let mut response = Response::new(Full::new(Bytes::from(encoded.body)).into());
                set_content_type(&mut response, &encoded.content_type);
                response.headers_mut().extend(extra);
                response
            }
            Err(Failure {
                error,
                headers: extra,
            }) => {
                let encode = binding_seen
                    .as_ref()
                    .map(|b| &b.method.options.encode)
                    .unwrap_or(&runtime.default_encode);
                let reply = error.to_reply(&runtime.pool, encode);
                outcome.failed(&error, reply.code);
                if reply.status.is_server_error() {
                    tracing::warn!(request_id = ?ctx.request_id, error = %error, "request failed");
                } else {
                    tracing::debug!(request_id = ?ctx.request_id, error = %error, "request rejected");
                }
                let mut response = Response::new(Full::new(Bytes::from(reply.body)).into());
                *response.status_mut() = reply.status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response.headers_mut().extend(extra);
                for (name, value) in reply.headers {
                    response.headers_mut().insert(name, value);
                }
                response
            }
        };
        budget.write(response.headers_mut());
        ctx.finish(&mut response);
        if response.body().is_stream() {
            let (metrics, log) = (self.metrics.clone(), self.access_log.clone());
            return outcome::record_when_done(response, ctx, outcome, metrics, log);
        }
        outcome::finish(
            &ctx,
            &outcome,
            &response,
            &self.metrics,
            self.access_log.as_ref(),
        );
        response
    }

    /// Waits (at most `timeout`) until the access log has written every line queued so far.
    pub async fn flush_access_log(&self, timeout: std::time::Duration) {
        if let Some(log) = &self.access_log
            && !log.flush(timeout).await
        {
            tracing::warn!("access log lines may be missing: the writer did not finish in time");
        }
    }

    /// One round of periodic work: prunes idle rate-limit keys, refreshes remote key sets.
    pub async fn maintain(&self) {
        let runtime = self.runtime.load_full();
        runtime.rate_limits.maintain();
        runtime.auth.maintain().await;
    }
}

impl Gateway {
    /// The finish step for answers that bypassed transcoding.
    fn finish_pass_through(
        &self,
        ctx: &RequestCtx,
        outcome: &outcome::Outcome,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        ctx.finish(&mut response);
        if response.body().is_stream() {
            let (metrics, log) = (self.metrics.clone(), self.access_log.clone());
            return outcome::record_when_done(response, ctx.clone(), outcome.clone(), metrics, log);
        }
        let log = self.access_log.as_ref();
        outcome::finish(ctx, outcome, &response, &self.metrics, log);
        response
    }
}

/// A successful answer: a unary reply with its extra headers, or a streaming response.
enum Answer {
    Unary(
        crate::transcode::response::HttpResponseBody,
        http::HeaderMap,
    ),
    Stream(Response<ResponseBody>),
}

/// A failed request plus the backend metadata already allowed into the response, if any.
struct Failure {
    error: GatewayError,
    headers: http::HeaderMap,
}

impl<E: Into<GatewayError>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            error: error.into(),
            headers: http::HeaderMap::new(),
        }
    }
}

/// The binding a request path selected, with its path-variable values.
type RouteFound<'r> = (Arc<Binding>, Vec<(&'r str, String)>);

fn find_route<'r>(
    runtime: &'r Runtime,
    method: &Method,
    path: &str,
) -> Result<RouteFound<'r>, GatewayError> {
    match runtime.router.lookup(method.as_str(), path) {
        Ok(found) => Ok((found.value.clone(), found.bindings)),
        Err(RouteMiss::NotFound) => Err(GatewayError::RouteNotFound {
            path: path.to_owned(),
        }),
        Err(RouteMiss::MethodNotAllowed { allow }) => Err(GatewayError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_owned(),
            allow,
        }),
        Err(RouteMiss::MalformedPath(reason)) => Err(GatewayError::MalformedPath(reason)),
    }
}

/// JSON bodies must be `application/json` (or `+json`) in UTF-8; raw `HttpBody` bodies take any type.
/// Returns the content type for HttpBody bindings.
fn check_content_type(
    binding: &Binding,
    headers: &http::HeaderMap,
) -> Result<Option<String>, GatewayError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    if binding.raw_body {
        return Ok(value);
    }
    let Some(text) = value else { return Ok(None) };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let utf8 = parts.all(|param| match param.trim().split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    if json && utf8 {
        Ok(None)
    } else {
        Err(GatewayError::UnsupportedMediaType(text))
    }
}

/// True when the request is known to carry no body bytes (no body, or `Content-Length: 0`).
fn has_no_body<B: http_body::Body>(body: &B) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

/// Reads the whole body, refusing it early when its declared or actual size passes `limit`, and
/// giving up when it has not all arrived within `timeout` (hyper bounds only the head's reading).
async fn read_body<B>(
    body: B,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, GatewayError>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| GatewayError::BodyReadTimeout { after: timeout })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BodyRead(e.to_string())),
    }
}

fn set_content_type(response: &mut Response<ResponseBody>, content_type: &str) {
    let value = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
}

/// The answer for requests the pipeline never sees (admin and listener-level refusals).
pub fn plain_json(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod body_timeout_tests {
    use super::*;
    use std::time::Duration;

    /// A body that sends one chunk and then never ends.
    struct Stalled(bool);

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if self.0 {
                std::task::Poll::Pending
            } else {
                self.0 = true;
                std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"{")))))
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_after_the_configured_time() {
        let started = tokio::time::Instant::now();
        let result = read_body(Stalled(false), 1024, Duration::from_secs(30)).await;
        assert!(matches!(
            result,
            Err(GatewayError::BodyReadTimeout { after }) if after == Duration::from_secs(30)
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_body_is_read_before_the_timeout() {
        let body = Full::new(Bytes::from_static(b"{}"));
        let result = read_body(body, 1024, Duration::from_secs(30)).await;
        assert_eq!(result.ok(), Some(Bytes::from_static(b"{}")));
    }
}
