//! Reading a compact JWS before its signature is checked: the shape, the header, and the types
//! of the registered claims. Nothing read here is trusted; it only selects the provider and key
//! and refuses malformed tokens early with a precise reason.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

/// The unverified parts of a token that verification needs.
#[derive(Debug)]
pub(crate) struct Unverified<'t> {
    /// The header's `alg`, already known to be a signature algorithm (never `none`).
    pub(crate) alg: Algorithm,
    /// The header's `kid`.
    pub(crate) kid: Option<String>,
    /// The `iss` claim.
    pub(crate) issuer: String,
    /// The payload segment (base64url JSON), forwarded as is once verified.
    pub(crate) payload: &'t str,
}

fn segment(text: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("malformed base64url in the {what}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("the {what} is not a JSON object")),
    }
}

/// Splits and checks a token; `Err` is the reason it is invalid.
pub(crate) fn inspect(token: &str) -> Result<Unverified<'_>, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS (three dot-separated parts)".to_owned());
    };
    let head = segment(header, "header")?;
    let claims = segment(payload, "payload")?;
    if URL_SAFE_NO_PAD.decode(signature).is_err() {
        return Err("malformed base64url in the signature".to_owned());
    }
    let alg = match head.get("alg") {
        Some(Value::String(name)) => name
            .parse::<Algorithm>()
            .map_err(|_| format!("unsupported algorithm `{name}`"))?,
        _ => return Err("the header has no `alg`".to_owned()),
    };
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; the gateway knows none.
    if head.contains_key("crit") {
        return Err("unsupported critical header parameters (`crit`)".to_owned());
    }
    let kid = match head.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("`kid` is not a string".to_owned()),
    };
    check_claim_types(&claims)?;
    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) => iss.clone(),
        _ => return Err("the token has no issuer (`iss`)".to_owned()),
    };
    Ok(Unverified {
        alg,
        kid,
        issuer,
        payload,
    })
}

/// Registered claims must have their RFC 7519 types, and `scope`/`scp` theirs (RFC 8693 §4.2).
fn check_claim_types(claims: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in claims {
        let ok = match name.as_str() {
            "iss" | "sub" | "jti" | "scope" => value.is_string(),
            "exp" | "nbf" | "iat" => value.is_number(),
            "aud" => match value {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            },
            "scp" => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            _ => true,
        };
        if !ok {
            return Err(format!("claim `{name}` has the wrong type"));
        }
        if matches!(name.as_str(), "exp" | "nbf" | "iat") && !is_numeric_date(value) {
            return Err(format!(
                "claim `{name}` is not a valid NumericDate (seconds since 1970, from 0 to 2^64)"
            ));
        }
    }
    if !claims.contains_key("exp") {
        return Err("the token has no expiry (`exp`)".to_owned());
    }
    Ok(())
}

/// RFC 7519 §2 NumericDate as the signature check reads it: whole or fractional seconds since
/// 1970, not negative, below 2^64. (`-1` or `1e300` are numbers, but no date a check could use.)
fn is_numeric_date(value: &Value) -> bool {
    value.is_u64()
        || value
            .as_f64()
            .is_some_and(|f| f.is_finite() && f >= 0.0 && f < u64::MAX as f64)
}

/// The scopes a verified token grants: the space-separated `scope` string and the `scp` list.
pub(crate) fn scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut out: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    if let Some(Value::Array(items)) = claims.get("scp") {
        out.extend(items.iter().filter_map(Value::as_str));
    }
    out
}

/// True when claim `name` equals `want`, or is a list containing it.
pub(crate) fn claim_matches(claims: &Map<String, Value>, name: &str, want: &str) -> bool {
    match claims.get(name) {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(want)),
        Some(Value::Bool(b)) => b.to_string() == want,
        Some(Value::Number(n)) => n.to_string() == want,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    #[test]
    fn reads_alg_kid_and_issuer() {
        let t = token(r#"{"alg":"ES256","kid":"k1"}"#, r#"{"iss":"me","exp":1}"#);
        let u = inspect(&t).expect("valid shape");
        assert_eq!(
            (u.alg, u.kid.as_deref(), u.issuer.as_str()),
            (Algorithm::ES256, Some("k1"), "me")
        );
    }

    #[test]
    fn refuses_none_crit_and_wrong_claim_types() {
        let cases = [
            (
                r#"{"alg":"none"}"#,
                r#"{"iss":"me","exp":1}"#,
                "unsupported algorithm `none`",
            ),
            (
                r#"{"alg":"ES256","crit":["b64"]}"#,
                r#"{"iss":"me","exp":1}"#,
                "unsupported critical header parameters (`crit`)",
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"iss":"me","exp":"soon"}"#,
                "claim `exp` has the wrong type",
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"iss":"me","exp":1,"aud":[1]}"#,
                "claim `aud` has the wrong type",
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"exp":1}"#,
                "the token has no issuer (`iss`)",
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"iss":"me","exp":-1}"#,
                "claim `exp` is not a valid NumericDate (seconds since 1970, from 0 to 2^64)",
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"iss":"me","exp":1,"nbf":1e300}"#,
                "claim `nbf` is not a valid NumericDate (seconds since 1970, from 0 to 2^64)",
            ),
        ];
        for (header, payload, reason) in cases {
            assert_eq!(
                inspect(&token(header, payload)).err().as_deref(),
                Some(reason),
                "{header} {payload}"
            );
        }
        assert_eq!(
            inspect("a!b.c.AA").err().as_deref(),
            Some("malformed base64url in the header")
        );
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"scope":"a b","scp":["c"]}"#).expect("json");
        assert_eq!(scopes(&claims), vec!["a", "b", "c"]);
    }
}
