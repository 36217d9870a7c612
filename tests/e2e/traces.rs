//! The gateway as a hop of a W3C trace (issue 15): the backend gets a `traceparent` with the
//! caller's trace and the gateway's own span (one per attempt), an invalid one is replaced, and
//! the spans reach a real OTLP collector (a tonic `TraceService/Export` server) with their
//! parent/child links.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prost::Message;
use tai_stubs::TraceCollector;
use tai_stubs::proto::opentelemetry::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, Span, any_value,
};
use tai_stubs::proto::tai::EchoMessage;
use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;

use crate::grpc_passthrough::{client, frame};
use crate::harness::{TestEnv, http1_client};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// The default test config with the backend's echo of its `traceparent` let through to the
/// client, plus `extra` top-level keys.
fn traced_config(config: String, extra: &str) -> String {
    config.replace(
        "metadata_to_response: [x-stub-service, x-stub-trailer]",
        "metadata_to_response: [x-stub-service, x-stub-trailer, x-stub-traceparent]",
    ) + extra
}

fn exporting_to(collector: &TraceCollector) -> String {
    format!(
        "tracing:\n  otlp:\n    endpoint: http://{}\n    protocol: grpc\n",
        collector.addr
    )
}

/// The trace id and span id of a `traceparent`, checking its form.
fn ids(traceparent: &str) -> (String, String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "{traceparent}");
    assert_eq!((parts[1].len(), parts[2].len()), (32, 16), "{traceparent}");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text_attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        }
    })
}

/// Stops the gateway (which flushes its spans to the collector) and returns what it received.
async fn spans_after_stop(env: TestEnv, collector: &TraceCollector) -> Vec<Span> {
    let TestEnv { gateway, stubs, .. } = env;
    gateway.shutdown().await;
    stubs.shutdown().await;
    collector.spans()
}

