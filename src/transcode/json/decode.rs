//! The streaming decoder: `DeserializeSeed`s that walk serde_json's tokens with a descriptor in
//! hand and build `prost_reflect::Value`s directly, with no intermediate JSON tree.

use std::collections::HashMap;
use std::fmt;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Ctx;
use super::dynamic;
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
            Some((m, Wkt::Value)) => dynamic::value_message(m, 2, Value::F64(n.as_f64())),
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
            (_, Some((m, Wkt::Value))) => dynamic::value_message(m, 1, Value::EnumNumber(0))
                .map(Some)
                .map_err(|r| self.ctx.fail(r)),
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
            (_, Some((m, Wkt::Value))) => dynamic::value_message(m, 4, Value::Bool(b)),
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
            Some(Wkt::Any) => dynamic::any_from_map(desc, map, self.ctx)?,
            Some(Wkt::Value) => {
                let inner = dynamic::struct_desc(desc, 5).map_err(|r| self.ctx.fail(r))?;
                let s = dynamic::struct_from_map(&inner, map, self.ctx)?;
                return dynamic::value_message(desc, 5, Value::Message(s))
                    .map(Some)
                    .map_err(|r| self.ctx.fail(r));
            }
            Some(_) => return Err(self.found("object")),
        };
        Ok(Some(Value::Message(msg)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        match self.wkt() {
            Some((desc, Wkt::ListValue)) => {
                dynamic::list_from_seq(desc, seq, self.ctx).map(|l| Some(Value::Message(l)))
            }
            Some((desc, Wkt::Value)) => {
                let inner = dynamic::struct_desc(desc, 6).map_err(|r| self.ctx.fail(r))?;
                let list = dynamic::list_from_seq(&inner, seq, self.ctx)?;
                dynamic::value_message(desc, 6, Value::Message(list))
                    .map(Some)
                    .map_err(|r| self.ctx.fail(r))
            }
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

/// Walks the keys of one JSON object for message `desc` with every check both decoders share:
/// depth, unknown keys (skipped or rejected), duplicates (proto and JSON name alike) and oneof
/// conflicts. `value` consumes the value of `field` (sent under `name`) and says whether it was
/// non-null; errors it returns are placed at `name`.
pub(crate) fn for_each_field<'de, A: MapAccess<'de>>(
    desc: &MessageDescriptor,
    map: &mut A,
    ctx: &Ctx<'_>,
    mut value: impl FnMut(&FieldDescriptor, &str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    ctx.enter()?;
    let mut seen = FieldSet::default();
    let mut set = FieldSet::default();
    let mut next = 1;
    while let Some(key) = map.next_key_seed(KeySeed { desc, next, ctx })? {
        let Some((field, by_json_name)) = key else {
            map.next_value_seed(SkipSeed { ctx })?;
            continue;
        };
        next = field.number().saturating_add(1);
        let name = if by_json_name {
            field.json_name()
        } else {
            field.name()
        };
        if !seen.insert(field.number()) {
            return Err(ctx.fail(format!("duplicate field `{name}`")));
        }
        if !value(&field, name, map).map_err(|e| ctx.at(name, e))? {
            continue;
        }
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            if oneof.fields().any(|other| set.contains(other.number())) {
                return Err(ctx.fail(format!(
                    "`{name}` and another member of oneof `{}` are both set",
                    oneof.name()
                )));
            }
            set.insert(field.number());
        }
    }
    ctx.leave();
    Ok(())
}

/// Field numbers seen in one object; numbers below 128 (nearly all) live in a bit mask so the
/// common case never allocates.
#[derive(Default)]
struct FieldSet {
    low: u128,
    high: Vec<u32>,
}

impl FieldSet {
    /// Adds `n`; false when it was already present.
    fn insert(&mut self, n: u32) -> bool {
        if self.contains(n) {
            return false;
        }
        if n < 128 {
            self.low |= 1 << n;
        } else {
            self.high.push(n);
        }
        true
    }

    fn contains(&self, n: u32) -> bool {
        if n < 128 {
            self.low & (1 << n) != 0
        } else {
            self.high.contains(&n)
        }
    }
}

/// Resolves an object key to a field (by JSON name, then proto name); `None` for an unknown key
/// when unknown fields are ignored. The bool says whether the JSON name matched.
struct KeySeed<'a, 'o> {
    desc: &'a MessageDescriptor,
    /// The field number likely to come next: clients mostly send fields in declaration order,
    /// and checking that one field's JSON name first skips the (SipHash) name look-up.
    next: u32,
    ctx: &'a Ctx<'o>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Option<(FieldDescriptor, bool)>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Option<(FieldDescriptor, bool)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        // Same answer as the look-up below: JSON names are unique within a message.
        if let Some(field) = self.desc.get_field(self.next)
            && field.json_name() == key
        {
            return Ok(Some((field, true)));
        }
        if let Some(field) = self.desc.get_field_by_json_name(key) {
            return Ok(Some((field, true)));
        }
        if let Some(field) = self.desc.get_field_by_name(key) {
            return Ok(Some((field, false)));
        }
        if self.ctx.opts().ignore_unknown_fields {
            return Ok(None);
        }
        let err = self.ctx.fail(format!(
            "unknown field `{key}` in {}",
            self.desc.full_name()
        ));
        // Inside a field the error is placed at that field, like any bad value there; in the
        // outermost object nothing encloses the key, so the key itself is what a
        // `google.rpc.BadRequest` names.
        Err(if self.ctx.in_outermost_object() {
            self.ctx.at(key, err)
        } else {
            err
        })
    }
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
        let value = match self.kind {
            Kind::String => return Ok(MapKey::String(key.to_owned())),
            Kind::Bool => value_from_text(self.kind, key, TextMode::Binding),
            _ => value_from_text(self.kind, key, TextMode::Json),
        };
        value.ok().and_then(Value::into_map_key).ok_or_else(|| {
            self.ctx.fail(format!(
                "`{key}` is not a valid {} map key",
                kind_name(self.kind)
            ))
        })
    }
}

/// Skips the value of an ignored unknown field while still enforcing the depth limit.
struct SkipSeed<'a, 'o> {
    ctx: &'a Ctx<'o>,
}

impl<'de> DeserializeSeed<'de> for SkipSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SkipSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.ctx.enter()?;
        while seq.next_element_seed(SkipSeed { ctx: self.ctx })?.is_some() {}
        self.ctx.leave();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.ctx.enter()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(SkipSeed { ctx: self.ctx })?;
        }
        self.ctx.leave();
        Ok(())
    }
}
