//! Table-driven tests for body, path and query bindings.

use prost_reflect::{DynamicMessage, Value};

use super::{
    BodyRule, QueryOptions, RequestError, RequestParts, build_request, encode_request,
    resolve_field_path,
};
use crate::transcode::json::test_pool::{field, message};
use crate::transcode::json::{DecodeOptions, EncodeOptions, JsonError, encode_message_json};

/// input, body rule, path bindings, query, body, expected printed message or error.
type BindingCase<'a> = (
    &'a str,
    &'a BodyRule,
    Vec<(&'a str, String)>,
    Option<&'a str>,
    &'a str,
    Result<&'a str, RequestError>,
);

const SEARCH: &str = "tai.SearchPoliciesRequest";

fn print(msg: &DynamicMessage) -> String {
    let opts = EncodeOptions {
        emit_defaults: false,
        ..EncodeOptions::default()
    };
    String::from_utf8(encode_message_json(msg, &opts).expect("prints")).expect("utf-8")
}

fn build(
    input: &str,
    rule: &BodyRule,
    path: &[(&str, String)],
    query: Option<&str>,
    body: &str,
    opts: &QueryOptions,
) -> Result<String, RequestError> {
    let parts = RequestParts {
        path_bindings: path,
        query,
        body: body.as_bytes(),
        content_type: Some("application/json"),
    };
    build_request(
        &message(input),
        rule,
        &parts,
        &DecodeOptions::default(),
        opts,
    )
    .map(|msg| print(&msg))
}

fn search(query: &str) -> Result<String, RequestError> {
    build(
        SEARCH,
        &BodyRule::None,
        &[],
        Some(query),
        "",
        &QueryOptions::default(),
    )
}

