//! The request pipeline, in one place and in order ([`Gateway::handle`]):
//!
//! 1. **find the route** ([`route`]): the head's own rules first (one `Host`, the HTTP/2
//!    header-list limit) and the path's dot segments removed; then the HTTP rule a JSON
//!    request's path selects, or the gRPC method a gRPC / gRPC-Web request names (a CORS
//!    preflight for one is answered here, and `GET` of the OpenAPI document's path too);
//! 2. **admit** ([`crate::edge::admit`], the same for every kind of call): rate limits before
//!    authentication → the token → rate limits after it → the deadline → the metadata;
//! 3. **call**, by kind: [`unary`], [`server_stream`], [`client_stream`] (client and bidi
//!    streams), or [`grpc`] pass-through (native gRPC and gRPC-Web, [`grpc_web`]); transcoded
//!    calls pass the [`cached`] step: GETs of caching routes are answered from the response
//!    cache, and writes invalidate it; unary writes of routes with `events:` pass the
//!    [`recorded`] step, which spools their event before (or, `best_effort`, while) answering;
//! 4. **respond**: a failure becomes its response through the one error table
//!    ([`crate::error`]), in the request's [`protocol`];
//! 5. **finish** ([`outcome`]): metrics and the access log line, exactly once (streams: when
//!    they end).

mod answer;
mod cached;
mod client_stream;
mod ctx;
mod grpc;
mod grpc_inflate;
mod grpc_web;
mod outcome;
pub mod protocol;
mod recorded;
mod reflection;
mod request;
mod route;
mod server_stream;
mod unary;

pub use ctx::{RequestCtx, RequestIds};
pub use route::Served;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use tracing::Instrument;

use crate::access_log::AccessLog;
use crate::body::{RequestBody, ResponseBody};
use crate::compression;
use crate::edge::metadata::Forwarding;
use crate::edge::rate_limit::client_ip;
use crate::edge::{self, Admitted, RequestHead, cors};
use crate::events::Events;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::state::Shared;
use crate::trace::{RequestTrace, Tracer};
use crate::upstream::ClientId;
use answer::{Answer, Failure, HttpCall};
use outcome::Outcome;
use protocol::Protocol;
use route::{Found, Target};

/// gRPC `UNIMPLEMENTED`, which wakes the reflection refresh.
const UNIMPLEMENTED: i32 = 12;

