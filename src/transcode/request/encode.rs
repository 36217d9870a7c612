//! Protobuf encoding of the request message, without prost-reflect's `encode_to_vec`.
//!
//! prost-reflect computes each nested message's length by walking it again (once per level of
//! nesting) and compares every value with a freshly built default. Here each message is written
//! once: its bytes go to the end of the buffer and the length prefix is inserted in front
//! afterwards, which moves only that message's (usually small) bytes.
//!
//! Fields come out in field-number order, as `DynamicMessage::fields` yields them. Messages
//! with extensions, unknown fields or groups (never produced from JSON) are encoded by
//! prost-reflect instead.

use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, Value};

/// This message needs prost-reflect's encoder.
pub(crate) struct Unsupported;

/// Encodes `msg` in the protobuf wire format.
pub fn encode_message(msg: &DynamicMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    match message(msg, &mut out) {
        Ok(()) => out,
        Err(Unsupported) => msg.encode_to_vec(),
    }
}

/// Writes the fields of `msg` (no key, no length prefix).
pub(crate) fn message(msg: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    if msg.extensions().next().is_some() || msg.unknown_fields().next().is_some() {
        return Err(Unsupported);
    }
    for (field, value) in msg.fields() {
        let number = field.number();
        match value {
            Value::List(items) => list(&field, items, out)?,
            Value::Map(entries) => map(&field, entries, out)?,
            Value::Message(_) if field.is_group() => return Err(Unsupported),
            value => single(number, &field.kind(), value, out)?,
        }
    }
    Ok(())
}

/// A repeated field: packed when the descriptor says so, else one record per element.
fn list(field: &FieldDescriptor, items: &[Value], out: &mut Vec<u8>) -> Result<(), Unsupported> {
    let number = field.number();
    if field.is_packed() {
        let kind = field.kind();
        key(number, LEN, out);
        let start = out.len();
        for item in items {
            scalar(&kind, item, out)?;
        }
        prefix_length(out, start);
        return Ok(());
    }
    let kind = field.kind();
    for item in items {
        single(number, &kind, item, out)?;
    }
    Ok(())
}

/// A map field: one entry message (key = 1, value = 2) per pair.
fn map(
    field: &FieldDescriptor,
    entries: &std::collections::HashMap<MapKey, Value>,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    let Kind::Message(entry) = field.kind() else {
        return Err(Unsupported);
    };
    let (key_kind, value_kind) = (
        entry.map_entry_key_field().kind(),
        entry.map_entry_value_field().kind(),
    );
    for (k, v) in entries {
        key(field.number(), LEN, out);
        let start = out.len();
        map_key(&key_kind, k, out)?;
        single(2, &value_kind, v, out)?;
        prefix_length(out, start);
    }
    Ok(())
}

/// The key record (field 1) of a map entry.
pub(crate) fn map_key(kind: &Kind, k: &MapKey, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    // Integer keys borrow nothing, so building a Value for them is free; strings are written
    // directly to avoid cloning them.
    match k {
        MapKey::String(s) => length_delimited(1, s.as_bytes(), out),
        MapKey::Bool(b) => single(1, kind, &Value::Bool(*b), out)?,
        MapKey::I32(i) => single(1, kind, &Value::I32(*i), out)?,
        MapKey::I64(i) => single(1, kind, &Value::I64(*i), out)?,
        MapKey::U32(u) => single(1, kind, &Value::U32(*u), out)?,
        MapKey::U64(u) => single(1, kind, &Value::U64(*u), out)?,
    }
    Ok(())
}

/// One field record of type `kind`: key and value.
pub(crate) fn single(
    number: u32,
    kind: &Kind,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    match value {
        Value::String(s) => length_delimited(number, s.as_bytes(), out),
        Value::Bytes(b) => length_delimited(number, b, out),
        Value::Message(m) => {
            key(number, LEN, out);
            let start = out.len();
            message(m, out)?;
            prefix_length(out, start);
        }
        Value::Bool(_) | Value::EnumNumber(_) => {
            key(number, VARINT, out);
            scalar(&Kind::Bool, value, out)?;
        }
        Value::F32(_) => {
            key(number, FIXED32, out);
            scalar(&Kind::Float, value, out)?;
        }
        Value::F64(_) => {
            key(number, FIXED64, out);
            scalar(&Kind::Double, value, out)?;
        }
        // Integers: the kind decides between varint, zigzag and fixed encodings.
        _ => {
            key(number, wire_type(kind), out);
            scalar(kind, value, out)?;
        }
    }
    Ok(())
}

pub(crate) const VARINT: u8 = 0;
const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn wire_type(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => FIXED64,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => FIXED32,
        Kind::String | Kind::Bytes | Kind::Message(_) => LEN,
        _ => VARINT,
    }
}

/// The value of a scalar, without a key (also the element of a packed run).
pub(crate) fn scalar(kind: &Kind, value: &Value, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    match (kind, value) {
        (_, Value::Bool(b)) => varint(u64::from(*b), out),
        // Negative int32 and enum values are sign-extended to ten bytes, as protobuf requires.
        (_, Value::EnumNumber(i)) | (Kind::Int32, Value::I32(i)) => varint(*i as i64 as u64, out),
        (Kind::Sint32, Value::I32(i)) => varint(u64::from(((i << 1) ^ (i >> 31)) as u32), out),
        (Kind::Sfixed32, Value::I32(i)) => out.extend_from_slice(&i.to_le_bytes()),
        (Kind::Int64, Value::I64(i)) => varint(*i as u64, out),
        (Kind::Sint64, Value::I64(i)) => varint(((i << 1) ^ (i >> 63)) as u64, out),
        (Kind::Sfixed64, Value::I64(i)) => out.extend_from_slice(&i.to_le_bytes()),
        (Kind::Uint32, Value::U32(u)) => varint(u64::from(*u), out),
        (Kind::Fixed32, Value::U32(u)) => out.extend_from_slice(&u.to_le_bytes()),
        (Kind::Uint64, Value::U64(u)) => varint(*u, out),
        (Kind::Fixed64, Value::U64(u)) => out.extend_from_slice(&u.to_le_bytes()),
        (_, Value::F32(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (_, Value::F64(f)) => out.extend_from_slice(&f.to_le_bytes()),
        _ => return Err(Unsupported),
    }
    Ok(())
}

/// A field key: number and wire type.
pub(crate) fn key(number: u32, wire_type: u8, out: &mut Vec<u8>) {
    varint((u64::from(number) << 3) | u64::from(wire_type), out);
}

/// A length-delimited record (string, bytes).
pub(crate) fn length_delimited(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(number, LEN, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Inserts the varint length of `out[start..]` at `start`.
pub(crate) fn prefix_length(out: &mut Vec<u8>, start: usize) {
    let mut len = out.len() - start;
    if len < 0x80 {
        out.insert(start, len as u8);
        return;
    }
    let (mut prefix, mut n) = ([0u8; 10], 0);
    while len >= 0x80 {
        prefix[n] = (len as u8) | 0x80;
        len >>= 7;
        n += 1;
    }
    prefix[n] = len as u8;
    out.splice(start..start, prefix[..=n].iter().copied());
}

/// A base-128 varint.
pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
