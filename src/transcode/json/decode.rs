//! The streaming decoder: `DeserializeSeed`s that walk serde_json's tokens with a descriptor in
//! hand and build `prost_reflect::Value`s directly, with no intermediate JSON tree.

use std::collections::HashMap;
use std::fmt;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::any;
use super::ctx::Ctx;
use super::dynamic::{self, ValueSeed};
use super::map_key::{MapKeySeed, key_text};
use super::object::for_each_field;
use super::scalar::{Number, TextMode, kind_name, value_from_number, value_from_text};
use super::wkt::{self, Wkt};

/// Decodes one field's JSON: an array for repeated fields, an object for maps, else a single
/// value. `None` means JSON `null`: leave the field unset.
pub(crate) struct FieldSeed<'a, 'o> {
    field: &'a FieldDescriptor,
    ctx: &'a Ctx<'o>,
}

impl<'a, 'o> FieldSeed<'a, 'o> {
    pub(crate) fn new(field: &'a FieldDescriptor, ctx: &'a Ctx<'o>) -> Self {
        Self { field, ctx }
    }
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        let kind = self.field.kind();
        if self.field.is_map() {
            let Kind::Message(entry) = &kind else {
                return Err(self.ctx.fail("map field without an entry message"));
            };
            let (key, value) = (
                entry.map_entry_key_field().kind(),
                entry.map_entry_value_field().kind(),
            );
            de.deserialize_any(MapVisitor {
                key: &key,
                value: &value,
                ctx: self.ctx,
            })
        } else if self.field.is_list() {
            de.deserialize_any(ListVisitor {
                kind: &kind,
                ctx: self.ctx,
            })
        } else {
            SingularSeed::new(&kind, self.ctx).deserialize(de)
        }
    }
}

/// Decodes one non-repeated value of `kind`; `None` for JSON `null` (except where `null` is a
/// value: `google.protobuf.Value` and `NullValue`).
pub(crate) struct SingularSeed<'a, 'o> {
    kind: &'a Kind,
    ctx: &'a Ctx<'o>,
}

impl<'a, 'o> SingularSeed<'a, 'o> {
    pub(crate) fn new(kind: &'a Kind, ctx: &'a Ctx<'o>) -> Self {
        Self { kind, ctx }
    }

    fn found<E: serde::de::Error>(&self, what: &str) -> E {
        self.ctx
            .fail(format!("expected {}, found {what}", kind_name(self.kind)))
    }

    fn wkt(&self) -> Option<(&MessageDescriptor, Wkt)> {
        match self.kind {
            Kind::Message(m) => wkt::classify(m).map(|w| (m, w)),
            _ => None,
        }
    }

    fn number<E: serde::de::Error>(self, n: Number) -> Result<Option<Value>, E> {
        let result = match self.wkt() {
            Some((m, Wkt::Wrapper)) => wkt::wrap(m, |k| value_from_number(k, n)),
            Some((m, Wkt::Value)) => {
                return ValueSeed::new(m, self.ctx).number(n.as_f64()).map(Some);
            }
            _ => value_from_number(self.kind, n),
        };
        result.map(Some).map_err(|r| self.ctx.fail(r))
    }
}

