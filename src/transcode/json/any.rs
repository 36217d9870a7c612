//! `google.protobuf.Any` from JSON: a message named by its `@type` key.
//!
//! `Any` is the one place that buffers: `@type` may come after the fields it describes, so the
//! object is first read into a `serde_json::Value` tree (by our own visitor, which rejects
//! duplicate keys and enforces depth) and then the payload is decoded from that tree by the
//! caller's strict seeds, so range checks hold inside `Any` too.

use std::fmt;

use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ctx::Ctx;
use super::wkt::{any_uses_value_key, set};

/// What decoding an `Any` payload from its buffered JSON gives: the value (`None` for `null`)
/// or the decoder's error. The caller decodes it with its own seed for the payload's kind, so
/// this module stays below the decoder.
pub(crate) type Payload = Result<Option<Value>, serde_json::Error>;

/// Builds a `google.protobuf.Any` from `{"@type": "type.googleapis.com/pkg.Msg", ...}`,
/// resolving the type in the descriptor pool of `desc`.
pub(crate) fn any_from_map<'de, A: MapAccess<'de>>(
    desc: &MessageDescriptor,
    mut map: A,
    ctx: &Ctx<'_>,
    payload: impl FnOnce(&Kind, serde_json::Value) -> Payload,
) -> Result<DynamicMessage, A::Error> {
    ctx.enter()?;
    let mut object = serde_json::Map::new();
    while let Some(key) = map.next_key::<String>()? {
        if object.contains_key(&key) {
            return Err(ctx.fail(format!("duplicate field `{key}`")));
        }
        let value = map
            .next_value_seed(TreeSeed { ctx })
            .map_err(|e| ctx.at(key.as_str(), e))?;
        object.insert(key, value);
    }
    // The payload's own object is this same JSON object: decoding it re-enters this level.
    ctx.leave();
    any_from_object(desc, object, ctx, payload).map_err(|err| ctx.rethrow(err))
}

fn any_from_object(
    desc: &MessageDescriptor,
    mut object: serde_json::Map<String, serde_json::Value>,
    ctx: &Ctx<'_>,
    payload: impl FnOnce(&Kind, serde_json::Value) -> Payload,
) -> Result<DynamicMessage, serde_json::Error> {
    let mut any = DynamicMessage::new(desc.clone());
    let type_url = match object.remove("@type") {
        Some(serde_json::Value::String(url)) => url,
        Some(_) => return Err(ctx.fail("`@type` must be a string")),
        None if object.is_empty() => return Ok(any),
        None => return Err(ctx.fail("missing `@type` in Any")),
    };
    let name = payload_name(&type_url).map_err(|r| ctx.fail(r))?;
    let payload_desc = desc
        .parent_pool()
        .get_message_by_name(name)
        .ok_or_else(|| ctx.fail(format!("unknown type `{name}` in `@type`")))?;
    let kind = Kind::Message(payload_desc.clone());
    let payload = if any_uses_value_key(&payload_desc) {
        let value = object
            .remove("value")
            .ok_or_else(|| ctx.fail(format!("missing `value` for {name} in Any")))?;
        if let Some(extra) = object.keys().next() {
            return Err(ctx.fail(format!("unknown field `{extra}` in Any of {name}")));
        }
        payload(&kind, value).map_err(|e| ctx.at("value", e))?
    } else {
        payload(&kind, serde_json::Value::Object(object))?
    };
    let bytes = match payload {
        Some(Value::Message(msg)) => msg.encode_to_vec(),
        _ => Vec::new(),
    };
    set(&mut any, 1, Value::String(type_url)).map_err(|r| ctx.fail(r))?;
    set(&mut any, 2, Value::Bytes(bytes.into())).map_err(|r| ctx.fail(r))?;
    Ok(any)
}

/// The message name in a client's `@type`, refusing what could not print back as sent.
fn payload_name(type_url: &str) -> Result<&str, String> {
    if type_url.starts_with(super::empty_any::MARKER_PREFIX) {
        // It would print back as `{}` (see `empty_any`).
        return Err(format!(
            "`@type` `{type_url}` uses the prefix reserved for empty Any values"
        ));
    }
    match type_url.rsplit_once('/') {
        // google/protobuf/any.proto: the name is canonical, "leading \".\" is not accepted";
        // the descriptor pool would resolve it, but it could not be printed back as sent.
        Some((_, name)) if name.starts_with('.') => Err(format!(
            "`@type` `{type_url}` names `{name}`: a type name has no leading dot"
        )),
        Some((_, name)) if !name.is_empty() => Ok(name),
        _ => Err(format!(
            "`@type` `{type_url}` is not of the form type.googleapis.com/package.Message"
        )),
    }
}

/// Reads any JSON into a `serde_json::Value`, rejecting duplicate keys and excess depth (which
/// serde_json's own `Value` would accept silently).
struct TreeSeed<'a, 'o> {
    ctx: &'a Ctx<'o>,
}

impl<'de> DeserializeSeed<'de> for TreeSeed<'_, '_> {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TreeSeed<'_, '_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(b.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| self.ctx.fail("number is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.ctx.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(TreeSeed { ctx: self.ctx })? {
            items.push(item);
        }
        self.ctx.leave();
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.ctx.enter()?;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(self.ctx.fail(format!("duplicate field `{key}`")));
            }
            let value = map
                .next_value_seed(TreeSeed { ctx: self.ctx })
                .map_err(|e| self.ctx.at(key.as_str(), e))?;
            object.insert(key, value);
        }
        self.ctx.leave();
        Ok(serde_json::Value::Object(object))
    }
}