/// The gateway: the current runtime snapshot plus process-wide request state.
#[derive(Debug)]
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    request_ids: RequestIds,
    /// Every metric family, recorded once per request by the finish step.
    metrics: Arc<Metrics>,
    /// Where access log lines go, when enabled.
    access_log: Option<AccessLog>,
    /// What this replica shares with the others (Redis, the fleet's size).
    shared: Shared,
    /// The event outbox, when this process records events of writes.
    events: Option<Arc<Events>>,
    /// Wakes the reflection refresh (`reflection::refresh`) when a backend answered UNIMPLEMENTED.
    reflection_wake: Arc<tokio::sync::Notify>,
    /// Trace sampling, and the span exporter when spans are exported.
    tracer: Tracer,
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
            shared: Shared::alone(),
            events: None,
            reflection_wake: Arc::new(tokio::sync::Notify::new()),
            tracer: Tracer::default(),
        }
    }

    /// The same gateway, tracing requests with `tracer` (sampling, span export).
    pub fn tracing(mut self, tracer: Tracer) -> Gateway {
        self.tracer = tracer;
        self
    }

    /// The same gateway, spooling the events of writes through `events` (routes with `events:`).
    pub fn recording(mut self, events: Arc<Events>) -> Gateway {
        self.events = Some(events);
        self
    }

    /// The event outbox, when events are recorded.
    pub fn events(&self) -> Option<&Arc<Events>> {
        self.events.as_ref()
    }

    /// The same gateway, sharing state with other replicas through `shared`.
    pub fn sharing(mut self, shared: Shared) -> Gateway {
        if let Some(tier) = &shared.cache {
            self.runtime.load().cache.attach(tier);
        }
        self.shared = shared;
        self
    }

    /// Hands the shared cache tier's events (other replicas' invalidations, a reconnect) to the
    /// response cache until the tier's subscription ends (never, alone: no tier).
    pub async fn follow_cache_events(&self) {
        let Some(tier) = &self.shared.cache else {
            return std::future::pending().await;
        };
        let mut events = tier.subscribe();
        while let Some(event) = events.recv().await {
            self.apply_cache_event(event);
        }
    }

    /// What this replica shares with the others.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// What the reflection refresh waits on besides its interval: notified when a backend of a
    /// routed method answered UNIMPLEMENTED while some upstream serves its descriptors by
    /// reflection (the method may be gone from a changed schema).
    pub fn reflection_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.reflection_wake
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
        if self.events.is_none() && Events::wanted(&runtime.config) {
            tracing::warn!(
                "routes with events: were added by a reload; restart the gateway to record their events"
            );
        }
        if let Some(tier) = &self.shared.cache {
            runtime.cache.attach(tier);
        }
        crate::upstream::health::start(&runtime.upstreams);
        self.runtime.store(Arc::new(runtime));
    }

    /// Handles one request, top to bottom; never fails: every failure is answered in the
    /// request's protocol (JSON `google.rpc.Status`, or a gRPC status).
    pub async fn handle<B: RequestBody>(
        &self,
        mut request: Request<B>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        let runtime = self.runtime.load_full();
        let ctx = RequestCtx::new(&request, peer, &self.request_ids, &self.tracer);
        // Every log line about the request carries its trace id: the span is at the top level
        // so that any filter that lets an event through keeps its span too.
        let span = tracing::error_span!("request", trace_id = %ctx.trace.trace_hex());
        let mut outcome = Outcome::default();
        let answer: Answer = async {
            let target = match route::find(&runtime, &mut request, ctx.protocol)? {
                Found::Call(target) => target,
                Found::Preflight(asked) => return Ok(preflight(&asked, request.headers())?),
                Found::Document(document) => return Ok(*document),
            };
            outcome.route = Some(target.options().clone());
            let head = RequestHead::of(&request, peer, &ctx.request_id);
            let admission = &mut outcome.admission;
            let (forwarding, options) = (forwarding(ctx.protocol), target.options());
            let shared = (&*runtime.auth, &self.shared);
            let admitted = edge::admit(shared, options, head, forwarding, admission).await?;
            let (out, from) = (&mut outcome, (ctx.protocol, peer, &ctx.trace));
            let scope = (&*runtime, self.events.as_deref());
            call(scope, target, request, from, admitted, out).await
        }
        .instrument(span.clone())
        .await;
        let _in_span = span.enter();
        let response = respond(&runtime, &ctx, &mut outcome, answer);
        self.wake_reflection(&outcome);
        let (metrics, log) = (&self.metrics, self.access_log.as_ref());
        outcome::finish(response, ctx, outcome, metrics, log)
    }

    /// Wakes the reflection refresh when the call ended UNIMPLEMENTED from an upstream whose
    /// descriptors come by reflection: its schema may have lost the method.
    fn wake_reflection(&self, outcome: &Outcome) {
        let reflecting = || {
            let call = outcome.call.as_ref();
            call.is_some_and(|c| c.upstream.config().reflection)
        };
        if outcome.grpc_status == UNIMPLEMENTED && reflecting() {
            self.reflection_wake.notify_one();
        }
    }

    /// The hook where the shared cache tier's events (other replicas' invalidations, a
    /// reconnect) reach the response cache of the runtime in force.
    pub fn apply_cache_event(&self, event: crate::state::cache::RemoteEvent) {
        self.runtime.load().cache.apply_remote(event);
    }

    /// Waits (at most `timeout`) until the access log has written every line queued so far.
    pub async fn flush_access_log(&self, timeout: std::time::Duration) {
        if let Some(log) = &self.access_log
            && !log.flush(timeout).await
        {
            tracing::warn!("access log lines may be missing: the writer did not finish in time");
        }
    }

    /// Waits (at most `timeout`) until the spans of finished requests have been exported.
    pub async fn flush_spans(&self, timeout: std::time::Duration) {
        if let Some(exporter) = &self.tracer.exporter
            && !exporter.flush(timeout).await
        {
            tracing::warn!("trace spans may be missing: the exporter did not finish in time");
        }
    }

    /// One round of periodic work: prunes idle rate-limit keys and expired cached answers,
    /// refreshes remote key sets.
    pub async fn maintain(&self) {
        let runtime = self.runtime.load_full();
        runtime.rate_limits.maintain();
        runtime.cache.maintain();
        runtime.auth.maintain().await;
    }
}

/// The gateway's own answer to a CORS preflight.
fn preflight(
    preflight: &route::Preflight,
    headers: &http::HeaderMap,
) -> Result<Response<ResponseBody>, cors::CorsRefusal> {
    cors::preflight(preflight.options.cors.as_ref(), headers, &preflight.methods)
}