#[test]
fn applies_body_rules_and_path_bindings() {
    let q = QueryOptions::default();
    let policy = BodyRule::Field(field("tai.UpdatePolicyRequest", "policy"));
    let p1 = |name: &'static str| vec![(name, "p1".to_owned())];
    let cases: Vec<BindingCase<'_>> = vec![
        (
            "tai.Policy",
            &BodyRule::Whole,
            p1("id"),
            None,
            r#"{"id":"p1","version":"2"}"#,
            Ok(r#"{"id":"p1","version":"2"}"#),
        ),
        (
            "tai.Policy",
            &BodyRule::Whole,
            p1("id"),
            None,
            "",
            Ok(r#"{"id":"p1"}"#),
        ),
        (
            "tai.Policy",
            &BodyRule::Whole,
            p1("id"),
            None,
            r#"{"policyName":"n"}"#,
            Ok(r#"{"id":"p1","policyName":"n"}"#),
        ),
        (
            "tai.Policy",
            &BodyRule::Whole,
            p1("id"),
            None,
            r#"{"id":"p2"}"#,
            Err(RequestError::PathBodyConflict { field: "id".into() }),
        ),
        (
            "tai.Policy",
            &BodyRule::Whole,
            vec![],
            Some("policy_name=x"),
            "{}",
            Err(RequestError::QueryParameterInBody {
                name: "policy_name".into(),
            }),
        ),
        (
            "tai.UpdatePolicyRequest",
            &policy,
            p1("policy.id"),
            Some("update_mask=policyName"),
            r#"{"policyName":"n"}"#,
            Ok(r#"{"policy":{"id":"p1","policyName":"n"},"updateMask":"policyName"}"#),
        ),
        (
            "tai.UpdatePolicyRequest",
            &policy,
            p1("policy.id"),
            None,
            "null",
            Ok(r#"{"policy":{"id":"p1"}}"#),
        ),
        (
            "tai.UpdatePolicyRequest",
            &policy,
            p1("policy.id"),
            None,
            r#"{"id":"x"}"#,
            Err(RequestError::PathBodyConflict {
                field: "policy.id".into(),
            }),
        ),
        (
            "tai.UpdatePolicyRequest",
            &policy,
            p1("policy.id"),
            Some("policy.version=3"),
            "{}",
            Err(RequestError::QueryParameterInBody {
                name: "policy.version".into(),
            }),
        ),
        (
            "tai.UpdatePolicyRequest",
            &policy,
            vec![],
            None,
            r#"{"version":1.5}"#,
            Err(RequestError::Json(JsonError {
                path: "version".into(),
                reason: "1.5 is not an integer".into(),
            })),
        ),
        (
            "tai.GetPolicyRequest",
            &BodyRule::None,
            p1("id"),
            None,
            "",
            Ok(r#"{"id":"p1"}"#),
        ),
        (
            "tai.GetPolicyRequest",
            &BodyRule::None,
            p1("id"),
            None,
            r#"{"id":"x"}"#,
            Err(RequestError::BodyNotAllowed),
        ),
        (
            "tai.GetPolicyRequest",
            &BodyRule::None,
            p1("id"),
            Some("id=p1"),
            "",
            Ok(r#"{"id":"p1"}"#),
        ),
        (
            "tai.GetPolicyRequest",
            &BodyRule::None,
            p1("id"),
            Some("id=p2"),
            "",
            Err(RequestError::InvalidQueryParameter {
                name: "id".into(),
                reason: "the URL path sets this field to a different value".into(),
            }),
        ),
        (
            "tai.EchoMessage",
            &BodyRule::None,
            vec![("int64_value", "12".into())],
            None,
            "",
            Ok(r#"{"int64Value":"12"}"#),
        ),
        (
            "tai.EchoMessage",
            &BodyRule::None,
            vec![("int64_value", "x".into())],
            None,
            "",
            Err(RequestError::InvalidPathParameter {
                name: "int64_value".into(),
                reason: "`x` is not an integer".into(),
            }),
        ),
        (
            "tai.EchoMessage",
            &BodyRule::None,
            vec![("nested.name", "n".into())],
            None,
            "",
            Ok(r#"{"nested":{"name":"n"}}"#),
        ),
    ];
    for (input, rule, path, query, body, expected) in cases {
        let got = build(input, rule, &path, query, body, &q);
        assert_eq!(
            got,
            expected.map(str::to_owned),
            "{input} {rule:?} body {body}"
        );
    }
}

#[test]
fn names_an_unknown_field_on_both_json_paths() {
    // At the top level the unknown key is all there is to name; inside a field, that field.
    let cases = [
        ("tai.Policy", r#"{"policyName":"x","bogus":1}"#, "bogus"),
        ("tai.EchoMessage", r#"{"nested":{"bogus":1}}"#, "nested"),
    ];
    let (json, query) = (DecodeOptions::default(), QueryOptions::default());
    for (input, body, field) in cases {
        let desc = message(input);
        let parts = RequestParts {
            path_bindings: &[],
            query: None,
            body: body.as_bytes(),
            content_type: None,
        };
        let direct = encode_request(&desc, &BodyRule::Whole, &parts, &json, &query);
        let dynamic = build_request(&desc, &BodyRule::Whole, &parts, &json, &query);
        let err = direct.expect_err(body);
        assert_eq!(Err(err.clone()), dynamic.map(|_| ()), "{body}");
        assert_eq!(err.field().as_deref(), Some(field), "{body}");
    }
}

#[test]
fn passes_http_body_requests_through_raw() {
    let raw = b"\x89PNG\r\n";
    let build_raw = |input: &str, rule: &BodyRule, path: &[(&str, String)], query: Option<&str>| {
        let parts = RequestParts {
            path_bindings: path,
            query,
            body: raw,
            content_type: Some("image/png"),
        };
        build_request(
            &message(input),
            rule,
            &parts,
            &DecodeOptions::default(),
            &QueryOptions::default(),
        )
    };
    let whole = build_raw("google.api.HttpBody", &BodyRule::Whole, &[], None).expect("builds");
    assert_eq!(
        whole.get_field_by_name("content_type").as_deref(),
        Some(&Value::String("image/png".into()))
    );
    assert_eq!(
        whole.get_field_by_name("data").as_deref(),
        Some(&Value::Bytes(raw.as_slice().into()))
    );

    let rule = BodyRule::Field(field("tai_test.UploadRequest", "file"));
    let upload = build_raw(
        "tai_test.UploadRequest",
        &rule,
        &[("name", "a.png".into())],
        Some("overwrite=true"),
    )
    .expect("builds");
    assert_eq!(
        print(&upload),
        r#"{"name":"a.png","file":{"contentType":"image/png","data":"iVBORw0K"},"overwrite":true}"#
    );
}

#[test]
fn resolves_field_paths_at_config_time() {
    let update = message("tai.UpdatePolicyRequest");
    let cases = [
        ("policy.id", Ok(vec!["policy", "id"])),
        ("update_mask", Ok(vec!["update_mask"])),
        ("policy.created_at", Ok(vec!["policy", "created_at"])),
        (
            "policy.bogus",
            Err("tai.Policy has no field `bogus` (in `policy.bogus`)"),
        ),
        (
            "policy",
            Err("`policy` in `policy` is a message (tai.Policy); bind its fields instead"),
        ),
        (
            "policy.rules",
            Err("`rules` in `policy.rules` is repeated; a path variable binds a single value"),
        ),
        (
            "policy.id.x",
            Err("`id` in `policy.id.x` is not a message, so it has no field `x`"),
        ),
    ];
    for (path, expected) in cases {
        let got = resolve_field_path(&update, path).map(|chain| {
            chain
                .iter()
                .map(|f| f.name().to_owned())
                .collect::<Vec<_>>()
        });
        let expected = expected
            .map(|names| names.into_iter().map(str::to_owned).collect())
            .map_err(str::to_owned);
        assert_eq!(got, expected, "path {path}");
    }
}

mod cost;
mod direct;
mod query;
