//! Distributed tracing: the gateway is one hop of a W3C trace.
//!
//! Every request gets a [`RequestTrace`] when it arrives ([`Tracer::start`]): the caller's trace
//! continued when its `traceparent` is valid, else a new one. Each upstream attempt gets a
//! span id of its own, which the backend receives in its `traceparent`
//! ([`RequestTrace::attempt`], [`AttemptSpan::stamp`]). When an OTLP collector is configured
//! and the trace is sampled, the request's server span and every attempt's client span are
//! exported off the request path ([`export`]).
//!
//! Layout, each module using only those listed before it: [`context`] (the header formats),
//! [`span`] (a finished span), [`otlp`] (its protobuf encoding), [`export`] (the queue and the
//! export thread), [`settings`] (the `tracing:` section and the `OTEL_*` variables).

pub mod context;
pub mod export;
pub mod otlp;
pub mod settings;
pub mod span;

use std::net::SocketAddr;
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue};

use context::{SpanId, TRACEPARENT, TRACESTATE, TraceId, parse_traceparent, valid_tracestate};
pub use export::Exporter;
pub use settings::Sampler;
use span::{SpanData, SpanKind, rpc_parts};

/// How requests are traced: the sampler, and the exporter when spans are exported.
#[derive(Debug, Clone, Default)]
pub struct Tracer {
    /// Which new traces are sampled, and whether a caller's decision is followed.
    pub sampler: Sampler,
    /// Where sampled spans go (`None`: ids are propagated, nothing is exported).
    pub exporter: Option<Exporter>,
}

impl Tracer {
    /// The trace of a request with `headers`: the caller's, when its `traceparent` is valid
    /// (its `tracestate` kept when valid too), else a new one.
    pub fn start(&self, headers: &HeaderMap) -> RequestTrace {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()));
        let trace_id = parent.map_or_else(TraceId::random, |p| p.trace_id);
        let sampled = self.sampler.samples(trace_id, parent.map(|p| p.sampled));
        let tracestate = parent
            .and_then(|_| headers.get(TRACESTATE))
            .filter(|v| valid_tracestate(v))
            .cloned();
        let recording = match (&self.exporter, sampled) {
            (Some(exporter), true) => Some(Recording {
                exporter: exporter.clone(),
                started: SystemTime::now(),
            }),
            _ => None,
        };
        RequestTrace {
            trace_id,
            span_id: SpanId::random(),
            parent: parent.map(|p| p.span_id),
            sampled,
            tracestate,
            recording,
        }
    }
}

/// One request's place in its trace.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    /// The trace (the caller's, or new).
    pub trace_id: TraceId,
    /// The gateway's server span for this request.
    pub span_id: SpanId,
    /// The caller's span, when it sent a valid `traceparent`.
    pub parent: Option<SpanId>,
    /// The sampling decision, sent on in the `traceparent` flags.
    pub sampled: bool,
    /// The caller's `tracestate`, when valid.
    pub tracestate: Option<HeaderValue>,
    /// Set when the spans of this request are exported.
    recording: Option<Recording>,
}

/// A sampled request's spans on their way to the exporter.
#[derive(Debug, Clone)]
struct Recording {
    exporter: Exporter,
    started: SystemTime,
}

/// A call's place in its request's trace: what the span of each of its attempts needs.
#[derive(Debug, Clone, Copy)]
pub struct CallTrace<'a> {
    /// The request's trace (the parent of the attempts' spans).
    pub request: &'a RequestTrace,
    /// `/pkg.Service/Method` called.
    pub rpc: &'a str,
}

/// One upstream attempt's span: its id, sent to the backend as the parent of its work.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    /// The attempt's span id.
    pub span_id: SpanId,
    traceparent: HeaderValue,
    tracestate: Option<HeaderValue>,
    /// When it started (only when exported).
    started: Option<SystemTime>,
}

