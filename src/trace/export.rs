//! The span exporter: finished spans are queued (bounded, never waiting: a full queue drops the
//! span and counts it) and one background thread batches them and sends each batch to the OTLP
//! collector, over gRPC (`TraceService/Export`, h2c) or HTTP/protobuf (`POST /v1/traces`).
//!
//! The thread runs its own single-threaded tokio runtime: the export never competes with the
//! worker threads that serve requests, and no request ever waits on the collector.
//! OpenTelemetry's own batch processor has deadlocked on single-worker runtimes (which the
//! gateway's workers are), which is why it is not used.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::otlp;
use super::span::SpanData;
use crate::metrics::Metrics;
use crate::upstream::codec::frame;

/// Spans waiting for the exporter before new ones are dropped.
const QUEUE: usize = 4096;
/// Most spans in one export request.
const MAX_BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Bound of one export (connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How spans reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC: `TraceService/Export` over HTTP/2 without TLS.
    Grpc,
    /// OTLP/HTTP with protobuf bodies over HTTP/1.1.
    HttpProtobuf,
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The full URI requests go to (`http://host:port/...Export` or `.../v1/traces`).
    pub uri: Uri,
    /// gRPC or HTTP/protobuf.
    pub protocol: Protocol,
    /// `service.name` of the resource.
    pub service_name: String,
}

/// What the export thread is handed, in order.
#[derive(Debug)]
enum Entry {
    /// One finished span.
    Span(Box<SpanData>),
    /// Export everything queued before this, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Handle to the export thread; cloning shares it. The thread ends when every handle is dropped.
#[derive(Debug, Clone)]
pub struct Exporter {
    queue: SyncSender<Entry>,
    metrics: Arc<Metrics>,
}

impl Exporter {
    /// Starts the export thread sending to `destination`; drops are counted in `metrics`.
    pub fn start(destination: Destination, metrics: Arc<Metrics>) -> std::io::Result<Exporter> {
        let (queue, spans) = sync_channel(QUEUE);
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("span-export".to_owned())
            .spawn(move || run(&spans, &destination, &thread_metrics))?;
        Ok(Exporter { queue, metrics })
    }

    /// Queues a finished span; never blocks (a full queue drops it, counted).
    pub fn export(&self, span: SpanData) {
        match self.queue.try_send(Entry::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.metrics.spans_dropped("queue_full", 1),
            Err(TrySendError::Disconnected(_)) => self.metrics.spans_dropped("exporter_gone", 1),
        }
    }

