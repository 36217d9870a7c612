//! Map keys: JSON object keys parsed per the map's key type, and printed back as path segments.

use std::fmt;

use prost_reflect::{Kind, MapKey, Value};
use serde::de::{DeserializeSeed, Deserializer, Visitor};

use super::ctx::Ctx;
use super::scalar::{TextMode, kind_name, value_from_text};

/// The text of a map key as a path segment.
pub(super) fn key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(i) => i.to_string(),
        MapKey::I64(i) => i.to_string(),
        MapKey::U32(u) => u.to_string(),
        MapKey::U64(u) => u.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Parses an object key into a map key: JSON keys are always strings, so bool and integer keys
/// arrive as text.
pub(super) struct MapKeySeed<'a, 'o> {
    pub(super) kind: &'a Kind,
    pub(super) ctx: &'a Ctx<'o>,
}

impl<'de> DeserializeSeed<'de> for MapKeySeed<'_, '_> {
    type Value = MapKey;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MapKeySeed<'_, '_> {
    type Value = MapKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} map key", kind_name(self.kind))
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        map_key_from_text(self.kind, key).map_err(|reason| self.ctx.fail(reason))
    }
}

/// Parses a map key of type `kind` from its text form: a JSON object key, or the `[key]` of a
/// query parameter. Integer keys are decimal, bool keys `true` or `false`.
pub(crate) fn map_key_from_text(kind: &Kind, key: &str) -> Result<MapKey, String> {
    let value = match kind {
        Kind::String => return Ok(MapKey::String(key.to_owned())),
        Kind::Bool => value_from_text(kind, key, TextMode::Binding),
        _ => value_from_text(kind, key, TextMode::Json),
    };
    value
        .ok()
        .and_then(Value::into_map_key)
        .ok_or_else(|| format!("`{key}` is not a valid {} map key", kind_name(kind)))
}
