//! `Accept-Encoding` (RFC 9110 §12.5.3): whether a client takes gzip.

use http::{HeaderMap, header};

/// True when the client's `Accept-Encoding` gives gzip (or `x-gzip`, or `*` when gzip is not
/// named) a non-zero q-value. No header: no compression (the client may not decode it).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut params = item.split(';');
            let coding = params
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let q = params
                .find_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| q_value(value.trim()))
                })
                .unwrap_or(1000);
            match coding.as_str() {
                "gzip" | "x-gzip" => named = Some(named.unwrap_or(0).max(q)),
                "*" => any = Some(q),
                _ => {}
            }
        }
    }
    named.or(any).is_some_and(|q| q > 0)
}

/// A q-value in thousandths; malformed ones count as 0 (not acceptable).
fn q_value(text: &str) -> u32 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let thousandths: u32 = format!("{fraction:0<3}").parse().unwrap_or(0);
    match whole {
        "1" if thousandths == 0 => 1000,
        "0" => thousandths,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().expect("value"));
        accepts_gzip(&headers)
    }

    #[test]
    fn q_values_decide() {
        assert!(accepts("gzip"));
        assert!(accepts("br, gzip;q=0.5"));
        assert!(accepts("GZIP"));
        assert!(accepts("x-gzip"));
        assert!(accepts("*"));
        assert!(accepts("deflate, *;q=0.1"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip;q=0.000"));
        assert!(!accepts("*;q=1, gzip;q=0"));
        assert!(!accepts("identity"));
        assert!(!accepts("br"));
        assert!(!accepts("gzip;q=2"));
        assert!(!accepts("gzip;q=abc"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
