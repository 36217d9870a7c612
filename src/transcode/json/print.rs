//! Prints JSON straight from protobuf wire bytes, walking the descriptor: the reply path's fast
//! path, which skips building (and dropping) a `DynamicMessage`.
//!
//! Its output must be byte-for-byte what [`super::encode::encode_message_json`] prints for the decoded
//! message, so it covers only the common shapes and *declines* everything else, letting the
//! caller take the `DynamicMessage` path:
//! - fields must arrive in non-decreasing field-number order (what every mainstream encoder
//!   writes), which lets one pass merge the wire stream with the descriptor's fields;
//! - a singular field that occurs twice, or two members of one oneof, would need last-one-wins
//!   or message merging: declined;
//! - `Any`, `Struct`, `Value`, `ListValue`, `FieldMask`, groups, extensions, and nesting deeper
//!   than [`MAX_DEPTH`]: declined;
//! - anything malformed: declined, so the slow path reports the same error text as before.
//!
//! Scalars and strings are written through `serde_json` and floats through [`super::number`], so
//! escaping and number formatting are the ones the `DynamicMessage` printer uses. Map keys come
//! out sorted, as that printer now re-emits them too; duplicates are resolved last-one-wins.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::encode::EncodeOptions;
use super::key_order::SortKey;
use super::time::{self, MAX_DURATION_SECONDS, MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS};
use super::wkt::{self, Wkt};
use crate::transcode::wire::{Malformed, WireReader, WireValue, zigzag32, zigzag64};

/// Nesting beyond this is left to prost-reflect (its own limit is 100).
const MAX_DEPTH: usize = 64;
/// Largest nanosecond part of a Duration.
const MAX_DURATION_NANOS: u32 = 999_999_999;

/// Prints the message of type `desc` encoded in `bytes`; `None` when the fast path declines.
pub(crate) fn print_wire_message(
    desc: &MessageDescriptor,
    bytes: &[u8],
    opts: &EncodeOptions,
) -> Option<Vec<u8>> {
    let mut printer = Printer {
        opts,
        out: Vec::with_capacity(64 + bytes.len() * 2),
        depth: 0,
    };
    printer.message(desc, bytes).ok()?;
    Some(printer.out)
}

struct Printer<'o> {
    opts: &'o EncodeOptions,
    out: Vec<u8>,
    depth: usize,
}

