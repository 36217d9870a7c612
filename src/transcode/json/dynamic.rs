//! `Struct`, `Value` and `ListValue`: any JSON at all, as the `google.protobuf.Value` family.
//!
//! The family is closed (a `Struct` holds `Value`s, a `Value` holds a `Struct`, a `ListValue` or a
//! scalar), so its one seed, [`ValueSeed`], recurses only into itself.

use std::collections::HashMap;
use std::fmt;

use prost_reflect::{DynamicMessage, FieldDescriptor, MapKey, MessageDescriptor, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ctx::Ctx;
use super::wkt::set;

/// Builds a `google.protobuf.Value` with the one member `number` set to `value`.
pub(crate) fn value_message(
    desc: &MessageDescriptor,
    number: u32,
    value: Value,
) -> Result<Value, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    set(&mut msg, number, value)?;
    Ok(Value::Message(msg))
}

/// The message type of field `number` of `desc` (Value's `struct_value` / `list_value`).
fn struct_desc(desc: &MessageDescriptor, number: u32) -> Result<MessageDescriptor, String> {
    desc.get_field(number)
        .and_then(|f| f.kind().as_message().cloned())
        .ok_or_else(|| format!("{} has no message field {number}", desc.full_name()))
}

/// Builds a `google.protobuf.Struct` from any JSON object.
pub(crate) fn struct_from_map<'de, A: MapAccess<'de>>(
    desc: &MessageDescriptor,
    mut map: A,
    ctx: &Ctx<'_>,
) -> Result<DynamicMessage, A::Error> {
    ctx.enter()?;
    let (field, value_desc) =
        values_field(desc).ok_or_else(|| ctx.fail("google.protobuf.Struct has no `fields` map"))?;
    let mut entries = HashMap::new();
    while let Some(key) = map.next_key::<String>()? {
        let value = map
            .next_value_seed(ValueSeed::new(&value_desc, ctx))
            .map_err(|e| ctx.at(key.as_str(), e))?;
        let key = MapKey::String(key);
        if entries.contains_key(&key) {
            return Err(ctx.fail(format!("duplicate key `{}`", key_str(&key))));
        }
        entries.insert(key, value);
    }
    ctx.leave();
    with_values(desc, &field, Value::Map(entries), ctx)
}

fn key_str(key: &MapKey) -> &str {
    match key {
        MapKey::String(s) => s,
        _ => "",
    }
}

/// Builds a `google.protobuf.ListValue` from any JSON array.
pub(crate) fn list_from_seq<'de, A: SeqAccess<'de>>(
    desc: &MessageDescriptor,
    mut seq: A,
    ctx: &Ctx<'_>,
) -> Result<DynamicMessage, A::Error> {
    ctx.enter()?;
    let (field, value_desc) = values_field(desc)
        .ok_or_else(|| ctx.fail("google.protobuf.ListValue has no `values` field"))?;
    let mut items = Vec::new();
    loop {
        let index = items.len();
        match seq
            .next_element_seed(ValueSeed::new(&value_desc, ctx))
            .map_err(|e| ctx.at(format!("[{index}]"), e))?
        {
            None => break,
            Some(value) => items.push(value),
        }
    }
    ctx.leave();
    with_values(desc, &field, Value::List(items), ctx)
}

/// Field 1 of a Struct (`fields`, a map) or a ListValue (`values`, a list), and the `Value`
/// type its entries or elements have.
fn values_field(desc: &MessageDescriptor) -> Option<(FieldDescriptor, MessageDescriptor)> {
    let field = desc.get_field(1)?;
    let kind = field.kind();
    let holder = kind.as_message()?;
    let value = if field.is_map() {
        holder.map_entry_value_field().kind().as_message()?.clone()
    } else {
        holder.clone()
    };
    Some((field, value))
}

/// A Struct or ListValue of type `desc` holding `values` in its field 1.
fn with_values<E: serde::de::Error>(
    desc: &MessageDescriptor,
    field: &FieldDescriptor,
    values: Value,
    ctx: &Ctx<'_>,
) -> Result<DynamicMessage, E> {
    let mut msg = DynamicMessage::new(desc.clone());
    msg.try_set_field(field, values)
        .map_err(|err| ctx.fail(err.to_string()))?;
    Ok(msg)
}

/// Decodes any JSON into a `google.protobuf.Value` of type `desc` (JSON `null` included, as
/// `null_value`).
pub(crate) struct ValueSeed<'a, 'o> {
    desc: &'a MessageDescriptor,
    ctx: &'a Ctx<'o>,
}

impl<'a, 'o> ValueSeed<'a, 'o> {
    pub(crate) fn new(desc: &'a MessageDescriptor, ctx: &'a Ctx<'o>) -> Self {
        Self { desc, ctx }
    }

    /// The `Value` with member `number` set, failing the decode on a descriptor mismatch.
    fn member<E: serde::de::Error>(&self, number: u32, value: Value) -> Result<Value, E> {
        value_message(self.desc, number, value).map_err(|r| self.ctx.fail(r))
    }

    /// A JSON number: Value holds every number as a double.
    pub(crate) fn number<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        self.member(2, Value::F64(n))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.desc.full_name())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.member(1, Value::EnumNumber(0))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        self.member(4, Value::Bool(b))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.number(v as f64)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.number(v as f64)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.number(v)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        self.member(3, Value::String(s.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let inner = struct_desc(self.desc, 5).map_err(|r| self.ctx.fail(r))?;
        let s = struct_from_map(&inner, map, self.ctx)?;
        self.member(5, Value::Message(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        let inner = struct_desc(self.desc, 6).map_err(|r| self.ctx.fail(r))?;
        let list = list_from_seq(&inner, seq, self.ctx)?;
        self.member(6, Value::Message(list))
    }
}
