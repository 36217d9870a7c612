//! JSON straight to protobuf wire bytes, without building a `DynamicMessage` first.
//!
//! Same strictness, same error texts as the [`DynamicMessage` decoder](super::decode), by
//! construction rather than by copy: objects go through the shared [`for_each_field`]
//! (unknown, duplicate and oneof checks, depth), map keys through [`MapKeySeed`], and every
//! scalar, enum and dynamic well-known type (`Any`, `Struct`, `Value`, `ListValue`,
//! `FieldMask`, wrappers) is turned into a `Value` by the decoder's own `SingularSeed` visitor
//! methods before it is written with the request encoder's `single`. Only three things are
//! written without a `Value`: ordinary nested messages (streamed into the buffer, length prefix
//! spliced in afterwards), strings (no copy) and Timestamp/Duration strings (two varints
//! instead of a `DynamicMessage`).
//!
//! Output bytes equal `encode_message(&decode_message(..))` except for field order: fields come
//! in the order the client sent them, which protobuf parsers accept. Defaults of fields without
//! presence are skipped exactly where `DynamicMessage` would not report them as set.
//!
//! Group fields (proto2 only) have no streamed form here: meeting one abandons the encode and
//! the caller takes the `DynamicMessage` path for the whole request.

use std::collections::HashSet;
use std::fmt;

