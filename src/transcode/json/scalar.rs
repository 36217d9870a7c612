//! Scalars and enums from JSON numbers and from text, shared by the JSON decoder and by query
//! and path bindings.
//!
//! Every integer goes through `i128`, which holds the whole of `i64` and `u64`, so one range
//! check per width rejects what prost-reflect would clamp.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prost_reflect::{DynamicMessage, EnumDescriptor, Kind, MessageDescriptor, Syntax, Value};

use super::time::{parse_duration, parse_timestamp};
use super::wkt::{self, Wkt, parse_field_mask, set, wrap};

/// Float literals for integer fields must stay below this magnitude (2^53): from there on
/// 2^53 an `f64` no longer represents every integer, so `9007199254740993.0` would silently
/// become `...992`.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

const PADDING_INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_INDIFFERENT);
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_INDIFFERENT);

/// Where a piece of text comes from; the two differ only in what strings may stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextMode {
    /// A JSON string: bools must be JSON literals, enums must be names.
    Json,
    /// A query or path binding: everything is text, so `true`, enum numbers are accepted.
    Binding,
}

/// A JSON number as serde_json reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Number {
    /// A non-negative integer literal that fits `u64`.
    U(u64),
    /// A negative integer literal that fits `i64`.
    I(i64),
    /// Anything else: a fraction, an exponent, or an integer too big for 64 bits.
    F(f64),
}

/// Short name of a kind for messages such as "expected int32, found string".
pub(crate) fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "base64 bytes".into(),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        Kind::Message(m) => m.full_name().to_owned(),
    }
}

/// Converts a JSON number into a value of a scalar or enum kind, with exact range checks.
pub(crate) fn value_from_number(kind: &Kind, number: Number) -> Result<Value, String> {
    match kind {
        Kind::Double => Ok(Value::F64(number.as_f64())),
        Kind::Float => f32_from_f64(number.as_f64()).map(Value::F32),
        Kind::Enum(e) => enum_from_number(e, integer_from_number(number)?),
        _ if is_integer(kind) => int_value(kind, integer_from_number(number)?),
        _ => Err(format!("expected {}, found number", kind_name(kind))),
    }
}

/// Parses one scalar, enum or string-form well-known type from text.
pub(crate) fn value_from_text(kind: &Kind, text: &str, mode: TextMode) -> Result<Value, String> {
    match kind {
        Kind::String => Ok(Value::String(text.to_owned())),
        Kind::Bytes => decode_base64(text).map(|b| Value::Bytes(b.into())),
        Kind::Double => f64_from_text(text).map(Value::F64),
        Kind::Float => f64_from_text(text).and_then(f32_from_f64).map(Value::F32),
        Kind::Bool => match (mode, text) {
            (TextMode::Binding, "true") => Ok(Value::Bool(true)),
            (TextMode::Binding, "false") => Ok(Value::Bool(false)),
            (TextMode::Binding, _) => Err(format!("`{text}` is not a bool (use true or false)")),
            (TextMode::Json, _) => Err("expected bool, found string".into()),
        },
        Kind::Enum(e) => enum_from_text(e, text, mode),
        Kind::Message(m) => message_from_text(m, text, mode),
        _ => int_value(kind, integer_from_text(text)?),
    }
}

/// Parses a message-typed value from its string form (Timestamp, Duration, FieldMask, wrappers).
fn message_from_text(
    desc: &MessageDescriptor,
    text: &str,
    mode: TextMode,
) -> Result<Value, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    match wkt::classify(desc) {
        Some(Wkt::Timestamp) => set_seconds_and_nanos(&mut msg, parse_timestamp(text)?)?,
        Some(Wkt::Duration) => set_seconds_and_nanos(&mut msg, parse_duration(text)?)?,
        Some(Wkt::FieldMask) => {
            let paths = parse_field_mask(text)?;
            set(
                &mut msg,
                1,
                Value::List(paths.into_iter().map(Value::String).collect()),
            )?;
        }
        Some(Wkt::Wrapper) => return wrap(desc, |kind| value_from_text(kind, text, mode)),
        Some(Wkt::Value) if mode == TextMode::Json => {
            set(&mut msg, 3, Value::String(text.to_owned()))?;
        }
        _ => return Err(format!("expected {}, found string", desc.full_name())),
    }
    Ok(Value::Message(msg))
}

/// Sets Timestamp/Duration fields; zeros are left unset, which encodes and prints the same and
/// saves two descriptor look-ups per value on the hot path.
fn set_seconds_and_nanos(
    msg: &mut DynamicMessage,
    (seconds, nanos): (i64, i32),
) -> Result<(), String> {
    if seconds != 0 {
        set(msg, 1, Value::I64(seconds))?;
    }
    if nanos != 0 {
        set(msg, 2, Value::I32(nanos))?;
    }
    Ok(())
}