impl Printer<'_> {
    fn message(&mut self, desc: &MessageDescriptor, bytes: &[u8]) -> Result<(), Malformed> {
        match wkt::classify(desc) {
            None => self.fields(desc, bytes),
            Some(Wkt::Timestamp) => self.timestamp(bytes),
            Some(Wkt::Duration) => self.duration(bytes),
            Some(Wkt::Wrapper) => self.wrapper(desc, bytes),
            Some(_) => Err(Malformed),
        }
    }

    /// An ordinary message: one pass over the wire fields merged with the descriptor's fields,
    /// both in field-number order.
    fn fields(&mut self, desc: &MessageDescriptor, bytes: &[u8]) -> Result<(), Malformed> {
        if self.depth >= MAX_DEPTH || desc.extensions().len() != 0 {
            return Err(Malformed);
        }
        self.depth += 1;
        let mut reader = WireReader::new(bytes);
        let mut next = reader.field()?;
        let mut oneof_members = 0u128;
        self.out.push(b'{');
        for field in desc.fields() {
            let number = field.number();
            // Unknown fields are validated by the reader and otherwise skipped.
            while let Some((n, _)) = next
                && n < number
            {
                next = advance(&mut reader, n)?;
            }
            let start = self.out.len();
            self.key(&field);
            let keep = match next {
                Some((n, value)) if n == number => {
                    claim_oneof(&field, &mut oneof_members)?;
                    self.present_field(&field, value, &mut reader, &mut next)?
                }
                _ if self.opts.emit_defaults && !field.supports_presence() => {
                    self.absent_field(&field)?;
                    true
                }
                _ => false,
            };
            if !keep {
                self.out.truncate(start);
            }
        }
        while let Some((n, _)) = next {
            next = advance(&mut reader, n)?;
        }
        self.out.push(b'}');
        self.depth -= 1;
        Ok(())
    }

    /// Writes `,"name":` (no comma right after the opening brace).
    fn key(&mut self, field: &FieldDescriptor) {
        self.separator();
        self.string(self.opts.key(field));
        self.out.push(b':');
    }

    /// Prints every occurrence of `field` (starting with `first`); false when the value is a
    /// default that must be left out.
    fn present_field<'a>(
        &mut self,
        field: &FieldDescriptor,
        first: WireValue<'a>,
        reader: &mut WireReader<'a>,
        next: &mut Option<(u32, WireValue<'a>)>,
    ) -> Result<bool, Malformed> {
        let number = field.number();
        let kind = field.kind();
        if field.is_map() {
            let Kind::Message(entry_desc) = &kind else {
                return Err(Malformed);
            };
            let mut entries = Vec::new();
            for_each_occurrence(number, first, reader, next, |value| {
                let WireValue::Len(entry) = value else {
                    return Err(Malformed);
                };
                entries.push(entry);
                Ok(())
            })?;
            self.map(entry_desc, &entries)?;
            return Ok(true);
        }
        if field.is_list() {
            self.out.push(b'[');
            for_each_occurrence(number, first, reader, next, |value| {
                self.list_chunk(&kind, value)
            })?;
            let empty = self.out.last() == Some(&b'[');
            self.out.push(b']');
            return Ok(!empty || self.opts.emit_defaults);
        }
        *next = advance(reader, number)?;
        if next.is_some_and(|(n, _)| n == number) {
            // Last-one-wins (or merging, for messages): left to prost-reflect.
            return Err(Malformed);
        }
        let is_default = self.value(&kind, first, false)?;
        Ok(!is_default || self.opts.emit_defaults || field.supports_presence())
    }

    /// Prints the default of a field without presence that is absent from the wire.
    fn absent_field(&mut self, field: &FieldDescriptor) -> Result<(), Malformed> {
        if field.is_map() {
            self.out.extend_from_slice(b"{}");
        } else if field.is_list() {
            self.out.extend_from_slice(b"[]");
        } else {
            self.value(&field.kind(), default_wire(&field.kind()), false)?;
        }
        Ok(())
    }

    /// One occurrence of a repeated field: a single element or a packed run.
    fn list_chunk(&mut self, kind: &Kind, value: WireValue<'_>) -> Result<(), Malformed> {
        let packed = match (value, kind) {
            (_, Kind::String | Kind::Bytes | Kind::Message(_)) => None,
            (WireValue::Len(run), _) => Some(run),
            _ => None,
        };
        let Some(run) = packed else {
            self.separator();
            self.value(kind, value, false)?;
            return Ok(());
        };
        let mut reader = WireReader::new(run);
        while !reader.is_empty() {
            let element = match wire_type(kind) {
                0 => WireValue::Varint(reader.varint()?),
                1 => WireValue::Fixed64(reader.fixed64()?),
                _ => WireValue::Fixed32(reader.fixed32()?),
            };
            self.separator();
            self.value(kind, element, false)?;
        }
        Ok(())
    }

    /// Writes the comma between members or elements: none right after an opening bracket (no
    /// value ends in one, so the last byte tells).
    fn separator(&mut self) {
        if self.out.last().is_some_and(|b| !b"{[".contains(b)) {
            self.out.push(b',');
        }
    }

    /// A map field from its entries: keys sorted, the last of duplicate keys wins.
    fn map(&mut self, entry_desc: &MessageDescriptor, entries: &[&[u8]]) -> Result<(), Malformed> {
        let key_kind = entry_desc.map_entry_key_field().kind();
        let value_kind = entry_desc.map_entry_value_field().kind();
        let value_is_message = matches!(value_kind, Kind::Message(_));
        let mut decoded = Vec::with_capacity(entries.len());
        for entry in entries {
            let (mut key, mut value) = (None, None);
            let mut reader = WireReader::new(entry);
            while let Some((n, v)) = reader.field()? {
                match n {
                    1 => key = Some(v),
                    // A repeated message value would merge: left to prost-reflect.
                    2 if value.is_some() && value_is_message => return Err(Malformed),
                    2 => value = Some(v),
                    _ => {}
                }
            }
            let key = SortKey::of_wire(&key_kind, key.unwrap_or_else(|| default_wire(&key_kind)))?;
            decoded.push((key, value));
        }
        // Stable: among equal keys the wire order survives, so the last is the one kept.
        decoded.sort_by_key(|(key, _)| *key);
        self.out.push(b'{');
        let mut first = true;
        for (i, (key, value)) in decoded.iter().enumerate() {
            if decoded.get(i + 1).is_some_and(|(later, _)| later == key) {
                continue;
            }
            if !std::mem::take(&mut first) {
                self.out.push(b',');
            }
            self.map_key(*key);
            self.out.push(b':');
            let value = value.unwrap_or_else(|| default_wire(&value_kind));
            self.value(&value_kind, value, false)?;
        }
        self.out.push(b'}');
        Ok(())
    }

    fn map_key(&mut self, key: SortKey<'_>) {
        match key {
            SortKey::Str(s) => self.string(s),
            SortKey::Bool(b) => {
                self.out
                    .extend_from_slice(if b { b"\"true\"" } else { b"\"false\"" })
            }
            SortKey::Int(i) => self.quoted(i),
            SortKey::Uint(u) => self.quoted(u),
        }
    }

    /// Prints one value of `kind`; true when it is the kind's default (zero, empty).
    ///
    /// `wrapper` marks the payload of a `google.protobuf.*Value` wrapper, which the old printer
    /// wrote without the `"NaN"`/`"Infinity"` spelling; those rare values are declined.
    fn value(
        &mut self,
        kind: &Kind,
        value: WireValue<'_>,
        wrapper: bool,
    ) -> Result<bool, Malformed> {
        Ok(match (kind, value) {
            (Kind::Double, WireValue::Fixed64(bits)) => {
                self.float(f64::from_bits(bits), wrapper)?
            }
            (Kind::Float, WireValue::Fixed32(bits)) => {
                self.float32(f32::from_bits(bits), wrapper)?
            }
            // Truncation is the protobuf rule for int32 and enums.
            (Kind::Enum(e), WireValue::Varint(v)) => self.enum_value(e, v as i32),
            (Kind::Int32, WireValue::Varint(v)) => self.small(v as i32),
            (Kind::Sint32, WireValue::Varint(v)) => self.small(zigzag32(v as u32)),
            (Kind::Uint32, WireValue::Varint(v)) => self.small(v as u32),
            (Kind::Fixed32, WireValue::Fixed32(v)) => self.small(v),
            (Kind::Sfixed32, WireValue::Fixed32(v)) => self.small(v as i32),
            (Kind::Int64, WireValue::Varint(v)) | (Kind::Sfixed64, WireValue::Fixed64(v)) => {
                self.wide(v as i64)
            }
            (Kind::Sint64, WireValue::Varint(v)) => self.wide(zigzag64(v)),
            (Kind::Uint64, WireValue::Varint(v)) | (Kind::Fixed64, WireValue::Fixed64(v)) => {
                self.wide(v)
            }
            (Kind::Bool, WireValue::Varint(v)) => {
                self.out
                    .extend_from_slice(if v != 0 { b"true" } else { b"false" });
                v == 0
            }
            (Kind::String, WireValue::Len(bytes)) => {
                let text = std::str::from_utf8(bytes).map_err(|_| Malformed)?;
                self.string(text);
                text.is_empty()
            }
            (Kind::Bytes, WireValue::Len(bytes)) => self.bytes(bytes),
            (Kind::Message(desc), WireValue::Len(bytes)) => {
                self.message(desc, bytes)?;
                false
            }
            _ => return Err(Malformed),
        })
    }

    /// A `float`: finite values keep their `f32` digits; the rest print as doubles do.
    fn float32(&mut self, f: f32, wrapper: bool) -> Result<bool, Malformed> {
        if !f.is_finite() {
            return self.float(f64::from(f), wrapper);
        }
        // Writing into a Vec cannot fail.
        let _ = super::number::write_f32(&mut self.out, f);
        Ok(f == 0.0)
    }

    /// Bytes as standard, padded base64; true when empty.
    fn bytes(&mut self, bytes: &[u8]) -> bool {
        self.out.push(b'"');
        let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
        BASE64_STANDARD.encode_string(bytes, &mut encoded);
        self.out.extend_from_slice(encoded.as_bytes());
        self.out.push(b'"');
        bytes.is_empty()
    }

    fn float(&mut self, f: f64, wrapper: bool) -> Result<bool, Malformed> {
        let text: &[u8] = if f.is_finite() {
            // Writing into a Vec cannot fail.
            let _ = super::number::write_f64(&mut self.out, f);
            return Ok(f == 0.0);
        } else if wrapper {
            return Err(Malformed);
        } else if f.is_nan() {
            b"\"NaN\""
        } else if f > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        };
        self.out.extend_from_slice(text);
        Ok(false)
    }

    /// An enum by name (or number, when asked or unknown); true for number 0.
    fn enum_value(&mut self, desc: &prost_reflect::EnumDescriptor, number: i32) -> bool {
        if desc.full_name() == "google.protobuf.NullValue" {
            self.out.extend_from_slice(b"null");
        } else if self.opts.enums_as_ints {
            self.number(number);
        } else if let Some(value) = desc.get_value(number) {
            self.string(value.name());
        } else {
            self.number(number);
        }
        number == 0
    }

    /// A 32-bit integer; true when zero.
    fn small<T: serde::Serialize + Default + PartialEq>(&mut self, v: T) -> bool {
        let zero = v == T::default();
        self.number(v);
        zero
    }

    /// A 64-bit integer, always as a string: JavaScript clients lose precision otherwise.
    fn wide<T: serde::Serialize + Default + PartialEq>(&mut self, v: T) -> bool {
        let zero = v == T::default();
        self.quoted(v);
        zero
    }

    fn quoted<T: serde::Serialize>(&mut self, v: T) {
        self.out.push(b'"');
        self.number(v);
        self.out.push(b'"');
    }

    /// Writes a number (or any serde scalar) exactly as `serde_json` formats it.
    fn number<T: serde::Serialize>(&mut self, v: T) {
        // Writing a scalar into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, &v);
    }

    /// Writes a JSON string; plain text is copied, anything needing escapes goes via serde_json.
    fn string(&mut self, s: &str) {
        if !needs_escape(s.as_bytes()) {
            self.out.push(b'"');
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(b'"');
        } else {
            let _ = serde_json::to_writer(&mut self.out, s);
        }
    }

    fn timestamp(&mut self, bytes: &[u8]) -> Result<(), Malformed> {
        let (seconds, nanos) = seconds_and_nanos(bytes)?;
        if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) {
            return Err(Malformed);
        }
        self.out.push(b'"');
        if !time::write_timestamp(seconds, nanos, &mut self.out) {
            // Unnormalized nanos: rare enough for prost-types' general formatter.
            let _ = self.out.pop();
            self.display(&prost_types::Timestamp { seconds, nanos });
            return Ok(());
        }
        self.out.push(b'"');
        Ok(())
    }

    fn duration(&mut self, bytes: &[u8]) -> Result<(), Malformed> {
        let (seconds, nanos) = seconds_and_nanos(bytes)?;
        if seconds.unsigned_abs() > MAX_DURATION_SECONDS.unsigned_abs()
            || nanos.unsigned_abs() > MAX_DURATION_NANOS
        {
            return Err(Malformed);
        }
        self.display(&prost_types::Duration { seconds, nanos });
        Ok(())
    }

    /// Writes a `Display` value as a JSON string; the WKT forms need no escaping.
    fn display(&mut self, value: &dyn std::fmt::Display) {
        use std::io::Write as _;
        self.out.push(b'"');
        let _ = write!(self.out, "{value}");
        self.out.push(b'"');
    }

    /// A `google.protobuf.*Value` wrapper prints as its bare `value` field.
    fn wrapper(&mut self, desc: &MessageDescriptor, bytes: &[u8]) -> Result<(), Malformed> {
        let kind = desc.get_field(1).ok_or(Malformed)?.kind();
        let mut value = None;
        let mut reader = WireReader::new(bytes);
        while let Some((n, v)) = reader.field()? {
            if n == 1 {
                value = Some(v);
            }
        }
        let value = value.unwrap_or_else(|| default_wire(&kind));
        self.value(&kind, value, true)?;
        Ok(())
    }
}

