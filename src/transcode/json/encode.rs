//! Message -> JSON through prost-reflect's serializer, which already follows the proto3 JSON
//! mapping for well-known types and `Any`.
//!
//! What it prints, which the gateway relies on:
//! - 64-bit integers are always strings (`"5"`): JavaScript clients lose precision otherwise.
//! - With `emit_defaults`, fields without presence print their default (`0`, `""`, `[]`, `{}`),
//!   but unset fields *with* presence (singular messages, `optional` scalars, oneof members)
//!   are omitted, not printed as `null`; this matches Envoy's `always_print_primitive_fields`.
//! - Fields come in declaration order and map entries sorted by key (integer keys by value), at
//!   every depth, as Go's protojson prints them and as the wire-bytes printer does: prost-reflect's
//!   output is re-emitted in that order (`reprint_message`), every scalar token unchanged.
//! - Floats in the format of [`super::number`].

use std::collections::HashMap;

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, SerializeOptions,
};
use serde_json::value::RawValue;

use super::key_order::SortKey;

/// How responses are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Print fields that hold their default value (grpc-gateway's default).
    pub emit_defaults: bool,
    /// Use proto field names (`policy_name`) instead of lowerCamel JSON names.
    pub proto_field_names: bool,
    /// Print enums as numbers instead of names.
    pub enums_as_ints: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            emit_defaults: true,
            proto_field_names: false,
            enums_as_ints: false,
        }
    }
}

impl EncodeOptions {
    /// The member name `field` prints under.
    pub(super) fn key<'f>(&self, field: &'f FieldDescriptor) -> &'f str {
        if self.proto_field_names {
            field.name()
        } else {
            field.json_name()
        }
    }

    fn serialize_options(&self) -> SerializeOptions {
        SerializeOptions::new()
            .stringify_64_bit_integers(true)
            .use_proto_field_name(self.proto_field_names)
            .use_enum_numbers(self.enums_as_ints)
            .skip_default_fields(!self.emit_defaults)
    }
}

/// Why a reply could not become an HTTP body; the gateway answers 502 (the upstream's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The gRPC payload is not a valid protobuf encoding of the declared output type.
    #[error("upstream reply is not a valid {message}: {reason}")]
    InvalidPayload {
        /// Full name of the expected message type.
        message: String,
        /// The protobuf decoder's explanation.
        reason: String,
    },
    /// The message has no JSON form, e.g. an `Any` whose type is not in the descriptor pool.
    #[error("upstream reply cannot be printed as JSON: {reason}")]
    Unprintable {
        /// The serializer's explanation.
        reason: String,
    },
}

