//! The order map entries print in, shared by both JSON printers: keys sorted by value (integer
//! keys numerically, bools false first, strings by bytes), as Go's protojson prints them.

use prost_reflect::Kind;

use crate::transcode::wire::{Malformed, WireValue, zigzag32, zigzag64};

/// A decoded map key, ordered the way keys are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortKey<'a> {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Str(&'a str),
}

impl<'a> SortKey<'a> {
    /// The order of a map key already printed as JSON object key `text`.
    pub(crate) fn of_printed(kind: &Kind, text: &'a str) -> SortKey<'a> {
        let parsed = match kind {
            Kind::Bool => Some(SortKey::Bool(text == "true")),
            Kind::Int32
            | Kind::Int64
            | Kind::Sint32
            | Kind::Sint64
            | Kind::Sfixed32
            | Kind::Sfixed64 => text.parse().ok().map(SortKey::Int),
            Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => {
                text.parse().ok().map(SortKey::Uint)
            }
            _ => None,
        };
        parsed.unwrap_or(SortKey::Str(text))
    }

    /// Decodes a map key of `kind` from the wire, for sorting and printing.
    pub(crate) fn of_wire(kind: &Kind, value: WireValue<'a>) -> Result<SortKey<'a>, Malformed> {
        Ok(match (kind, value) {
            (Kind::String, WireValue::Len(bytes)) => {
                SortKey::Str(std::str::from_utf8(bytes).map_err(|_| Malformed)?)
            }
            (Kind::Bool, WireValue::Varint(v)) => SortKey::Bool(v != 0),
            (Kind::Int32, WireValue::Varint(v)) => SortKey::Int(i64::from(v as i32)),
            (Kind::Sint32, WireValue::Varint(v)) => SortKey::Int(i64::from(zigzag32(v as u32))),
            (Kind::Sfixed32, WireValue::Fixed32(v)) => SortKey::Int(i64::from(v as i32)),
            (Kind::Int64, WireValue::Varint(v)) | (Kind::Sfixed64, WireValue::Fixed64(v)) => {
                SortKey::Int(v as i64)
            }
            (Kind::Sint64, WireValue::Varint(v)) => SortKey::Int(zigzag64(v)),
            (Kind::Uint32, WireValue::Varint(v)) => SortKey::Uint(u64::from(v as u32)),
            (Kind::Fixed32, WireValue::Fixed32(v)) => SortKey::Uint(u64::from(v)),
            (Kind::Uint64, WireValue::Varint(v)) | (Kind::Fixed64, WireValue::Fixed64(v)) => {
                SortKey::Uint(v)
            }
            _ => return Err(Malformed),
        })
    }
}