/// Hands `first` and every directly following occurrence of field `number` to `each`, leaving
/// `next` at the first other field.
fn for_each_occurrence<'a>(
    number: u32,
    first: WireValue<'a>,
    reader: &mut WireReader<'a>,
    next: &mut Option<(u32, WireValue<'a>)>,
    mut each: impl FnMut(WireValue<'a>) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    let mut value = first;
    loop {
        each(value)?;
        *next = advance(reader, number)?;
        match *next {
            Some((n, v)) if n == number => value = v,
            _ => return Ok(()),
        }
    }
}

/// Records that `field` is present; declines a second member of one oneof (last-one-wins is left
/// to prost-reflect).
fn claim_oneof(field: &FieldDescriptor, members: &mut u128) -> Result<(), Malformed> {
    let Some(oneof) = field.containing_oneof() else {
        return Ok(());
    };
    // Members are visited in number order, so an earlier member that was present is already
    // recorded; numbers past 127 are simply declined.
    let bit = 1u128.checked_shl(field.number()).ok_or(Malformed)?;
    let bits = |f: FieldDescriptor| 1u128.checked_shl(f.number());
    if oneof
        .fields()
        .any(|f| bits(f).is_none_or(|b| *members & b != 0))
    {
        return Err(Malformed);
    }
    *members |= bit;
    Ok(())
}

/// Reads the next field, declining when field numbers go backwards.
fn advance<'a>(
    reader: &mut WireReader<'a>,
    previous: u32,
) -> Result<Option<(u32, WireValue<'a>)>, Malformed> {
    let next = reader.field()?;
    match next {
        Some((n, _)) if n < previous => Err(Malformed),
        _ => Ok(next),
    }
}