impl AttemptSpan {
    /// Writes this attempt's `traceparent` (and the caller's valid `tracestate`, else none)
    /// into the metadata sent to the backend, replacing whatever the client sent.
    pub fn stamp(&self, metadata: &mut HeaderMap) {
        metadata.insert(TRACEPARENT, self.traceparent.clone());
        match &self.tracestate {
            Some(state) => metadata.insert(TRACESTATE, state.clone()),
            None => metadata.remove(TRACESTATE),
        };
    }
}

/// How one attempt ended, for its client span.
#[derive(Clone, Copy)]
pub struct AttemptEnd<'a> {
    /// `host:port` of the endpoint.
    pub endpoint: &'a str,
    /// The gRPC status the backend answered with, if it answered.
    pub grpc_status: Option<i32>,
    /// Why there was no answer, when there was none.
    pub error: Option<&'a dyn std::fmt::Display>,
}

/// What the server span of a finished request reports.
#[derive(Debug, Clone, Copy)]
pub struct RequestEnd<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// URI path.
    pub path: &'a str,
    /// The matched HTTP rule's template, for transcoded calls.
    pub route_template: Option<&'a str>,
    /// The request was gRPC or gRPC-Web (its path names the method).
    pub grpc: bool,
    /// HTTP status answered.
    pub status: u16,
    /// gRPC status of the answer.
    pub grpc_status: i32,
    /// The client's socket address.
    pub peer: SocketAddr,
}

impl RequestTrace {
    /// The trace id as 32 hex digits (logs).
    pub fn trace_hex(&self) -> context::Hex<32> {
        self.trace_id.hex()
    }

    /// Starts an upstream attempt: a new span, child of the request's server span.
    pub fn attempt(&self) -> AttemptSpan {
        let span_id = SpanId::random();
        AttemptSpan {
            span_id,
            traceparent: context::traceparent(self.trace_id, span_id, self.sampled),
            tracestate: self.tracestate.clone(),
            started: self.recording.as_ref().map(|_| SystemTime::now()),
        }
    }

    /// Ends an attempt's client span (exported when this request is recorded).
    pub fn end_attempt(&self, attempt: AttemptSpan, rpc_path: &str, end: &AttemptEnd<'_>) {
        let (Some(recording), Some(started)) = (&self.recording, attempt.started) else {
            return;
        };
        let rpc = rpc_path.strip_prefix('/').unwrap_or(rpc_path);
        let mut span = self.span(attempt.span_id, Some(self.span_id), SpanKind::Client);
        span.name = rpc.to_owned();
        span.start = started;
        span.text("rpc.system", "grpc");
        if let Some((service, method)) = rpc_parts(rpc_path) {
            span.text("rpc.service", service);
            span.text("rpc.method", method);
        }
        let (host, port) = split_host_port(end.endpoint);
        span.text("server.address", host);
        if let Some(port) = port {
            span.int("server.port", port);
        }
        if let Some(code) = end.grpc_status {
            span.int("rpc.grpc.status_code", i64::from(code));
            if code != 0 {
                span.error = Some(format!("gRPC status {code}"));
            }
        }
        if let Some(error) = end.error {
            span.error = Some(error.to_string());
        }
        recording.exporter.export(span);
    }

    /// Ends the request's server span (exported when this request is recorded).
    pub fn end_request(&self, end: &RequestEnd<'_>) {
        let Some(recording) = &self.recording else {
            return;
        };
        let mut span = self.span(self.span_id, self.parent, SpanKind::Server);
        span.start = recording.started;
        span.text("http.request.method", end.method);
        span.text("url.path", end.path);
        span.int("http.response.status_code", i64::from(end.status));
        span.text("network.peer.address", end.peer.ip().to_string());
        span.int("network.peer.port", i64::from(end.peer.port()));
        span.name = match (end.grpc, rpc_parts(end.path), end.route_template) {
            (true, Some((service, method)), _) => {
                span.text("rpc.system", "grpc");
                span.text("rpc.service", service);
                span.text("rpc.method", method);
                span.int("rpc.grpc.status_code", i64::from(end.grpc_status));
                format!("{service}/{method}")
            }
            (_, _, Some(template)) => {
                span.text("http.route", template);
                format!("{} {template}", end.method)
            }
            _ => end.method.to_owned(),
        };
        if end.status >= 500 || (end.grpc && end.grpc_status != 0) {
            span.error = Some(format!("HTTP {} / gRPC {}", end.status, end.grpc_status));
        }
        recording.exporter.export(span);
    }

