//! Percent-decoding of bound path values (RFC 3986 section 2.1), with a caller-chosen set of
//! bytes that stay encoded.

/// Decodes every `%XX` in `raw`, except those whose byte `keep` accepts (copied as written).
///
/// Errors (as a human-readable reason) on a malformed escape or a result that is not UTF-8.
pub(super) fn decode(raw: &str, keep: impl Fn(u8) -> bool) -> Result<String, String> {
    // Most values carry no escapes; skip the byte loop for them.
    if !raw.contains('%') {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte != b'%' {
            out.push(byte);
            at += 1;
            continue;
        }
        let escaped = bytes.get(at + 1..at + 3);
        let Some(decoded) = escaped.and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?)) else {
            let shown: String = raw[at..].chars().take(3).collect();
            return Err(format!("malformed percent-escape {shown:?} in {raw:?}"));
        };
        if keep(decoded) {
            out.extend_from_slice(&bytes[at..at + 3]);
        } else {
            out.push(decoded);
        }
        at += 3;
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} does not percent-decode to UTF-8"))
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_escapes_and_keeps_the_chosen_bytes_as_written() {
        let keep_slash = |b: u8| b == b'/';
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("plain", false, Ok("plain")),
            ("a%2Fb", false, Ok("a/b")),
            ("a%2Fb", true, Ok("a%2Fb")),
            ("a%2fb%41", true, Ok("a%2fbA")),
            ("caf%C3%A9", false, Ok("café")),
            ("%zz", false, Err("malformed percent-escape \"%zz\"")),
            ("x%4", false, Err("malformed percent-escape \"%4\"")),
            ("%", false, Err("malformed percent-escape \"%\"")),
            ("%é", false, Err("malformed percent-escape \"%é\"")),
            ("%FF", false, Err("does not percent-decode to UTF-8")),
        ];
        for &(raw, slash_kept, expected) in cases {
            let got = if slash_kept {
                decode(raw, keep_slash)
            } else {
                decode(raw, |_| false)
            };
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{raw}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{raw}: {got}"),
                (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
            }
        }
    }
}
