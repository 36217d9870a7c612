//! Turns a gRPC reply (protobuf bytes or a decoded message) or a gRPC status into the HTTP
//! response body.

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor, Value};

use crate::transcode::json::{
    EncodeError, EncodeOptions, encode_field_json, encode_message_json, print_wire_message,
};

/// Content type of every JSON body the gateway writes.
const JSON: &str = "application/json";
/// Content type of an `HttpBody` reply that names none.
const OCTET_STREAM: &str = "application/octet-stream";

/// An HTTP response body with its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponseBody {
    /// `application/json`, or the `content_type` of a `google.api.HttpBody` reply.
    pub content_type: String,
    /// The bytes to send.
    pub body: Vec<u8>,
}

/// Prints a reply: the whole message, or only the `response_body` field.
///
/// A `google.api.HttpBody` reply (or `response_body` field of that type) is sent raw with its
/// own content type, `application/octet-stream` when it names none.
pub fn encode_response(
    output: &DynamicMessage,
    response_body: Option<&FieldDescriptor>,
    opts: &EncodeOptions,
) -> Result<HttpResponseBody, EncodeError> {
    use prost_reflect::ReflectMessage as _;
    if is_http_body(&output.descriptor()) {
        return Ok(raw_http_body(Some(output)));
    }
    match response_body {
        Some(field) if is_http_body_field(field) => {
            let value = output.get_field(field);
            Ok(raw_http_body(
                value.as_message().filter(|_| output.has_field(field)),
            ))
        }
        Some(field) => json_body(encode_field_json(output, field, opts)?),
        None => json_body(encode_message_json(output, opts)?),
    }
}

/// Decodes a gRPC reply payload of type `output` and prints it like [`encode_response`].
///
/// Bytes that are not a valid `output` give [`EncodeError::InvalidPayload`] (the gateway
/// answers 502: the upstream broke the contract).
pub fn decode_and_encode(
    output: &MessageDescriptor,
    grpc_payload: &[u8],
    response_body: Option<&FieldDescriptor>,
    opts: &EncodeOptions,
) -> Result<HttpResponseBody, EncodeError> {
    // Whole-message replies in the common shapes print straight from the wire; everything else
    // (HttpBody, response_body, rare or malformed payloads) goes through a DynamicMessage.
    if response_body.is_none()
        && !is_http_body(output)
        && let Some(body) = print_wire_message(output, grpc_payload, opts)
    {
        return json_body(body);
    }
    let msg = DynamicMessage::decode(output.clone(), grpc_payload).map_err(|err| {
        EncodeError::InvalidPayload {
            message: output.full_name().to_owned(),
            reason: err.to_string(),
        }
    })?;
    encode_response(&msg, response_body, opts)
}

/// Prints a gRPC status as `{"code":5,"message":"...","details":[...]}` (keys in that order).
///
/// `details_bin` is the `grpc-status-details-bin` payload, a `google.rpc.Status`; its details
/// print as `Any` JSON through `pool`. A blob that does not decode (or a pool without
/// `google.rpc.Status`) gives `"details":[]`, and a single detail whose type the pool does not
/// know is left out: an error reply must never fail itself.
pub fn status_to_json(
    pool: &DescriptorPool,
    code: i32,
    message: &str,
    details_bin: Option<&[u8]>,
    opts: &EncodeOptions,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len());
    out.extend_from_slice(b"{\"code\":");
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(b",\"message\":");
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, message);
    out.extend_from_slice(b",\"details\":[");
    let details = details_bin
        .map(|bin| details(pool, bin, opts))
        .unwrap_or_default();
    for (i, detail) in details.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(detail);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The printed `details` of an encoded `google.rpc.Status`; empty when it does not decode.
fn details(pool: &DescriptorPool, bin: &[u8], opts: &EncodeOptions) -> Vec<Vec<u8>> {
    let Some(status_desc) = pool.get_message_by_name("google.rpc.Status") else {
        return Vec::new();
    };
    let Ok(status) = DynamicMessage::decode(status_desc, bin) else {
        return Vec::new();
    };
    let Some(list) = status.get_field_by_name("details") else {
        return Vec::new();
    };
    let Value::List(items) = list.as_ref() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(Value::as_message)
        .filter_map(|any| encode_message_json(any, opts).ok())
        .collect()
}

fn is_http_body(desc: &MessageDescriptor) -> bool {
    desc.full_name() == "google.api.HttpBody"
}

fn is_http_body_field(field: &FieldDescriptor) -> bool {
    !field.is_list() && field.kind().as_message().is_some_and(is_http_body)
}

fn json_body(body: Vec<u8>) -> Result<HttpResponseBody, EncodeError> {
    Ok(HttpResponseBody {
        content_type: JSON.to_owned(),
        body,
    })
}

/// The raw `data` of an `HttpBody` with its content type; `None` is an unset field.
fn raw_http_body(msg: Option<&DynamicMessage>) -> HttpResponseBody {
    let text = |name: &str| {
        msg.and_then(|m| m.get_field_by_name(name))
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let content_type = text("content_type").filter(|t| !t.is_empty());
    let body = msg
        .and_then(|m| m.get_field_by_name("data"))
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default();
    HttpResponseBody {
        content_type: content_type.unwrap_or_else(|| OCTET_STREAM.to_owned()),
        body,
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