/// The wire type of a scalar kind: 0 varint, 1 fixed64, 5 fixed32, 2 length-delimited.
fn wire_type(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
        Kind::String | Kind::Bytes | Kind::Message(_) => 2,
        _ => 0,
    }
}

/// The wire form of a kind's default value (an empty message for message kinds).
fn default_wire(kind: &Kind) -> WireValue<'static> {
    match wire_type(kind) {
        0 => WireValue::Varint(0),
        1 => WireValue::Fixed64(0),
        5 => WireValue::Fixed32(0),
        _ => WireValue::Len(&[]),
    }
}

/// Fields 1 (int64 seconds) and 2 (int32 nanos) of a Timestamp or Duration, last one winning.
fn seconds_and_nanos(bytes: &[u8]) -> Result<(i64, i32), Malformed> {
    let (mut seconds, mut nanos) = (0, 0);
    let mut reader = WireReader::new(bytes);
    while let Some((n, v)) = reader.field()? {
        match (n, v) {
            (1, WireValue::Varint(s)) => seconds = s as i64,
            (2, WireValue::Varint(ns)) => nanos = ns as i32,
            (1 | 2, _) => return Err(Malformed),
            _ => {}
        }
    }
    Ok((seconds, nanos))
}

/// True when `bytes` hold a character a JSON string must escape (a control character, a quote or
/// a backslash). Checked 32 bytes at a time without an early exit inside a block, which the compiler
/// turns into vector compares: long plain strings (a 1 KiB name in every streamed message) cost
/// a fraction of a byte-by-byte scan.
fn needs_escape(bytes: &[u8]) -> bool {
    let escaped = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        if block.iter().fold(false, |found, &b| found | escaped(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| escaped(b))
}

#[cfg(test)]
#[path = "print_tests.rs"]
mod tests;