fn is_integer(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Int32
            | Kind::Sint32
            | Kind::Sfixed32
            | Kind::Int64
            | Kind::Sint64
            | Kind::Sfixed64
            | Kind::Uint32
            | Kind::Fixed32
            | Kind::Uint64
            | Kind::Fixed64
    )
}

impl Number {
    /// The number as a double; integers beyond 2^53 round as any JSON parser would for a double.
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::U(u) => u as f64,
            Number::I(i) => i as f64,
            Number::F(f) => f,
        }
    }
}

fn integer_from_number(number: Number) -> Result<i128, String> {
    match number {
        Number::U(u) => Ok(i128::from(u)),
        Number::I(i) => Ok(i128::from(i)),
        Number::F(f) => integer_from_f64(f),
    }
}

/// Accepts a float only when it is an integer a double holds exactly.
fn integer_from_f64(f: f64) -> Result<i128, String> {
    if f.fract() != 0.0 || !f.is_finite() {
        return Err(format!("{f} is not an integer"));
    }
    if f.abs() >= MAX_EXACT_FLOAT_INT {
        return Err(format!(
            "{f:e} is too large to be exact in exponent or fraction form; write the integer digits"
        ));
    }
    // Exact: the magnitude is below 2^53 and there is no fraction.
    Ok(f as i128)
}

/// Parses `"5"`, `"-5"`, and exactly-integral float text such as `"1e2"`.
fn integer_from_text(text: &str) -> Result<i128, String> {
    if let Ok(i) = text.parse::<i128>() {
        return Ok(i);
    }
    if is_decimal_text(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return integer_from_f64(f);
    }
    Err(format!("`{text}` is not an integer"))
}

/// True for text made only of digits, signs, dots and exponents: Rust's float parser also takes
/// `inf` and `NaN`, which must not sneak in as numbers.
fn is_decimal_text(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn int_value(kind: &Kind, i: i128) -> Result<Value, String> {
    let out_of_range = || format!("{i} is out of range for {}", kind_name(kind));
    match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            i32::try_from(i).map(Value::I32).map_err(|_| out_of_range())
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            i64::try_from(i).map(Value::I64).map_err(|_| out_of_range())
        }
        Kind::Uint32 | Kind::Fixed32 => {
            u32::try_from(i).map(Value::U32).map_err(|_| out_of_range())
        }
        Kind::Uint64 | Kind::Fixed64 => {
            u64::try_from(i).map(Value::U64).map_err(|_| out_of_range())
        }
        _ => Err(format!("expected {}, found number", kind_name(kind))),
    }
}

fn f64_from_text(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ if is_decimal_text(text) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(f),
            Ok(_) => Err(format!("`{text}` is out of range for double")),
            Err(_) => Err(format!("`{text}` is not a number")),
        },
        _ => Err(format!("`{text}` is not a number")),
    }
}

fn f32_from_f64(f: f64) -> Result<f32, String> {
    // Narrowing rounds to the nearest `float` (the documented proto3 behaviour): `3.4028235e38`,
    // which is how `float`'s largest value prints, rounds to it and is accepted; only values
    // that would round to infinity are out of range.
    let narrowed = f as f32;
    if f.is_finite() && !narrowed.is_finite() {
        return Err(format!("{f:e} is out of range for float"));
    }
    Ok(narrowed)
}

/// Enums up to this size are searched by name one value at a time: cheaper than hashing the
/// name with SipHash for the map look-up.
const LINEAR_ENUM_LOOKUP: usize = 16;

fn enum_from_text(e: &EnumDescriptor, text: &str, mode: TextMode) -> Result<Value, String> {
    let values = e.values();
    let found = if values.len() <= LINEAR_ENUM_LOOKUP {
        values
            .map(|v| (v.name() == text).then(|| v.number()))
            .find_map(|n| n)
    } else {
        e.get_value_by_name(text).map(|v| v.number())
    };
    if let Some(number) = found {
        return Ok(Value::EnumNumber(number));
    }
    if mode == TextMode::Binding
        && let Ok(i) = text.parse::<i128>()
    {
        return enum_from_number(e, i);
    }
    Err(format!("`{text}` is not a value of enum {}", e.full_name()))
}

fn enum_from_number(e: &EnumDescriptor, i: i128) -> Result<Value, String> {
    let n =
        i32::try_from(i).map_err(|_| format!("{i} is out of range for enum {}", e.full_name()))?;
    // proto3 enums are open: unknown numbers must survive so newer servers can read them.
    if e.get_value(n).is_some() || e.parent_file().syntax() == Syntax::Proto3 {
        Ok(Value::EnumNumber(n))
    } else {
        Err(format!(
            "{n} is not a value of closed enum {}",
            e.full_name()
        ))
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let engine = if text.contains(['-', '_']) {
        &BASE64_URL
    } else {
        &BASE64_STD
    };
    engine
        .decode(text)
        .map_err(|err| format!("invalid base64: {err}"))
}