impl<'de> DeserializeSeed<'de> for SingularSeed<'_, '_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SingularSeed<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kind_name(self.kind))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        match (self.kind, self.wkt()) {
            (_, Some((m, Wkt::Value))) => ValueSeed::new(m, self.ctx).visit_unit().map(Some),
            (Kind::Enum(e), _) if e.full_name() == "google.protobuf.NullValue" => {
                Ok(Some(Value::EnumNumber(0)))
            }
            _ => Ok(None),
        }
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        let result = match (self.kind, self.wkt()) {
            (Kind::Bool, _) => Ok(Value::Bool(b)),
            (_, Some((m, Wkt::Wrapper))) if m.full_name() == "google.protobuf.BoolValue" => {
                wkt::wrap(m, |_| Ok(Value::Bool(b)))
            }
            (_, Some((m, Wkt::Value))) => {
                return ValueSeed::new(m, self.ctx).visit_bool(b).map(Some);
            }
            _ => return Err(self.found("boolean")),
        };
        result.map(Some).map_err(|r| self.ctx.fail(r))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.number(Number::U(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.number(Number::I(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.number(Number::F(v))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        value_from_text(self.kind, s, TextMode::Json)
            .map(Some)
            .map_err(|r| self.ctx.fail(r))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let Kind::Message(desc) = self.kind else {
            return Err(self.found("object"));
        };
        let msg = match wkt::classify(desc) {
            None => message_from_map(desc, map, self.ctx)?,
            Some(Wkt::Struct) => dynamic::struct_from_map(desc, map, self.ctx)?,
            Some(Wkt::Any) => {
                let ctx = self.ctx;
                any::any_from_map(desc, map, ctx, |kind, json| {
                    SingularSeed::new(kind, ctx).deserialize(json)
                })?
            }
            Some(Wkt::Value) => return ValueSeed::new(desc, self.ctx).visit_map(map).map(Some),
            Some(_) => return Err(self.found("object")),
        };
        Ok(Some(Value::Message(msg)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        match self.wkt() {
            Some((desc, Wkt::ListValue)) => {
                dynamic::list_from_seq(desc, seq, self.ctx).map(|l| Some(Value::Message(l)))
            }
            Some((desc, Wkt::Value)) => ValueSeed::new(desc, self.ctx).visit_seq(seq).map(Some),
            _ => Err(self.found("array")),
        }
    }
}

/// Builds an ordinary message from a JSON object, rejecting unknown, duplicate and
/// conflicting-oneof keys.
pub(crate) fn message_from_map<'de, A: MapAccess<'de>>(
    desc: &MessageDescriptor,
    mut map: A,
    ctx: &Ctx<'_>,
) -> Result<DynamicMessage, A::Error> {
    let mut msg = DynamicMessage::new(desc.clone());
    for_each_field(desc, &mut map, ctx, |field, _, map| {
        let value = map.next_value_seed(FieldSeed::new(field, ctx))?;
        let Some(value) = value else {
            return Ok(false);
        };
        // Placed at `name` by `for_each_field`, like a failure decoding the value.
        msg.try_set_field(field, value)
            .map_err(|err| ctx.fail(err.to_string()))?;
        Ok(true)
    })?;
    Ok(msg)
}

/// A JSON array for a repeated field; `null` elements are rejected.
struct ListVisitor<'a, 'o> {
    kind: &'a Kind,
    ctx: &'a Ctx<'o>,
}

impl<'de> Visitor<'de> for ListVisitor<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {}", kind_name(self.kind))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.ctx.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        loop {
            let index = items.len();
            let item = seq
                .next_element_seed(SingularSeed::new(self.kind, self.ctx))
                .map_err(|e| self.ctx.at(format!("[{index}]"), e))?;
            match item {
                None => break,
                Some(Some(value)) => items.push(value),
                Some(None) => {
                    let err = self.ctx.fail("null is not allowed in an array");
                    return Err(self.ctx.at(format!("[{index}]"), err));
                }
            }
        }
        self.ctx.leave();
        Ok(Some(Value::List(items)))
    }
}

/// A JSON object for a map field; keys are parsed per the key type, duplicates rejected.
struct MapVisitor<'a, 'o> {
    key: &'a Kind,
    value: &'a Kind,
    ctx: &'a Ctx<'o>,
}

impl<'de> Visitor<'de> for MapVisitor<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object of {}", kind_name(self.value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.ctx.enter()?;
        let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key_seed(MapKeySeed {
            kind: self.key,
            ctx: self.ctx,
        })? {
            let value = map
                .next_value_seed(SingularSeed::new(self.value, self.ctx))
                .map_err(|e| self.ctx.at(key_text(&key), e))?;
            let Some(value) = value else {
                let err = self.ctx.fail("null is not allowed as a map value");
                return Err(self.ctx.at(key_text(&key), err));
            };
            if entries.contains_key(&key) {
                return Err(self
                    .ctx
                    .fail(format!("duplicate map key `{}`", key_text(&key))));
            }
            entries.insert(key, value);
        }
        self.ctx.leave();
        Ok(Some(Value::Map(entries)))
    }
}