/// Prints a whole message as JSON.
pub fn encode_message_json(
    msg: &DynamicMessage,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, EncodeError> {
    let printed = serialize(msg, &opts.serialize_options())?;
    let raw: &RawValue = serde_json::from_slice(&printed).map_err(unprintable)?;
    let mut out = Vec::with_capacity(printed.len());
    reprint_message(&msg.descriptor(), raw, opts, &mut out)?;
    Ok(out)
}

/// Prints only one field's value (for `response_body`): a map as an object, a repeated field as
/// an array, a scalar as a JSON scalar, and an unset message as `null`.
///
/// A field without presence prints its default even when `emit_defaults` is off, because the
/// body must be *something*.
pub fn encode_field_json(
    msg: &DynamicMessage,
    field: &FieldDescriptor,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, EncodeError> {
    // prost-reflect serializes whole messages only: print a copy holding just this field and
    // lift the value out of it.
    let mut single = DynamicMessage::new(msg.descriptor());
    if msg.has_field(field) {
        single
            .try_set_field(field, msg.get_field(field).into_owned())
            .map_err(unprintable)?;
    }
    let text = match printed_field(&single, field, opts, false)? {
        Some(text) => text,
        None if field.supports_presence() => b"null".to_vec(),
        None if field.is_list() => b"[]".to_vec(),
        None if field.is_map() => b"{}".to_vec(),
        // A skipped default scalar: print it anyway; nothing nests inside a scalar.
        None => printed_field(&single, field, opts, true)?.unwrap_or_else(|| b"null".to_vec()),
    };
    Ok(text)
}

/// prost-reflect's JSON for `msg`, with floats as [`super::number`] prints them; empty `Any`s
/// (which prost-reflect refuses) are printed as markers that [`reprint_message`] turns into `{}`.
fn serialize(msg: &DynamicMessage, options: &SerializeOptions) -> Result<Vec<u8>, EncodeError> {
    serialize_as_is(msg, options).or_else(|err| {
        let mut marked = msg.clone();
        if !super::empty_any::mark(&mut marked) {
            return Err(err);
        }
        serialize_as_is(&marked, options)
    })
}

fn serialize_as_is(
    msg: &DynamicMessage,
    options: &SerializeOptions,
) -> Result<Vec<u8>, EncodeError> {
    let mut ser = serde_json::Serializer::with_formatter(
        Vec::with_capacity(256),
        super::number::ProtoJsonFormatter,
    );
    msg.serialize_with_options(&mut ser, options)
        .map_err(unprintable)?;
    Ok(ser.into_inner())
}

/// The value of `field` in `single`, re-emitted in print order (`None` when it was left out;
/// `print_defaults` prints a default value regardless of the options); the scalar tokens are
/// exactly as printed (a float field keeps its `float` digits, which a detour through
/// `serde_json::Value` would widen to `double`).
fn printed_field(
    single: &DynamicMessage,
    field: &FieldDescriptor,
    opts: &EncodeOptions,
    print_defaults: bool,
) -> Result<Option<Vec<u8>>, EncodeError> {
    let mut options = opts.serialize_options();
    if print_defaults {
        options = options.skip_default_fields(false);
    }
    let printed = serialize(single, &options)?;
    let members: HashMap<String, &RawValue> =
        serde_json::from_slice(&printed).map_err(unprintable)?;
    let Some(raw) = members.get(opts.key(field)) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(raw.get().len());
    reprint_field(field, raw, opts, &mut out)?;
    Ok(Some(out))
}

/// Re-emits prost-reflect's JSON for a message the way the wire-bytes printer (and Go's
/// protojson) orders it: fields in declaration order, map entries by key (numerically for integer
/// keys), at every depth; every scalar token is copied as printed. prost-reflect prints map
/// entries in hash order, and a value lifted out for `response_body` has lost its message's
/// field order.
fn reprint_message(
    desc: &MessageDescriptor,
    raw: &RawValue,
    opts: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let text = raw.get();
    let wkt = super::wkt::classify(desc);
    // Well-known types print as their own JSON forms (Struct keys come out sorted already); an
    // `Any` holding an ordinary message is that message's members after `@type`.
    if !text.starts_with('{') || wkt.is_some_and(|w| w != super::wkt::Wkt::Any) {
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    let members: HashMap<String, &RawValue> = serde_json::from_str(text).map_err(unprintable)?;
    let desc = match wkt {
        None => desc.clone(),
        Some(_) => match any_payload_type(desc, &members) {
            AnyPayload::Message(payload) => payload,
            AnyPayload::EmptyAny => {
                out.extend_from_slice(b"{}");
                return Ok(());
            }
            AnyPayload::Any(value) => return reprint_any_in_any(desc, &members, value, opts, out),
            AnyPayload::Verbatim => {
                out.extend_from_slice(text.as_bytes());
                return Ok(());
            }
        },
    };
    reprint_members(&desc, members, opts, out)
}

/// Writes an object of `desc`'s printed members: `@type` first (inside an `Any`), then the
/// fields in declaration order, then anything else sorted by name.
fn reprint_members(
    desc: &MessageDescriptor,
    mut members: HashMap<String, &RawValue>,
    opts: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.push(b'{');
    let mut first = true;
    let mut member = |out: &mut Vec<u8>, name: &str| -> Result<(), EncodeError> {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, name).map_err(unprintable)?;
        out.push(b':');
        Ok(())
    };
    if let Some(type_url) = members.remove("@type") {
        member(out, "@type")?;
        out.extend_from_slice(type_url.get().as_bytes());
    }
    for field in desc.fields() {
        let name = opts.key(&field);
        if let Some(value) = members.remove(name) {
            member(out, name)?;
            reprint_field(&field, value, opts, out)?;
        }
    }
    // Nothing else is expected (extensions at most); kept, in a stable order.
    let mut rest: Vec<(String, &RawValue)> = members.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in rest {
        member(out, &name)?;
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
    Ok(())
}

/// What a printed `Any` holds, for re-emitting it.
enum AnyPayload<'r> {
    /// An ordinary message: its members follow `@type`.
    Message(MessageDescriptor),
    /// An empty `Any` (a marker, see `empty_any`): printed as `{}`.
    EmptyAny,
    /// Another `Any`, printed under `value`: re-emitted in turn.
    Any(&'r RawValue),
    /// Another well-known type or a type the pool does not know: copied as printed.
    Verbatim,
}

fn any_payload_type<'r>(
    any: &MessageDescriptor,
    members: &HashMap<String, &'r RawValue>,
) -> AnyPayload<'r> {
    let Some(raw_url) = members.get("@type") else {
        return AnyPayload::Verbatim;
    };
    if super::empty_any::is_marker(raw_url.get()) {
        return AnyPayload::EmptyAny;
    }
    let type_url: String = serde_json::from_str(raw_url.get()).unwrap_or_default();
    let name = type_url.rsplit('/').next().unwrap_or_default();
    match any.parent_pool().get_message_by_name(name) {
        Some(payload) if super::wkt::classify(&payload).is_none() => AnyPayload::Message(payload),
        Some(payload) if payload.full_name() == any.full_name() => match members.get("value") {
            Some(value) => AnyPayload::Any(value),
            None => AnyPayload::Verbatim,
        },
        _ => AnyPayload::Verbatim,
    }
}

/// `{"@type": "…/google.protobuf.Any", "value": <an Any>}`, the inner `Any` re-emitted.
fn reprint_any_in_any(
    any: &MessageDescriptor,
    members: &HashMap<String, &RawValue>,
    value: &RawValue,
    opts: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let type_url = members.get("@type").map_or("\"\"", |raw| raw.get());
    out.extend_from_slice(b"{\"@type\":");
    out.extend_from_slice(type_url.as_bytes());
    out.extend_from_slice(b",\"value\":");
    reprint_message(any, value, opts, out)?;
    out.extend_from_slice(b"}");
    Ok(())
}

/// [`reprint_message`] for one field's value: a map, a list or a single value.
fn reprint_field(
    field: &FieldDescriptor,
    raw: &RawValue,
    opts: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let text = raw.get();
    let kind = field.kind();
    if field.is_map() && text.starts_with('{') {
        let Kind::Message(entry) = &kind else {
            return Err(unprintable("map field without an entry type"));
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let members: HashMap<String, &RawValue> =
            serde_json::from_str(text).map_err(unprintable)?;
        let mut entries: Vec<(&String, &&RawValue)> = members.iter().collect();
        entries.sort_by_key(|(key, _)| SortKey::of_printed(&key_kind, key));
        out.push(b'{');
        for (i, (key, value)) in entries.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, key).map_err(unprintable)?;
            out.push(b':');
            reprint_value(&value_kind, value, opts, out)?;
        }
        out.push(b'}');
    } else if field.is_list() && text.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(unprintable)?;
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            reprint_value(&kind, item, opts, out)?;
        }
        out.push(b']');
    } else {
        reprint_value(&kind, raw, opts, out)?;
    }
    Ok(())
}

fn reprint_value(
    kind: &Kind,
    raw: &RawValue,
    opts: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match kind {
        Kind::Message(desc) => reprint_message(desc, raw, opts, out),
        _ => {
            out.extend_from_slice(raw.get().as_bytes());
            Ok(())
        }
    }
}

fn unprintable(err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Unprintable {
        reason: err.to_string(),
    }
}
