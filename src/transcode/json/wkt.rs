//! Well-known types with a special JSON form: which ones they are, how to build the simple ones,
//! and FieldMask's string form (Timestamp and Duration strings are in `time`).

use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

/// The well-known types whose JSON differs from an ordinary message's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wkt {
    Timestamp,
    Duration,
    FieldMask,
    Struct,
    Value,
    ListValue,
    Any,
    /// `google.protobuf.*Value` wrappers: JSON is the bare wrapped value.
    Wrapper,
}

/// Classifies a message type; `None` for ordinary messages (including `Empty`, whose `{}` is
/// ordinary message JSON).
pub(crate) fn classify(desc: &MessageDescriptor) -> Option<Wkt> {
    let name = desc.full_name().strip_prefix("google.protobuf.")?;
    Some(match name {
        "Timestamp" => Wkt::Timestamp,
        "Duration" => Wkt::Duration,
        "FieldMask" => Wkt::FieldMask,
        "Struct" => Wkt::Struct,
        "Value" => Wkt::Value,
        "ListValue" => Wkt::ListValue,
        "Any" => Wkt::Any,
        "DoubleValue" | "FloatValue" | "Int64Value" | "UInt64Value" | "Int32Value"
        | "UInt32Value" | "BoolValue" | "StringValue" | "BytesValue" => Wkt::Wrapper,
        _ => return None,
    })
}

/// True when `Any` carries this type as `{"@type": ..., "value": <special JSON>}`.
pub(crate) fn any_uses_value_key(desc: &MessageDescriptor) -> bool {
    classify(desc).is_some() || desc.full_name() == "google.protobuf.Empty"
}

/// Builds a wrapper message around the value `inner` makes for the wrapper's `value` kind.
pub(crate) fn wrap(
    desc: &MessageDescriptor,
    inner: impl FnOnce(&prost_reflect::Kind) -> Result<Value, String>,
) -> Result<Value, String> {
    let field = desc
        .get_field(1)
        .ok_or_else(|| format!("{} has no field 1", desc.full_name()))?;
    let value = inner(&field.kind())?;
    let mut msg = DynamicMessage::new(desc.clone());
    msg.try_set_field(&field, value)
        .map_err(|err| err.to_string())?;
    Ok(Value::Message(msg))
}

/// Sets field `number` without the panic `set_field` has on type mismatch.
pub(crate) fn set(msg: &mut DynamicMessage, number: u32, value: Value) -> Result<(), String> {
    msg.try_set_field_by_number(number, value)
        .map_err(|err| err.to_string())
}

/// Parses `"fooBar,baz.qux"` into the snake_case paths `foo_bar`, `baz.qux`.
pub(crate) fn parse_field_mask(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|path| {
            if path.is_empty() || path.contains('_') || path.split('.').any(str::is_empty) {
                return Err(format!("`{path}` is not a lowerCamel field mask path"));
            }
            let mut snake = String::with_capacity(path.len() + 4);
            for c in path.chars() {
                if c.is_ascii_uppercase() {
                    snake.push('_');
                    snake.push(c.to_ascii_lowercase());
                } else {
                    snake.push(c);
                }
            }
            Ok(snake)
        })
        .collect()
}
