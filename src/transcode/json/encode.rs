//! Message -> JSON through prost-reflect's serializer, which already follows the proto3 JSON
//! mapping for well-known types and `Any`.
//!
//! What it prints, which the gateway relies on:
//! - 64-bit integers are always strings (`"5"`): JavaScript clients lose precision otherwise.
//! - With `emit_defaults`, fields without presence print their default (`0`, `""`, `[]`, `{}`),
//!   but unset fields *with* presence (singular messages, `optional` scalars, oneof members)
//!   are omitted, not printed as `null`; this matches Envoy's `always_print_primitive_fields`.
//! - Fields come in field-number order.

use prost_reflect::{DynamicMessage, FieldDescriptor, ReflectMessage as _, SerializeOptions};
use serde_json::value::RawValue;

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
    let mut ser = serde_json::Serializer::with_formatter(
        Vec::with_capacity(256),
        super::number::ProtoJsonFormatter,
    );
    msg.serialize_with_options(&mut ser, &opts.serialize_options())
        .map_err(unprintable)?;
    Ok(ser.into_inner())
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
    let key = if opts.proto_field_names {
        field.name()
    } else {
        field.json_name()
    };
    let options = opts.serialize_options();
    let text = match printed_field(&single, key, &options)? {
        Some(text) => text,
        None if field.supports_presence() => b"null".to_vec(),
        None if field.is_list() => b"[]".to_vec(),
        None if field.is_map() => b"{}".to_vec(),
        // A skipped default scalar: print it anyway; nothing nests inside a scalar.
        None => printed_field(&single, key, &options.skip_default_fields(false))?
            .unwrap_or_else(|| b"null".to_vec()),
    };
    Ok(text)
}

/// The JSON text of member `key` of the printed message, exactly as printed (a float field keeps
/// its `float` digits, which a detour through `serde_json::Value` would widen to `double`).
fn printed_field(
    single: &DynamicMessage,
    key: &str,
    options: &SerializeOptions,
) -> Result<Option<Vec<u8>>, EncodeError> {
    let mut ser = serde_json::Serializer::with_formatter(
        Vec::with_capacity(128),
        super::number::ProtoJsonFormatter,
    );
    single
        .serialize_with_options(&mut ser, options)
        .map_err(unprintable)?;
    let printed = ser.into_inner();
    let mut members: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_slice(&printed).map_err(unprintable)?;
    members
        .remove(key)
        .map(|raw| {
            let mut out = Vec::with_capacity(raw.get().len());
            keys_sorted(&raw, &mut out).map(|()| out)
        })
        .transpose()
}

/// Copies JSON text with every object's keys in order (map fields print in hash order) and
/// every other token exactly as it was.
fn keys_sorted(raw: &RawValue, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let members: std::collections::BTreeMap<String, Box<RawValue>> =
                serde_json::from_str(text).map_err(unprintable)?;
            out.push(b'{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, name).map_err(unprintable)?;
                out.push(b':');
                keys_sorted(value, out)?;
            }
            out.push(b'}');
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text).map_err(unprintable)?;
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                keys_sorted(item, out)?;
            }
            out.push(b']');
        }
        _ => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

fn unprintable(err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Unprintable {
        reason: err.to_string(),
    }
}