/// Who a request is for, as upstream breakers tell clients apart: its address as rate limits
/// read it (the socket peer, or behind `trusted_proxy_hops` proxies their `X-Forwarded-For`
/// entry), so one client behind a trusted proxy is one client.
fn client<B>(runtime: &Runtime, request: &Request<B>, peer: SocketAddr) -> ClientId {
    let hops = runtime.config.rate_limits.trusted_proxy_hops;
    ClientId::of(client_ip(request.headers(), peer, hops))
}

/// The call of one kind, boxed: each kind's future is several KiB, and an `async fn` choosing
/// among them laid them out side by side (12 KiB copied into every request's future).
type CallFuture<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// The call phase: the backend call for the target's kind, for the client at `peer`.
fn call<'a, B: RequestBody>(
    (runtime, events): (&'a Runtime, Option<&'a Events>),
    target: Target<'a>,
    request: Request<B>,
    (protocol, peer, trace): (Protocol, SocketAddr, &'a RequestTrace),
    admitted: Admitted,
    outcome: &'a mut Outcome,
) -> CallFuture<'a> {
    let client = client(runtime, &request, peer);
    let call = match target {
        Target::Grpc(method) => {
            return Box::pin(async move {
                let from = (protocol, client, trace);
                grpc::forward(&method, request, from, admitted, outcome).await
            });
        }
        Target::Reflection(_, exposed) => {
            let _ = admitted;
            let response = reflection::answer(*exposed, request);
            return Box::pin(std::future::ready(Ok(response)));
        }
        Target::Http(binding, vars) => {
            outcome.binding = Some(binding.clone());
            HttpCall {
                runtime,
                binding,
                vars,
                request,
                admitted,
                client,
                trace,
            }
        }
    };
    let (kind, write) = (&call.binding.method, cached::Write::of(&call));
    if kind.client_streaming {
        Box::pin(cached::after(write, client_stream::call(call, outcome)))
    } else if kind.server_streaming {
        Box::pin(cached::after(write, server_stream::call(call, outcome)))
    } else {
        match recorded::Recording::of(&call, events) {
            Ok(None) => Box::pin(cached::unary(call, write, outcome)),
            Ok(Some(recording)) => Box::pin(cached::after(
                write,
                recorded::unary(call, recording, outcome),
            )),
            Err(refused) => Box::pin(std::future::ready(Err(refused))),
        }
    }
}

/// Which request headers a call's metadata takes: the allowlist for transcoded calls,
/// everything end-to-end for gRPC pass-through.
fn forwarding(protocol: Protocol) -> Forwarding {
    match protocol {
        Protocol::Json => Forwarding::Allowlist,
        Protocol::Grpc | Protocol::GrpcWeb { .. } => Forwarding::PassThrough,
    }
}

/// The respond phase: the answer is handed to the client's connection (which refuses a large one
/// when too many answer bytes wait for clients already); a failure becomes its response through
/// the one error table; every answer then gets the request's rate-limit budget (JSON), CORS grant
/// (gRPC-Web) and id.
fn respond(
    runtime: &Runtime,
    ctx: &RequestCtx,
    outcome: &mut Outcome,
    answer: Answer,
) -> Response<ResponseBody> {
    let compression = &runtime.config.compression;
    let answer = match answer {
        Ok(response) if !ctx.protocol.is_grpc() => Ok(compression::compress(
            response,
            ctx.accepts_gzip,
            compression,
        )),
        answer => answer,
    };
    let delivered = match (answer, &ctx.connection) {
        (Ok(response), Some(connection)) => {
            connection.deliver_response(response).map_err(Failure::from)
        }
        (answer, _) => answer,
    };
    let mut response = delivered.unwrap_or_else(|Failure { error, headers }| {
        let route = outcome.route.as_ref();
        let encode = route.map_or(&runtime.default_encode, |r| &r.encode);
        let response = error.to_response(ctx.protocol, &runtime.pool, encode, headers);
        outcome.failed(&error);
        if error.http_status().is_server_error() {
            tracing::warn!(request_id = ?ctx.request_id, error = %error, "request failed");
        } else {
            tracing::debug!(request_id = ?ctx.request_id, error = %error, "request rejected");
        }
        response
    });
    if let Some(cors) = outcome.route.as_ref().and_then(|r| r.cors.as_ref()) {
        cors::apply(cors, ctx.origin.as_ref(), response.headers_mut());
    }
    if !ctx.protocol.is_grpc() {
        outcome.admission.budget.write(response.headers_mut());
    }
    ctx.stamp(&mut response);
    response
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