#[tokio::test]
async fn spans_link_the_callers_span_the_gateway_and_each_attempt() {
    let collector = TraceCollector::start().await.expect("collector");
    let extra = exporting_to(&collector);
    let env = TestEnv::start_with(|c| traced_config(c, &extra)).await;
    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let retried = env
        .send(
            Method::GET,
            "/v1/echo/traced",
            &[
                ("traceparent", caller.as_str()),
                ("x-stub-fail-first", "1"),
                ("x-stub-fail-key", "traced"),
            ],
            None,
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.header("x-tai-attempts"), Some("2"));
    let sent = retried.header("x-stub-traceparent").expect("echoed");
    let (trace, last_attempt, flags) = ids(sent);
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "01"));
    assert_ne!(last_attempt, CALLER_SPAN);

    let fresh = env.get("/v1/echo/fresh").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    let (fresh_trace, fresh_attempt, fresh_flags) =
        ids(fresh.header("x-stub-traceparent").expect("echoed"));
    assert_ne!(fresh_trace, TRACE);
    assert_eq!(fresh_flags, "01");

    let spans = spans_after_stop(env, &collector).await;
    let of_trace =
        |t: &str| -> Vec<&Span> { spans.iter().filter(|s| hex(&s.trace_id) == t).collect() };

    // The continued trace: the caller's span → the gateway's server span → two attempts.
    let traced = of_trace(TRACE);
    assert_eq!(traced.len(), 3, "{traced:#?}");
    let server: Vec<_> = traced.iter().filter(|s| s.kind == SERVER).collect();
    assert_eq!(server.len(), 1, "{traced:#?}");
    let server = server[0];
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(server.name, "GET /v1/echo/{string_value}");
    assert_eq!(
        text_attribute(server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        text_attribute(server, "url.path").as_deref(),
        Some("/v1/echo/traced")
    );
    assert_eq!(
        text_attribute(server, "http.route").as_deref(),
        Some("/v1/echo/{string_value}")
    );
    assert_eq!(
        int_attribute(server, "http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        text_attribute(server, "network.peer.address").as_deref(),
        Some("127.0.0.1")
    );
    let mut attempts: Vec<&Span> = traced
        .iter()
        .copied()
        .filter(|s| s.kind == CLIENT)
        .collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2, "{traced:#?}");
    for attempt in &attempts {
        assert_eq!(attempt.parent_span_id, server.span_id);
        assert_eq!(attempt.name, "tai.Governor/Echo");
        assert_eq!(
            text_attribute(attempt, "rpc.system").as_deref(),
            Some("grpc")
        );
        assert_eq!(
            text_attribute(attempt, "rpc.service").as_deref(),
            Some("tai.Governor")
        );
        assert_eq!(
            text_attribute(attempt, "rpc.method").as_deref(),
            Some("Echo")
        );
        assert_eq!(
            text_attribute(attempt, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert!(attempt.start_time_unix_nano >= server.start_time_unix_nano);
        assert!(attempt.end_time_unix_nano <= server.end_time_unix_nano);
    }
    assert_ne!(attempts[0].span_id, attempts[1].span_id);
    assert_eq!(int_attribute(attempts[0], "rpc.grpc.status_code"), Some(14));
    assert_eq!(attempts[0].status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(int_attribute(attempts[1], "rpc.grpc.status_code"), Some(0));
    // The backend's traceparent named the attempt that reached it.
    assert_eq!(hex(&attempts[1].span_id), last_attempt);

    // The trace the gateway started: a root server span and its one attempt.
    let started = of_trace(&fresh_trace);
    assert_eq!(started.len(), 2, "{started:#?}");
    let root = started
        .iter()
        .find(|s| s.kind == SERVER)
        .expect("server span");
    assert!(root.parent_span_id.is_empty());
    let attempt = started
        .iter()
        .find(|s| s.kind == CLIENT)
        .expect("client span");
    assert_eq!(attempt.parent_span_id, root.span_id);
    assert_eq!(hex(&attempt.span_id), fresh_attempt);
    assert_eq!(spans.len(), 5, "{spans:#?}");
}

#[tokio::test]
async fn native_grpc_continues_the_trace_and_an_unsampled_caller_exports_nothing() {
    let collector = TraceCollector::start().await.expect("collector");
    let extra = exporting_to(&collector);
    let env = TestEnv::start_with(|c| traced_config(c, &extra)).await;
    let mut governor = client(&env).await;
    let call = |flags: &str| {
        let mut request = tonic::Request::new(EchoMessage {
            string_value: "hi".into(),
            ..Default::default()
        });
        let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-{flags}");
        let value: MetadataValue<_> = traceparent.parse().expect("ascii");
        request.metadata_mut().insert("traceparent", value);
        request
    };
    let reply = governor.echo(call("00")).await.expect("echo");
    let echoed = reply.metadata().get("x-stub-traceparent").expect("echoed");
    let (trace, span, flags) = ids(echoed.to_str().expect("ascii"));
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "00"));
    assert_ne!(span, CALLER_SPAN);
    drop(governor);
    let spans = spans_after_stop(env, &collector).await;
    assert_eq!(spans, Vec::<Span>::new());
}

#[tokio::test]
async fn grpc_web_calls_are_spans_with_rpc_attributes() {
    let collector = TraceCollector::start().await.expect("collector");
    let extra = exporting_to(&collector);
    let env = TestEnv::start_with(|c| traced_config(c, &extra)).await;
    let message = EchoMessage {
        string_value: "web".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("{}/tai.Governor/Echo", env.base()))
        .header("content-type", "application/grpc-web+proto")
        .header("traceparent", caller)
        .body(Full::new(frame(0, &message)))
        .expect("request");
    let response = http1_client().request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response.headers()["x-stub-traceparent"]
        .to_str()
        .expect("ascii");
    let (trace, attempt_span, _) = ids(echoed);
    assert_eq!(trace, TRACE);
    let _ = response.into_body().collect().await.expect("body");
    let spans = spans_after_stop(env, &collector).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = spans
        .iter()
        .find(|s| s.kind == SERVER)
        .expect("server span");
    assert_eq!(server.name, "tai.Governor/Echo");
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(
        text_attribute(server, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        text_attribute(server, "rpc.method").as_deref(),
        Some("Echo")
    );
    assert_eq!(int_attribute(server, "rpc.grpc.status_code"), Some(0));
    let client_span = spans
        .iter()
        .find(|s| s.kind == CLIENT)
        .expect("client span");
    assert_eq!(hex(&client_span.span_id), attempt_span);
    assert_eq!(client_span.parent_span_id, server.span_id);
}

#[tokio::test]
async fn an_invalid_traceparent_is_replaced_and_the_trace_id_is_logged() {
    let env = TestEnv::start_with(|c| traced_config(c, "access_log:\n  path: access.log\n")).await;
    let invalid = format!("00-{}-{CALLER_SPAN}-01", TRACE.to_uppercase());
    let reply = env
        .send(
            Method::GET,
            "/v1/echo/invalid",
            &[
                ("traceparent", invalid.as_str()),
                ("tracestate", "congo=t61"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let sent = reply
        .header("x-stub-traceparent")
        .expect("echoed")
        .to_owned();
    assert_ne!(sent, invalid);
    let (trace, span, flags) = ids(&sent);
    assert_ne!(trace, TRACE.to_lowercase());
    assert_ne!(span, CALLER_SPAN);
    assert_eq!(flags, "01");
    assert!(
        sent.bytes()
            .all(|c| c == b'-' || c.is_ascii_digit() || c.is_ascii_lowercase()),
        "{sent}"
    );
    let log = env.dir.path().join("access.log");
    let TestEnv { gateway, dir, .. } = env;
    gateway.shutdown().await;
    let text = std::fs::read_to_string(&log).expect("access log");
    let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(line["trace_id"], trace);
    assert_eq!(line["path"], "/v1/echo/invalid");
    drop(dir);
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`,
/// answered 200 with an empty `ExportTraceServiceResponse`. Returns its address and the spans.
async fn http_receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, Span)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
    let received = spans.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let received = received.clone();
            let service = service_fn(move |request: http::Request<Incoming>| {
                let received = received.clone();
                async move {
                    let head = format!(
                        "{} {} {}",
                        request.method(),
                        request.uri().path(),
                        request.headers()["content-type"].to_str().unwrap_or("")
                    );
                    let body = request.into_body().collect().await?.to_bytes();
                    let export = ExportTraceServiceRequest::decode(body).expect("protobuf");
                    let spans = export
                        .resource_spans
                        .into_iter()
                        .flat_map(|r| r.scope_spans)
                        .flat_map(|s| s.spans);
                    let mut all = received.lock().expect("lock");
                    all.extend(spans.map(|s| (head.clone(), s)));
                    let answer = ExportTraceServiceResponse::default().encode_to_vec();
                    Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from(answer))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, spans)
}

#[tokio::test]
async fn spans_are_exported_over_otlp_http_too() {
    let (addr, received) = http_receiver().await;
    let extra = format!(
        "tracing:\n  otlp:\n    endpoint: http://{addr}\n    protocol: http\n  service_name: edge-http\n"
    );
    let env = TestEnv::start_with(|c| traced_config(c, &extra)).await;
    let reply = env.get("/v1/echo/over-http").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let (trace, attempt_span, _) = ids(reply.header("x-stub-traceparent").expect("echoed"));
    let admin = env.gateway.admin_addr.expect("admin");
    let url = format!("http://{admin}/config");
    let config = crate::harness::send_with(&http1_client(), Method::GET, &url, &[], None).await;
    let shown = &config.json()["tracing"];
    assert_eq!(shown["otlp"]["endpoint"], format!("http://{addr}"));
    assert_eq!(shown["otlp"]["protocol"], "http");
    assert_eq!(shown["service_name"], "edge-http");
    let TestEnv { gateway, .. } = env;
    gateway.shutdown().await;
    let spans = received.lock().expect("lock").clone();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for (head, span) in &spans {
        assert_eq!(head, "POST /v1/traces application/x-protobuf");
        assert_eq!(hex(&span.trace_id), trace);
    }
    let client_span = spans
        .iter()
        .find(|(_, s)| s.kind == CLIENT)
        .expect("client");
    assert_eq!(hex(&client_span.1.span_id), attempt_span);
}