use prost_reflect::{FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ctx::{Ctx, DecodeOptions, JsonError};
use super::decode::SingularSeed;
use super::map_key::{MapKeySeed, key_text};
use super::object::for_each_field;
use super::scalar::kind_name;
use super::time::{parse_duration, parse_timestamp};
use super::wkt::{self, Wkt};
use crate::transcode::request::encode::{
    LEN, Unsupported, VARINT, key, length_delimited, map_key, message, prefix_length, scalar,
    single, varint,
};

/// Encodes one JSON document as the wire bytes of a message of type `desc`.
///
/// `Ok(None)` means the input needs the `DynamicMessage` path (it sets a group field); errors
/// are exactly those of decoding into a `DynamicMessage`.
pub(crate) fn encode_wire(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<Option<Vec<u8>>, JsonError> {
    // One UTF-8 check of the whole body is much cheaper than serde_json's check of every
    // string; both parse the same way, so only invalid input keeps the slice reader (and its
    // error positions).
    match std::str::from_utf8(json) {
        Ok(text) => encode_from(desc, serde_json::Deserializer::from_str(text), opts),
        Err(_) => encode_from(desc, serde_json::Deserializer::from_slice(json), opts),
    }
}

fn encode_from<'de, R: serde_json::de::Read<'de>>(
    desc: &MessageDescriptor,
    mut de: serde_json::Deserializer<R>,
    opts: &DecodeOptions,
) -> Result<Option<Vec<u8>>, JsonError> {
    let ctx = Ctx::new(opts);
    let kind = Kind::Message(desc.clone());
    let mut out = Vec::with_capacity(128);
    let seed = ItemSeed {
        kind: &kind,
        record: Record::Bare,
        ctx: &ctx,
        out: &mut out,
    };
    match seed.deserialize(&mut de).and_then(|_| de.end()) {
        Ok(()) => Ok(Some(out)),
        Err(_) if ctx.is_unsupported() => Ok(None),
        Err(err) => Err(ctx.into_error(&err)),
    }
}

/// How one value is framed in the output.
#[derive(Clone, Copy)]
enum Record {
    /// A field record (key, then value); with `skip_default` a default value writes nothing,
    /// as for a proto3 field without presence.
    Field { number: u32, skip_default: bool },
    /// No key: the root message's fields, or one element of a packed run.
    Bare,
}

/// Writes the fields of one JSON object for message `desc` (no key, no length prefix).
fn fields_from_map<'de, A: MapAccess<'de>>(
    desc: &MessageDescriptor,
    mut map: A,
    ctx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), A::Error> {
    for_each_field(desc, &mut map, ctx, |field, _, map| {
        map.next_value_seed(FieldSeed {
            field,
            ctx,
            out: &mut *out,
        })
    })
}

/// One field's JSON (array, object for maps, or a single value); true unless it was `null`.
struct FieldSeed<'a, 'o> {
    field: &'a FieldDescriptor,
    ctx: &'a Ctx<'o>,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        let (field, ctx) = (self.field, self.ctx);
        if field.is_group() {
            return Err(ctx.unsupported());
        }
        let kind = field.kind();
        let number = field.number();
        if field.is_map() {
            let Kind::Message(entry) = &kind else {
                return Err(ctx.fail("map field without an entry message"));
            };
            let (key, value) = (
                entry.map_entry_key_field().kind(),
                entry.map_entry_value_field().kind(),
            );
            let (key, value) = (&key, &value);
            let out = self.out;
            de.deserialize_any(MapSeed {
                number,
                key,
                value,
                ctx,
                out,
            })
        } else if field.is_list() {
            let packed = field.is_packed();
            let (kind, out) = (&kind, self.out);
            de.deserialize_any(ListSeed {
                number,
                packed,
                kind,
                ctx,
                out,
            })
        } else {
            let record = Record::Field {
                number,
                skip_default: !field.supports_presence(),
            };
            let (kind, out) = (&kind, self.out);
            de.deserialize_any(ItemSeed {
                kind,
                record,
                ctx,
                out,
            })
        }
    }
}

/// One non-repeated value of `kind`; true unless it was `null` (which writes nothing).
struct ItemSeed<'a, 'o> {
    kind: &'a Kind,
    record: Record,
    ctx: &'a Ctx<'o>,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl ItemSeed<'_, '_> {
    /// The decoder's visitor for the same kind: its result is what the `DynamicMessage` would
    /// hold, with its errors.
    fn decoder(&self) -> SingularSeed<'_, '_> {
        SingularSeed::new(self.kind, self.ctx)
    }

    /// Writes what the decoder made of the value; `None` (JSON `null`) writes nothing.
    fn put<E: serde::de::Error>(self, value: Option<Value>) -> Result<bool, E> {
        let Some(value) = value else {
            return Ok(false);
        };
        let written = match self.record {
            Record::Field {
                skip_default: true, ..
            } if value.is_default(self.kind) => Ok(()),
            Record::Field { number, .. } => single(number, self.kind, &value, self.out),
            Record::Bare => match &value {
                Value::Message(msg) => message(msg, self.out),
                _ => scalar(self.kind, &value, self.out),
            },
        };
        written.map_err(|Unsupported| self.ctx.unsupported())?;
        Ok(true)
    }

    /// Opens a length-delimited record; returns where its length prefix goes.
    fn open(&mut self) -> Option<usize> {
        match self.record {
            Record::Field { number, .. } => {
                key(number, LEN, self.out);
                Some(self.out.len())
            }
            Record::Bare => None,
        }
    }

    fn close(self, start: Option<usize>) -> bool {
        if let Some(start) = start {
            prefix_length(self.out, start);
        }
        true
    }

    /// A Timestamp or Duration as its two fields (zeros left out, as the decoder leaves them
    /// unset).
    fn seconds_and_nanos(mut self, (seconds, nanos): (i64, i32)) -> bool {
        let start = self.open();
        if seconds != 0 {
            key(1, VARINT, self.out);
            varint(seconds as u64, self.out);
        }
        if nanos != 0 {
            key(2, VARINT, self.out);
            // int32: negative values are sign-extended to ten bytes.
            varint(i64::from(nanos) as u64, self.out);
        }
        self.close(start)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kind_name(self.kind))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        let value = self.decoder().visit_unit()?;
        self.put(value)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<bool, E> {
        let value = self.decoder().visit_bool(b)?;
        self.put(value)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<bool, E> {
        let value = self.decoder().visit_u64(v)?;
        self.put(value)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<bool, E> {
        let value = self.decoder().visit_i64(v)?;
        self.put(value)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<bool, E> {
        let value = self.decoder().visit_f64(v)?;
        self.put(value)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<bool, E> {
        match (self.kind, self.record) {
            (
                Kind::String,
                Record::Field {
                    number,
                    skip_default,
                },
            ) => {
                // Written straight from the input: no `String` to allocate.
                if !(skip_default && s.is_empty()) {
                    length_delimited(number, s.as_bytes(), self.out);
                }
                return Ok(true);
            }
            (Kind::Message(m), _) => match wkt::classify(m) {
                Some(Wkt::Timestamp) => {
                    let parsed = parse_timestamp(s).map_err(|r| self.ctx.fail(r))?;
                    return Ok(self.seconds_and_nanos(parsed));
                }
                Some(Wkt::Duration) => {
                    let parsed = parse_duration(s).map_err(|r| self.ctx.fail(r))?;
                    return Ok(self.seconds_and_nanos(parsed));
                }
                _ => {}
            },
            _ => {}
        }
        let value = self.decoder().visit_str(s)?;
        self.put(value)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<bool, A::Error> {
        let kind = self.kind;
        match kind {
            Kind::Message(desc) if wkt::classify(desc).is_none() => {
                let start = self.open();
                fields_from_map(desc, map, self.ctx, self.out)?;
                Ok(self.close(start))
            }
            _ => {
                let value = self.decoder().visit_map(map)?;
                self.put(value)
            }
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        let value = self.decoder().visit_seq(seq)?;
        self.put(value)
    }
}

/// A JSON array for a repeated field: one packed record, or one record per element.
struct ListSeed<'a, 'o> {
    number: u32,
    packed: bool,
    kind: &'a Kind,
    ctx: &'a Ctx<'o>,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {}", kind_name(self.kind))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let ctx = self.ctx;
        ctx.enter()?;
        let before = self.out.len();
        let record = if self.packed {
            key(self.number, LEN, self.out);
            Record::Bare
        } else {
            Record::Field {
                number: self.number,
                skip_default: false,
            }
        };
        let start = self.out.len();
        let mut index = 0;
        loop {
            let item = ItemSeed {
                kind: self.kind,
                record,
                ctx,
                out: self.out,
            };
            match seq
                .next_element_seed(item)
                .map_err(|e| ctx.at(format!("[{index}]"), e))?
            {
                None => break,
                Some(true) => index += 1,
                Some(false) => {
                    let err = ctx.fail("null is not allowed in an array");
                    return Err(ctx.at(format!("[{index}]"), err));
                }
            }
        }
        if self.packed {
            // An empty list is not set, so it has no record at all.
            if index == 0 {
                self.out.truncate(before);
            } else {
                prefix_length(self.out, start);
            }
        }
        ctx.leave();
        Ok(true)
    }
}

/// A JSON object for a map field: one entry record (key = 1, value = 2) per key.
struct MapSeed<'a, 'o> {
    number: u32,
    key: &'a Kind,
    value: &'a Kind,
    ctx: &'a Ctx<'o>,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MapSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object of {}", kind_name(self.value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let ctx = self.ctx;
        ctx.enter()?;
        let mut seen = KeySet::default();
        while let Some(k) = map.next_key_seed(MapKeySeed {
            kind: self.key,
            ctx,
        })? {
            key(self.number, LEN, self.out);
            let start = self.out.len();
            map_key(self.key, &k, self.out).map_err(|Unsupported| ctx.unsupported())?;
            let item = ItemSeed {
                kind: self.value,
                record: Record::Field {
                    number: 2,
                    skip_default: false,
                },
                ctx,
                out: self.out,
            };
            let present = map
                .next_value_seed(item)
                .map_err(|e| ctx.at(key_text(&k), e))?;
            if !present {
                let err = ctx.fail("null is not allowed as a map value");
                return Err(ctx.at(key_text(&k), err));
            }
            if let Err(k) = seen.insert(k) {
                return Err(ctx.fail(format!("duplicate map key `{}`", key_text(&k))));
            }
            prefix_length(self.out, start);
        }
        ctx.leave();
        Ok(true)
    }
}

/// Map keys seen in one object: a short list searched in place (no hashing, the common case),
/// becoming a hash set once the map grows.
#[derive(Default)]
struct KeySet {
    few: Vec<MapKey>,
    many: HashSet<MapKey>,
}

impl KeySet {
    /// Beyond this many keys a linear search costs more than hashing.
    const FEW: usize = 16;

    /// Adds `key`, or hands it back when it was already present.
    fn insert(&mut self, key: MapKey) -> Result<(), MapKey> {
        if self.many.is_empty() {
            if self.few.contains(&key) {
                return Err(key);
            }
            if self.few.len() < Self::FEW {
                self.few.push(key);
                return Ok(());
            }
            self.many.extend(self.few.drain(..));
        }
        if self.many.contains(&key) {
            return Err(key);
        }
        self.many.insert(key);
        Ok(())
    }
}
