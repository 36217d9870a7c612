//! Floating-point numbers as protobuf JSON prints them, matching Go's `protojson` (what
//! grpc-gateway answers with) byte for byte: the shortest digits that read back to the same
//! value; plain notation from 1e-6 up to 1e21 (`0`, `1`, `0.1`, `100000000000000000000`), exponent
//! notation outside it (`1e+21`, `1.5e-7`); `float` fields in `float` precision. `serde_json` alone
//! would print `0.0` and `1.0`, and `1e21` without the sign.

use std::fmt::{Display, LowerExp};
use std::io::{self, Write};

/// Writes a finite `f64`.
pub(crate) fn write_f64(out: &mut impl Write, value: f64) -> io::Result<()> {
    let abs = value.abs();
    let exponent = abs != 0.0 && !(1e-6..1e21).contains(&abs);
    write_digits(out, value, exponent)
}

/// Writes a finite `f32` with the digits of `float` precision (`1.1`, not `1.100000023841858`).
pub(crate) fn write_f32(out: &mut impl Write, value: f32) -> io::Result<()> {
    let abs = value.abs();
    let exponent = abs != 0.0 && !(1e-6..1e21).contains(&abs);
    write_digits(out, value, exponent)
}

fn write_digits<F: Display + LowerExp>(
    out: &mut impl Write,
    value: F,
    exponent: bool,
) -> io::Result<()> {
    if !exponent {
        // `Display` for floats is the shortest round-trip form, never in exponent notation.
        return write!(out, "{value}");
    }
    let text = format!("{value:e}");
    match text.split_once('e') {
        Some((digits, power)) if !power.starts_with('-') => write!(out, "{digits}e+{power}"),
        _ => out.write_all(text.as_bytes()),
    }
}

/// `serde_json` output with protobuf JSON's float format; everything else compact, as usual.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProtoJsonFormatter;

impl serde_json::ser::Formatter for ProtoJsonFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        write_f64(&mut WriterRef(writer), value)
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        write_f32(&mut WriterRef(writer), value)
    }
}

/// A sized handle on an unsized writer.
struct WriterRef<'w, W: ?Sized>(&'w mut W);

impl<W: ?Sized + Write> Write for WriterRef<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_text(value: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, value).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    fn f32_text(value: f32) -> String {
        let mut out = Vec::new();
        write_f32(&mut out, value).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn doubles_print_as_go_protojson_prints_them() {
        let cases: [(f64, &str); 14] = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e-6, "0.000001"),
            (9.9e-7, "9.9e-7"),
            (1.5e-7, "1.5e-7"),
            (1e-300, "1e-300"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-1.25e300, "-1.25e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
        ];
        for (value, text) in cases {
            assert_eq!(f64_text(value), text, "{value:e}");
        }
    }

    #[test]
    fn floats_keep_their_own_precision() {
        assert_eq!(f32_text(1.1), "1.1");
        assert_eq!(f32_text(0.0), "0");
        assert_eq!(f32_text(16777216.0), "16777216");
        assert_eq!(f32_text(f32::MAX), "3.4028235e+38");
        assert_eq!(f32_text(1e-7), "1e-7");
    }

    #[test]
    fn the_formatter_applies_to_whole_documents() {
        let value = serde_json::json!({"a": [0.0, 1.0, 1e21, "x", 7]});
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, ProtoJsonFormatter);
        serde::Serialize::serialize(&value, &mut serializer).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text, r#"{"a":[0,1,1e+21,"x",7]}"#);
    }
}
