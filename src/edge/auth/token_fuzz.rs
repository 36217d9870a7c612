//! Fuzz target for reading a JWT before its signature is checked (see `crate::fuzz`): a token
//! from untrusted bytes must be refused with a reason or read consistently, never panic.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::{claim_matches, inspect, scopes};

/// The first byte picks the form: odd, the rest is the token text; even, the rest is
/// `header JSON \0 payload JSON \0 signature`, each part base64url-encoded into a token, so
/// mutations reach the JSON inside.
#[test]
fn fuzz_jwt_header_and_claims() {
    let dictionary: &[&[u8]] = &[
        b".",
        b"\0",
        b"\"alg\":",
        b"\"RS256\"",
        b"\"none\"",
        b"\"HS256\"",
        b"\"kid\":",
        b"\"crit\":[\"b64\"]",
        b"\"iss\":",
        b"\"exp\":",
        b"\"nbf\":",
        b"\"aud\":[",
        b"\"scope\":",
        b"\"scp\":[",
        b"1e300",
        b"-1",
        b"18446744073709551616",
        b"\"\\u0000\"",
        b"=",
        b"+",
        b"/",
    ];
    crate::fuzz::run("jwt_inspect", dictionary, |input| {
        let Some((&form, rest)) = input.split_first() else {
            return;
        };
        let token = if form % 2 == 1 {
            String::from_utf8_lossy(rest).into_owned()
        } else {
            let mut parts = rest
                .splitn(3, |b| *b == 0)
                .map(|p| URL_SAFE_NO_PAD.encode(p));
            let mut next = || parts.next().unwrap_or_default();
            format!("{}.{}.{}", next(), next(), next())
        };
        check_token(&token);
    });
}

fn check_token(token: &str) {
    let Ok(unverified) = inspect(token) else {
        return;
    };
    let payload = token
        .split('.')
        .nth(1)
        .expect("an accepted token has a payload");
    assert_eq!(unverified.payload, payload);
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("an accepted payload is base64url");
    let claims: Map<String, Value> =
        serde_json::from_slice(&bytes).expect("an accepted payload is an object");
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(unverified.issuer.as_str())
    );
    let _ = scopes(&claims);
    assert!(claim_matches(&claims, "iss", &unverified.issuer));
}