    fn span(&self, span_id: SpanId, parent: Option<SpanId>, kind: SpanKind) -> SpanData {
        let now = SystemTime::now();
        SpanData {
            trace_id: self.trace_id,
            span_id,
            parent,
            trace_state: self
                .tracestate
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            name: String::new(),
            kind,
            start: now,
            end: now,
            attributes: Vec::with_capacity(10),
            error: None,
        }
    }
}

/// `host` and `port` of an endpoint's `host:port` (IPv6 hosts in brackets lose them).
fn split_host_port(endpoint: &str) -> (&str, Option<i64>) {
    match endpoint.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => match port.parse::<u16>() {
            Ok(port) => (
                host.trim_start_matches('[').trim_end_matches(']'),
                Some(i64::from(port)),
            ),
            Err(_) => (endpoint, None),
        },
        _ => (endpoint, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let trace = Tracer::default().start(&headers(&[
            (TRACEPARENT, PARENT),
            (TRACESTATE, "congo=t61rcWkgMzE"),
        ]));
        assert_eq!(
            trace.trace_hex().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            trace.parent.map(|p| p.hex().to_string()).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert!(trace.sampled);
        let attempt = trace.attempt();
        let mut metadata = headers(&[(TRACEPARENT, PARENT), (TRACESTATE, "x=y")]);
        attempt.stamp(&mut metadata);
        let sent = metadata[TRACEPARENT].to_str().expect("ascii").to_owned();
        assert_eq!(
            sent,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                attempt.span_id.hex()
            )
        );
        assert_eq!(metadata[TRACESTATE], "congo=t61rcWkgMzE");
        assert_ne!(trace.attempt().span_id, attempt.span_id);
    }

    #[test]
    fn an_invalid_traceparent_starts_a_new_trace_and_drops_tracestate() {
        let bad = PARENT.to_uppercase();
        let trace = Tracer::default().start(&headers(&[
            (TRACEPARENT, &bad),
            (TRACESTATE, "congo=t61rcWkgMzE"),
        ]));
        assert_ne!(
            trace.trace_hex().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!((trace.parent, trace.tracestate.clone()), (None, None));
        let mut metadata = headers(&[(TRACEPARENT, &bad), (TRACESTATE, "congo=t61rcWkgMzE")]);
        trace.attempt().stamp(&mut metadata);
        assert!(
            metadata[TRACEPARENT]
                .to_str()
                .expect("ascii")
                .starts_with(&format!("00-{}-", trace.trace_hex()))
        );
        assert!(!metadata.contains_key(TRACESTATE));
    }

    #[test]
    fn the_callers_sampling_decision_is_followed() {
        let never = Tracer {
            sampler: Sampler::ratio(0.0),
            exporter: None,
        };
        assert!(never.start(&headers(&[(TRACEPARENT, PARENT)])).sampled);
        let unsampled = PARENT.replace("-01", "-00");
        let trace = Tracer::default().start(&headers(&[(TRACEPARENT, &unsampled)]));
        assert!(!trace.sampled);
        assert!(
            trace
                .attempt()
                .traceparent
                .to_str()
                .expect("ascii")
                .ends_with("-00")
        );
        assert!(!never.start(&HeaderMap::new()).sampled);
        assert!(Tracer::default().start(&HeaderMap::new()).sampled);
    }

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(split_host_port("10.0.0.1:50051"), ("10.0.0.1", Some(50051)));
        assert_eq!(split_host_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_host_port("backend"), ("backend", None));
    }
}
