//! Issue 18, items 1 and 2: ambiguous credentials are refused, and a token is reported for what
//! is wrong with it (a non-ASCII byte, an `exp` that is no date), never as absent.
//! Providers and routes as in `auth.rs`: `/v1/echo` requires a token, GetPolicy takes an optional one.

use http::{Method, StatusCode};
use serde_json::json;

use crate::auth::{assert_invalid, claims, config, echo, ed_token, start};
use crate::harness::{Reply, TestEnv, start_stubs};

/// The answer to ambiguous credentials: 400 `invalid_request` (RFC 6750 §3.1), with its reason
/// in the challenge's `error_description` and in the body.
fn assert_ambiguous(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let challenge = format!(
        r#"Bearer realm="tai-gateway", error="invalid_request", error_description="{reason}""#
    );
    assert_eq!(reply.header("www-authenticate"), Some(challenge.as_str()));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let message = serde_json::to_string(&format!("ambiguous credentials: {reason}")).expect("json");
    assert_eq!(
        reply.body,
        format!(r#"{{"code":3,"message":{message},"details":[]}}"#)
    );
}

/// Reproduction (before the fix): a valid token plus a second `Authorization: Bearer forged`
/// was admitted (200, the first header won); in the other order it was a 401. Both orders,
/// and the optional route, are now 400 without a backend call.
#[tokio::test]
async fn two_authorization_headers_are_refused_in_either_order() {
    let env = start().await;
    let good = format!("Bearer {}", ed_token(&claims()));
    let forged = "Bearer forged";
    let orders = [[good.as_str(), forged], [forged, good.as_str()]];
    for [first, second] in orders {
        let headers = [
            ("content-type", "application/json"),
            ("authorization", first),
            ("authorization", second),
        ];
        let reply = env
            .send(Method::POST, "/v1/echo", &headers, Some("{}"))
            .await;
        assert_ambiguous(&reply, "more than one `Authorization` header");
        let optional = env
            .send(Method::GET, "/v1/policies/p1", &headers[1..], None)
            .await;
        assert_ambiguous(&optional, "more than one `Authorization` header");
    }
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 0);
    assert_eq!(env.stubs.store().calls("tai.Governor/GetPolicy"), 0);
}

/// Reproduction (before the fix), with `auth.token.query_parameter: jwt`: a forged header and a
/// valid `?jwt=` (or the other way round) were served by whichever the gateway looked at
/// first; `?jwt=a&jwt=b` used the first. Each is now 400.
#[tokio::test]
async fn a_token_in_both_the_header_and_the_query_or_twice_in_the_query_is_refused() {
    let stubs = start_stubs().await;
    let config = config(&stubs, "").replace(
        "auth:\n  providers:",
        "auth:\n  token: { query_parameter: jwt }\n  providers:",
    );
    let env = TestEnv::start_on(stubs, &config).await;
    let token = ed_token(&claims());
    let bearer = format!("Bearer {token}");
    let cases = [
        (
            format!("/v1/echo/hi?jwt={token}"),
            Some("Bearer forged"),
            "a token in both the header and the query parameter",
        ),
        (
            "/v1/echo/hi?jwt=forged".to_owned(),
            Some(bearer.as_str()),
            "a token in both the header and the query parameter",
        ),
        (
            format!("/v1/echo/hi?jwt={token}&jwt=forged"),
            None,
            "more than one token query parameter",
        ),
    ];
    for (path, header, reason) in cases {
        let headers: Vec<(&str, &str)> = header.map(|h| ("authorization", h)).into_iter().collect();
        let reply = env.send(Method::GET, &path, &headers, None).await;
        assert_ambiguous(&reply, reason);
    }
    // One token in one place still works.
    let reply = env
        .send(Method::GET, &format!("/v1/echo/hi?jwt={token}"), &[], None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(env.stubs.store().calls("tai.Governor/Echo"), 1);
}

/// Reproduction (before the fix): `Authorization: Bearer <token with an é in it>` was read as
/// no token at all: a 401 without `error="invalid_token"` on a required route, and an anonymous
/// 200 on an optional one. It is an invalid token on both.
#[tokio::test]
async fn a_token_with_a_non_ascii_byte_is_invalid_not_missing() {
    let env = start().await;
    let token = ed_token(&claims());
    let (head, rest) = token.split_once('.').expect("jws");
    let mangled = format!("{head}é.{rest}");
    let reply = echo(&env, Some(&mangled), &[]).await;
    assert_invalid(&reply, "the token has a byte outside visible ASCII");
    let bearer = format!("Bearer {mangled}");
    let optional = env
        .send(
            Method::GET,
            "/v1/policies/p1",
            &[("authorization", bearer.as_str())],
            None,
        )
        .await;
    assert_invalid(&optional, "the token has a byte outside visible ASCII");
    assert_eq!(env.stubs.store().calls("tai.Governor/GetPolicy"), 0);
}

/// Reproduction (before the fix): a signed token with `exp: -1` or `exp: 1e300` was refused as
/// "invalid token: a required claim is missing" although it has an `exp`; `nbf` likewise.
#[tokio::test]
async fn an_exp_or_nbf_that_is_no_date_is_reported_as_such() {
    let env = start().await;
    let cases = [
        ("exp", json!(-1)),
        ("exp", json!(1e300)),
        ("exp", json!(-0.5)),
        ("nbf", json!(1e300)),
    ];
    for (claim, value) in cases {
        let mut bad = claims();
        bad[claim] = value;
        let reply = echo(&env, Some(&ed_token(&bad)), &[]).await;
        assert_invalid(
            &reply,
            &format!(
                "claim `{claim}` is not a valid NumericDate (seconds since 1970, from 0 to 2^64)"
            ),
        );
    }
    // Fractional seconds are a NumericDate (RFC 7519 §2).
    let mut fractional = claims();
    fractional["exp"] = json!(crate::auth::now() as f64 + 600.5);
    let reply = echo(&env, Some(&ed_token(&fractional)), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