    /// Waits at most `timeout` until every span queued so far has been exported (or given up
    /// on); false when the time ran out.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, answer) = tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        // A full queue makes `send` wait for room: off the async threads.
        let queued = tokio::task::spawn_blocking(move || queue.send(Entry::Flush(done)).is_ok());
        tokio::time::timeout(timeout, async {
            queued.await.unwrap_or(false) && answer.await.is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

/// The export thread: collects spans into batches of at most [`MAX_BATCH`], sent when full,
/// when the oldest has waited [`BATCH_DELAY`], on a flush, and when the gateway stops.
fn run(spans: &Receiver<Entry>, destination: &Destination, metrics: &Metrics) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::error!("span export is off: its runtime did not start");
        return;
    };
    let mut client = Client::new(destination);
    let mut batch: Vec<SpanData> = Vec::with_capacity(MAX_BATCH);
    let mut due = Instant::now() + BATCH_DELAY;
    loop {
        let wait = due.saturating_duration_since(Instant::now());
        let mut send = |batch: &mut Vec<SpanData>| {
            if !batch.is_empty() {
                runtime.block_on(client.send(batch, metrics));
                batch.clear();
            }
        };
        match spans.recv_timeout(wait) {
            Ok(Entry::Span(span)) => {
                if batch.is_empty() {
                    due = Instant::now() + BATCH_DELAY;
                }
                batch.push(*span);
                if batch.len() >= MAX_BATCH {
                    send(&mut batch);
                }
            }
            Ok(Entry::Flush(done)) => {
                send(&mut batch);
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                send(&mut batch);
                due = Instant::now() + BATCH_DELAY;
            }
            Err(RecvTimeoutError::Disconnected) => {
                send(&mut batch);
                return;
            }
        }
    }
}

/// A connection to the collector, kept between batches and made again after a failure.
enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// The collector client of the export thread.
struct Client<'d> {
    destination: &'d Destination,
    sender: Option<Sender>,
    /// The last export failed (its warning was logged; the next ones are debug until one works).
    failing: bool,
}

impl<'d> Client<'d> {
    fn new(destination: &'d Destination) -> Client<'d> {
        Client {
            destination,
            sender: None,
            failing: false,
        }
    }

    /// Exports one batch; a failed one is dropped and counted (the collector may be down: the
    /// gateway does not hold spans for it).
    async fn send(&mut self, batch: &[SpanData], metrics: &Metrics) {
        let body = Bytes::from(otlp::encode(&self.destination.service_name, batch));
        let mut result = tokio::time::timeout(EXPORT_TIMEOUT, self.exchange(body.clone())).await;
        if matches!(result, Ok(Err(_))) && self.sender.is_none() {
            // A kept connection the collector closed while idle: once more on a new one.
            result = tokio::time::timeout(EXPORT_TIMEOUT, self.exchange(body)).await;
        }
        let error = match result {
            Ok(Ok(())) => {
                self.failing = false;
                return;
            }
            Ok(Err(error)) => error,
            Err(_) => {
                self.sender = None;
                format!("no answer within {EXPORT_TIMEOUT:?}")
            }
        };
        metrics.spans_dropped("export_failed", batch.len() as u64);
        let uri = &self.destination.uri;
        if self.failing {
            tracing::debug!(%uri, %error, spans = batch.len(), "span export failed");
        } else {
            tracing::warn!(%uri, %error, spans = batch.len(), "span export failed; spans dropped");
        }
        self.failing = true;
    }

    /// Sends one export request and checks its answer.
    async fn exchange(&mut self, body: Bytes) -> Result<(), String> {
        let protocol = self.destination.protocol;
        let request = self.request(body)?;
        let sent = match self.sender().await? {
            Sender::Http1(sender) => sender.send_request(request).await,
            Sender::Http2(sender) => sender.send_request(request).await,
        };
        let response = sent.map_err(|e| {
            self.sender = None;
            e.to_string()
        })?;
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.map_err(|e| {
            self.sender = None;
            e.to_string()
        })?;
        if !parts.status.is_success() {
            return Err(format!("HTTP status {}", parts.status));
        }
        if protocol == Protocol::Grpc {
            let trailers = collected.trailers().cloned().unwrap_or_default();
            let status = trailers
                .get("grpc-status")
                .or_else(|| parts.headers.get("grpc-status"));
            if status.is_none_or(|s| s != "0") {
                return Err(format!("gRPC status {status:?}"));
            }
        }
        Ok(())
    }

    /// The export request carrying `body` (a gRPC request frames it).
    fn request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, String> {
        let protocol = self.destination.protocol;
        let (content_type, body) = match protocol {
            Protocol::Grpc => ("application/grpc", frame(&body)),
            Protocol::HttpProtobuf => ("application/x-protobuf", body),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        let uri = &self.destination.uri;
        let headers = request.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        match protocol {
            // HTTP/2 takes `:scheme` and `:authority` from the absolute URI.
            Protocol::Grpc => {
                headers.insert(header::TE, HeaderValue::from_static("trailers"));
                *request.uri_mut() = uri.clone();
            }
            // HTTP/1.1 wants the path alone and the authority as `Host`.
            Protocol::HttpProtobuf => {
                if let Some(authority) = uri.authority()
                    && let Ok(host) = HeaderValue::from_str(authority.as_str())
                {
                    headers.insert(header::HOST, host);
                }
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                *request.uri_mut() = Uri::try_from(path).map_err(|e| e.to_string())?;
            }
        }
        Ok(request)
    }

    /// The kept connection, or a new one.
    async fn sender(&mut self) -> Result<&mut Sender, String> {
        let usable = match &mut self.sender {
            Some(Sender::Http1(s)) => s.ready().await.is_ok(),
            Some(Sender::Http2(s)) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.sender = Some(self.connect().await?);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    async fn connect(&self) -> Result<Sender, String> {
        let uri = &self.destination.uri;
        let authority = uri.authority().ok_or("the endpoint has no host")?;
        let default_port = match self.destination.protocol {
            Protocol::Grpc => 4317,
            Protocol::HttpProtobuf => 4318,
        };
        let address = (
            authority.host(),
            authority.port_u16().unwrap_or(default_port),
        );
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        // The connection task runs on this thread's runtime, while an export runs.
        Ok(match self.destination.protocol {
            Protocol::Grpc => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
                tokio::spawn(connection);
                Sender::Http2(sender)
            }
            Protocol::HttpProtobuf => {
                let (sender, connection) = http1::handshake(io)
                    .await
                    .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
                tokio::spawn(connection);
                Sender::Http1(sender)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::trace::context::{SpanId, TraceId};
    use crate::trace::span::SpanKind;

    fn span() -> SpanData {
        SpanData {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent: None,
            trace_state: String::new(),
            name: "GET".to_owned(),
            kind: SpanKind::Server,
            start: SystemTime::now(),
            end: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        }
    }

    #[tokio::test]
    async fn spans_a_collector_does_not_take_are_dropped_and_counted() {
        // A port nothing listens on: the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let metrics = Arc::new(Metrics::new());
        let destination = Destination {
            uri: format!("http://127.0.0.1:{port}{}", otlp::GRPC_PATH)
                .parse()
                .expect("uri"),
            protocol: Protocol::Grpc,
            service_name: "test".to_owned(),
        };
        let exporter = Exporter::start(destination, metrics.clone()).expect("thread");
        exporter.export(span());
        exporter.export(span());
        assert!(exporter.flush(Duration::from_secs(30)).await);
        let text = metrics.render();
        assert!(
            text.contains("tai_gateway_spans_dropped_total{reason=\"export_failed\"} 2\n"),
            "{text}"
        );
    }
}
