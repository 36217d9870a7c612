//! Proto3 JSON mapping for run-time descriptors.
//!
//! Decoding is our own: prost-reflect's deserializer clamps out-of-range 64-bit numbers, rounds
//! big floats, keeps the last of duplicate keys and has no depth limit, and a gateway must reject
//! all of those instead of forwarding a silently different request. The decoder streams straight
//! from `serde_json` into a `DynamicMessage`, driven by the `MessageDescriptor`. For whole-body
//! requests, `direct` runs the same checks but writes protobuf wire bytes instead (see
//! `request::encode_request`), reusing the decoder's seeds for everything but plain messages,
//! strings, Timestamp and Duration.
//!
//! Encoding delegates to prost-reflect's serializer, whose output is already what clients expect
//! (see [`encode`]); replies in the common shapes are printed straight from their wire bytes by
//! `print`, which produces the same bytes without building a `DynamicMessage`.

mod any;
mod ctx;
mod decode;
mod direct;
mod dynamic;
mod empty_any;
pub mod encode;
mod key_order;
mod map_key;
mod number;
mod object;
mod print;
mod scalar;
#[cfg(test)]
pub(crate) mod test_pool;
#[cfg(test)]
mod tests;
mod time;
mod wkt;

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};
use serde::de::DeserializeSeed;

use ctx::Ctx;

pub use ctx::{DecodeOptions, JsonError};
pub(crate) use direct::encode_wire;
pub use encode::{EncodeError, EncodeOptions, encode_field_json, encode_message_json};
pub(crate) use map_key::map_key_from_text;
pub(crate) use print::print_wire_message;
pub(crate) use scalar::{TextMode, value_from_text};
pub(crate) use wkt::{Wkt, classify as classify_wkt};

/// Decodes one JSON document into a message of type `desc`.
///
/// The whole input must be a single JSON object (or `null`, meaning an empty message) followed
/// by nothing but whitespace.
pub fn decode_message(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<DynamicMessage, JsonError> {
    let kind = prost_reflect::Kind::Message(desc.clone());
    let value = run(json, opts, |ctx, de| {
        decode::SingularSeed::new(&kind, ctx).deserialize(de)
    })?;
    match value {
        Some(Value::Message(msg)) => Ok(msg),
        // `null` at the root: nothing was set.
        _ => Ok(DynamicMessage::new(desc.clone())),
    }
}

/// Decodes the JSON of one field (a message, scalar, array for repeated or object for maps).
///
/// Used for `body: "field"` rules. `null` yields the field's default value, which callers treat
/// as "leave the field unset".
pub fn decode_field(
    field: &FieldDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<Value, JsonError> {
    let value = decode_field_opt(field, json, opts)?;
    Ok(value.unwrap_or_else(|| field.default_value()))
}

/// Like [`decode_field`], but `null` is reported as `None`.
pub(crate) fn decode_field_opt(
    field: &FieldDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<Option<Value>, JsonError> {
    run(json, opts, |ctx, de| {
        decode::FieldSeed::new(field, ctx).deserialize(de)
    })
}

/// Runs a seed over the whole input and turns failures into a [`JsonError`].
fn run<T>(
    json: &[u8],
    opts: &DecodeOptions,
    body: impl FnOnce(
        &Ctx<'_>,
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, JsonError> {
    let ctx = Ctx::new(opts);
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = body(&ctx, &mut de).and_then(|value| de.end().map(|()| value));
    result.map_err(|err| ctx.into_error(&err))
}
