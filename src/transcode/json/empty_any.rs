//! Printing an empty `google.protobuf.Any` (no `type_url`, no `value`) as `{}`.
//!
//! The proto3 JSON mapping prints an empty `Any` as `{}` (Go's protojson, C++ and Java all do,
//! and all three parse `{}` back into an empty `Any`); prost-reflect's serializer refuses it
//! ("unsupported type url ''"), so a request `{"anyValue":{}}` that the backend echoed came back
//! as a 502 after the backend had acted on it. When printing fails, [`mark`] replaces each empty
//! `Any` (at any depth, inside other `Any` payloads too) with a *marker*: an `Any` whose type URL
//! is [`MARKER_PREFIX`] plus the name of some other message in the pool, with no payload, which
//! prost-reflect can print. The re-emitting pass in `encode` then writes every marker as `{}`.
//!
//! A backend that itself sends an `Any` with a marker type URL gets `{}` printed for it: such a
//! URL names no real type server (`.invalid` is reserved, RFC 2606).

use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage as _, Value};

use super::wkt::set;

/// The type URL prefix of a marker (see the module docs).
pub(super) const MARKER_PREFIX: &str = "empty-any.tai-gateway.invalid/";

const ANY: &str = "google.protobuf.Any";

/// Replaces every empty `Any` in `msg` with a marker; false when there was none (or the pool
/// holds no message type to name in a marker).
pub(super) fn mark(msg: &mut DynamicMessage) -> bool {
    let desc = msg.descriptor();
    if desc.full_name() == ANY {
        return mark_any(msg);
    }
    let mut changed = false;
    for (_, value) in msg.fields_mut() {
        changed |= mark_value(value);
    }
    changed
}

fn mark_value(value: &mut Value) -> bool {
    match value {
        Value::Message(msg) => mark(msg),
        Value::List(items) => items.iter_mut().fold(false, |c, v| mark_value(v) | c),
        Value::Map(entries) => entries.values_mut().fold(false, |c, v| mark_value(v) | c),
        _ => false,
    }
}

/// Marks an empty `Any`, or the empty `Any`s inside a known payload (re-encoded when changed).
fn mark_any(any: &mut DynamicMessage) -> bool {
    let type_url = field_text(any, "type_url");
    let payload = any
        .get_field_by_name("value")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    if type_url.is_empty() && payload.is_empty() {
        let Some(name) = marker_type(&any.descriptor()) else {
            return false;
        };
        let url = Value::String(format!("{MARKER_PREFIX}{name}"));
        return set(any, 1, url).is_ok();
    }
    let name = type_url.rsplit_once('/').map_or("", |(_, name)| name);
    let Some(payload_desc) = any.descriptor().parent_pool().get_message_by_name(name) else {
        return false;
    };
    let Ok(mut inner) = DynamicMessage::decode(payload_desc, payload) else {
        return false;
    };
    if !mark(&mut inner) {
        return false;
    }
    set(any, 2, Value::Bytes(inner.encode_to_vec().into())).is_ok()
}

fn field_text(msg: &DynamicMessage, name: &str) -> String {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// An ordinary message type of the pool: its empty payload always prints (an empty
/// `google.protobuf.Value` would not).
fn marker_type(any: &MessageDescriptor) -> Option<String> {
    any.parent_pool()
        .all_messages()
        .find(|m| !m.full_name().starts_with("google.protobuf.") && !m.is_map_entry())
        .map(|m| m.full_name().to_owned())
}

/// True when a printed `@type` (a JSON string token) is a marker's.
pub(super) fn is_marker(type_url_json: &str) -> bool {
    serde_json::from_str::<String>(type_url_json).is_ok_and(|url| url.starts_with(MARKER_PREFIX))
}
