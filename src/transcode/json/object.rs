//! The checks every JSON object for a message gets, shared by the `DynamicMessage` decoder and
//! the direct wire encoder: depth, unknown keys (skipped or rejected), duplicate fields (by proto
//! or JSON name) and oneof conflicts.

use std::fmt;

use prost_reflect::{FieldDescriptor, MessageDescriptor};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::ctx::Ctx;

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
