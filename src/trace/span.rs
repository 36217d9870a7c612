//! A finished span as the exporter receives it: ids, name, kind, times, attributes (named after
//! the OpenTelemetry semantic conventions by whoever records it) and an error, if any.

use std::time::SystemTime;

use super::context::{SpanId, TraceId};

/// What part a span plays (OTLP `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// The request the gateway served.
    Server,
    /// One attempt of the gateway's call to a backend.
    Client,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct SpanData {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// The span it is a child of (none for the root of a trace).
    pub parent: Option<SpanId>,
    /// The `tracestate` that came with the trace, if any.
    pub trace_state: String,
    /// Low-cardinality name: `GET /v1/things/{id}`, `pkg.Service/Method`.
    pub name: String,
    /// Server or client.
    pub kind: SpanKind,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Semantic-convention attributes.
    pub attributes: Vec<(&'static str, Value)>,
    /// The failure the span ended with (its status is then ERROR).
    pub error: Option<String>,
}

impl SpanData {
    /// Adds a string attribute.
    pub fn text(&mut self, key: &'static str, value: impl Into<String>) {
        self.attributes.push((key, Value::Str(value.into())));
    }

    /// Adds an integer attribute.
    pub fn int(&mut self, key: &'static str, value: i64) {
        self.attributes.push((key, Value::Int(value)));
    }
}

/// `pkg.Service` and `Method` of a gRPC path `/pkg.Service/Method` (`rpc.service`,
/// `rpc.method`); `None` for any other path.
pub fn rpc_parts(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            rpc_parts("/tai.Governor/GetPolicy"),
            Some(("tai.Governor", "GetPolicy"))
        );
        assert_eq!(rpc_parts("/v1/policies/x"), None);
        assert_eq!(rpc_parts("/tai.Governor/"), None);
        assert_eq!(rpc_parts("tai.Governor/GetPolicy"), None);
    }
}
