//! The OTLP trace export request (`opentelemetry.proto.collector.trace.v1.
//! ExportTraceServiceRequest`) as protobuf: only the messages and fields the gateway writes,
//! declared with prost's derive (prost is already in the tree), with the field numbers of the
//! OTLP protocol definitions (`opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`, `collector/trace/v1/trace_service.proto`).
//!
//! Written by hand instead of depending on `opentelemetry-otlp`: four crates and their build
//! time for what is one request message and one POST (the export module).

use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::span::{SpanData, SpanKind, Value};

/// The gRPC method a collector serves traces on.
pub const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The path of OTLP/HTTP trace exports.
pub const HTTP_PATH: &str = "/v1/traces";

/// `ExportTraceServiceRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct ExportRequest {
    /// `resource_spans = 1`.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `ResourceSpans`: the spans of one process.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceSpans {
    /// `resource = 1`.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// `scope_spans = 2`.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

/// `Resource`: what produced the spans (`service.name`, ...).
#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    /// `attributes = 1`.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeSpans`: the spans of one instrumentation scope.
#[derive(Clone, PartialEq, Message)]
pub struct ScopeSpans {
    /// `scope = 1`.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<Scope>,
    /// `spans = 2`.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, Message)]
pub struct Scope {
    /// `name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `version = 2`.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `Span`.
#[derive(Clone, PartialEq, Message)]
pub struct Span {
    /// `trace_id = 1` (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// `span_id = 2` (8 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// `trace_state = 3`.
    #[prost(string, tag = "3")]
    pub trace_state: String,
    /// `parent_span_id = 4` (empty for a root span).
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    /// `name = 5`.
    #[prost(string, tag = "5")]
    pub name: String,
    /// `kind = 6`: 2 server, 3 client.
    #[prost(int32, tag = "6")]
    pub kind: i32,
    /// `start_time_unix_nano = 7`.
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    /// `end_time_unix_nano = 8`.
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    /// `attributes = 9`.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// `status = 15`.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    /// `flags = 16`: the W3C trace flags (bit 0, sampled) and bits saying whether the parent
    /// is remote.
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

/// `Status` of a span.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    /// `message = 2`.
    #[prost(string, tag = "2")]
    pub message: String,
    /// `code = 3`: 0 unset, 1 ok, 2 error.
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value = 2`.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue`: the two kinds the gateway writes.
#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    /// `oneof value`.
    #[prost(oneof = "AnyKind", tags = "1, 3")]
    pub value: Option<AnyKind>,
}

/// The `value` oneof of `AnyValue`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AnyKind {
    /// `string_value = 1`.
    #[prost(string, tag = "1")]
    Str(String),
    /// `int_value = 3`.
    #[prost(int64, tag = "3")]
    Int(i64),
}

/// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`.
const KIND_SERVER: i32 = 2;
const KIND_CLIENT: i32 = 3;
/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;
/// Span flags: sampled (W3C bit 0), "has the remote-parent bit" (bit 8), "parent is remote"
/// (bit 9).
const FLAG_SAMPLED: u32 = 1;
const FLAG_HAS_IS_REMOTE: u32 = 1 << 8;
const FLAG_IS_REMOTE: u32 = 1 << 9;

/// The export request of one batch of spans from the service `service_name`, encoded.
pub fn encode(service_name: &str, spans: &[SpanData]) -> Vec<u8> {
    let request = ExportRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value("service.name", &Value::Str(service_name.into()))],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(Scope {
                    name: "tai-gateway".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                }),
                spans: spans.iter().map(span).collect(),
            }],
        }],
    };
    request.encode_to_vec()
}

fn span(data: &SpanData) -> Span {
    // A server span's parent is the caller's (remote); a client span's is the gateway's own.
    let remote = match data.kind {
        SpanKind::Server if data.parent.is_some() => FLAG_IS_REMOTE,
        _ => 0,
    };
    Span {
        trace_id: data.trace_id.0.to_vec(),
        span_id: data.span_id.0.to_vec(),
        trace_state: data.trace_state.clone(),
        parent_span_id: data.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
        name: data.name.clone(),
        kind: match data.kind {
            SpanKind::Server => KIND_SERVER,
            SpanKind::Client => KIND_CLIENT,
        },
        start_time_unix_nano: unix_nanos(data.start),
        end_time_unix_nano: unix_nanos(data.end),
        attributes: data
            .attributes
            .iter()
            .map(|(key, value)| key_value(key, value))
            .collect(),
        status: data.error.as_ref().map(|message| Status {
            message: message.clone(),
            code: STATUS_ERROR,
        }),
        flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | remote,
    }
}

fn key_value(key: &str, value: &Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(match value {
                Value::Str(s) => AnyKind::Str(s.clone()),
                Value::Int(i) => AnyKind::Int(*i),
            }),
        }),
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::trace::context::{SpanId, TraceId};

    #[test]
    fn a_batch_encodes_ids_kinds_times_and_attributes() {
        let start = UNIX_EPOCH + Duration::from_secs(1);
        let data = SpanData {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([8; 8]),
            parent: Some(SpanId([9; 8])),
            trace_state: "k=v".to_owned(),
            name: "GET /v1/x".to_owned(),
            kind: SpanKind::Server,
            start,
            end: start + Duration::from_millis(2),
            attributes: vec![("http.response.status_code", Value::Int(200))],
            error: None,
        };
        let bytes = encode("gw", &[data]);
        let decoded = ExportRequest::decode(bytes.as_slice()).expect("decodes");
        let resource = &decoded.resource_spans[0];
        let service = &resource.resource.as_ref().expect("resource").attributes[0];
        assert_eq!(service.key, "service.name");
        let span = &resource.scope_spans[0].spans[0];
        assert_eq!(span.trace_id, vec![7; 16]);
        assert_eq!(span.parent_span_id, vec![9; 8]);
        assert_eq!(span.kind, KIND_SERVER);
        assert_eq!(span.start_time_unix_nano, 1_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_002_000_000);
        assert_eq!(
            span.flags,
            FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE
        );
        assert_eq!(
            span.attributes[0].value,
            Some(AnyValue {
                value: Some(AnyKind::Int(200))
            })
        );
        assert_eq!(span.status, None);
    }
}
