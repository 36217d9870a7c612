//! Table-driven tests for route precedence, verbs, methods and path decoding.

use super::{RouteMiss, Router, RouterBuilder, UnescapeMode};
use crate::transcode::template::PathTemplate;

/// `(method, template, value)`; values name the rule so a case can say which one won.
const RULES: &[(&str, &str, &str)] = &[
    ("GET", "/", "root"),
    ("GET", "/v1/users/me", "users.me"),
    ("GET", "/v1/users/{id}", "users.get"),
    ("GET", "/a/{x=*}/c", "a.x.c"),
    ("GET", "/a/b/d", "a.b.d"),
    ("GET", "/v1/shelves/{shelf}", "shelf"),
    ("GET", "/v1/{name=shelves/*/books/*}", "book"),
    ("GET", "/v1/files/{path=**}", "files"),
    ("GET", "/v1/{name=**}/versions", "versions"),
    ("GET", "/v1/policies", "policies.list"),
    ("GET", "/v1/{name=policies/*}", "policy.get"),
    ("POST", "/v1/policies/{id}", "policy.post"),
    ("POST", "/v1/policies/{id}:enforce", "policy.enforce"),
    ("POST", "/v1/{name=policies/*}:propose", "policy.propose"),
    ("POST", "/a/{arg=**}", "a.arg"),
    ("GET", "/people:getResourceType", "people.type"),
    ("GET", "/{x=**}:getResourceType", "any.type"),
    ("GET", "/v1/example/{single_nested.name}", "nested"),
    ("*", "/v1/any/{id}", "any.star"),
    ("GET", "/v1/any/{id}", "any.get"),
    ("PURGE", "/v1/cache/{key}", "cache.purge"),
    ("DELETE", "/v1/cache/{key}", "cache.delete"),
    ("GET", "/m/{a}/x/{b}", "m.a.b"),
    ("POST", "/m/{a}/y", "m.a.y"),
    ("GET", "/w/{one}", "w.one"),
    ("GET", "/w/{rest=**}", "w.rest"),
];

fn router(rules: &[(&str, &str, &'static str)], mode: UnescapeMode) -> Router<&'static str> {
    let mut builder = RouterBuilder::new(mode);
    for &(method, template, value) in rules {
        let template = PathTemplate::parse(template).expect("test templates are valid");
        builder
            .insert(method, template, value)
            .expect("no conflict");
    }
    builder.build()
}

type Expected = Result<(&'static str, &'static [(&'static str, &'static str)]), RouteMiss>;

fn not_allowed(methods: &[&str]) -> Expected {
    Err(RouteMiss::MethodNotAllowed {
        allow: methods.iter().map(|m| m.to_string()).collect(),
    })
}

/// Runs `(method, path, expected)` rows; `MalformedPath` rows compare only a reason substring.
fn check(router: &Router<&'static str>, cases: &[(&str, &str, Expected)]) {
    for (method, path, expected) in cases {
        let got = router
            .lookup(method, path)
            .map(|m| (*m.value, m.bindings.clone()));
        match (got, expected) {
            (Ok((value, bindings)), Ok((want_value, want_bindings))) => {
                let bindings: Vec<(&str, &str)> =
                    bindings.iter().map(|(k, v)| (*k, v.as_str())).collect();
                assert_eq!(
                    (value, bindings.as_slice()),
                    (*want_value, *want_bindings),
                    "{method} {path}"
                );
            }
            (Err(RouteMiss::MalformedPath(got)), Err(RouteMiss::MalformedPath(want))) => {
                assert!(got.contains(want.as_str()), "{method} {path}: {got}");
            }
            (got, want) => assert_eq!(
                got.as_ref().map(|g| g.0),
                want.as_ref().map(|w| w.0),
                "{method} {path}: {got:?}"
            ),
        }
    }
}

#[test]
fn matches_per_segment_with_literal_first_precedence_and_backtracking() {
    let cases: &[(&str, &str, Expected)] = &[
        ("GET", "/v1/users/me", Ok(("users.me", &[]))),
        ("GET", "/v1/users/42", Ok(("users.get", &[("id", "42")]))),
        ("GET", "/a/b/c", Ok(("a.x.c", &[("x", "b")]))),
        ("GET", "/a/b/d", Ok(("a.b.d", &[]))),
        ("GET", "/v1/shelves/123", Ok(("shelf", &[("shelf", "123")]))),
        ("GET", "/v1/shelves/1/2", Err(RouteMiss::NotFound)),
        (
            "GET",
            "/v1/shelves/s1/books/b2",
            Ok(("book", &[("name", "shelves/s1/books/b2")])),
        ),
        (
            "GET",
            "/v1/example/x",
            Ok(("nested", &[("single_nested.name", "x")])),
        ),
        ("GET", "/m/1/x/2", Ok(("m.a.b", &[("a", "1"), ("b", "2")]))),
        ("GET", "/nowhere", Err(RouteMiss::NotFound)),
        // `*` beats `**` at the same segment; `**` takes what `*` cannot.
        ("GET", "/w/x", Ok(("w.one", &[("one", "x")]))),
        ("GET", "/w/x/y", Ok(("w.rest", &[("rest", "x/y")]))),
        ("GET", "/w", Ok(("w.rest", &[("rest", "")]))),
    ];
    check(&router(RULES, UnescapeMode::default()), cases);
}

#[test]
fn double_wildcard_takes_zero_or_more_segments_and_honours_later_literals() {
    let cases: &[(&str, &str, Expected)] = &[
        ("GET", "/v1/files", Ok(("files", &[("path", "")]))),
        ("GET", "/v1/files/", Ok(("files", &[("path", "")]))),
        ("GET", "/v1/files/a", Ok(("files", &[("path", "a")]))),
        (
            "GET",
            "/v1/files/a/b/c",
            Ok(("files", &[("path", "a/b/c")])),
        ),
        (
            "GET",
            "/v1/x/y/versions",
            Ok(("versions", &[("name", "x/y")])),
        ),
        (
            "GET",
            "/v1/x/versions/versions",
            Ok(("versions", &[("name", "x/versions")])),
        ),
        ("GET", "/v1/versions", Ok(("versions", &[("name", "")]))),
        ("POST", "/a/b:c:d", Ok(("a.arg", &[("arg", "b:c:d")]))),
    ];
    check(&router(RULES, UnescapeMode::default()), cases);
}

#[test]
fn splits_only_registered_verbs_and_falls_back_to_the_unsplit_segment() {
    let cases: &[(&str, &str, Expected)] = &[
        (
            "POST",
            "/v1/policies/p1:enforce",
            Ok(("policy.enforce", &[("id", "p1")])),
        ),
        (
            "POST",
            "/v1/policies/p1",
            Ok(("policy.post", &[("id", "p1")])),
        ),
        (
            "POST",
            "/v1/policies/p1:propose",
            Ok(("policy.propose", &[("name", "policies/p1")])),
        ),
        // `:foo` is registered nowhere: it stays part of the segment.
        (
            "GET",
            "/v1/policies/p1:foo",
            Ok(("policy.get", &[("name", "policies/p1:foo")])),
        ),
        (
            "POST",
            "/v1/policies/p1:foo",
            Ok(("policy.post", &[("id", "p1:foo")])),
        ),
        // `:enforce` is registered but no GET rule takes it: the unsplit segment matches.
        (
            "GET",
            "/v1/policies/p1:enforce",
            Ok(("policy.get", &[("name", "policies/p1:enforce")])),
        ),
        // Split at the last colon only.
        (
            "POST",
            "/v1/policies/a:b:enforce",
            Ok(("policy.enforce", &[("id", "a:b")])),
        ),
        ("GET", "/people:getResourceType", Ok(("people.type", &[]))),
        (
            "GET",
            "/x/y:getResourceType",
            Ok(("any.type", &[("x", "x/y")])),
        ),
        ("GET", "/:getResourceType", Err(RouteMiss::NotFound)),
        (
            "GET",
            "/v1/users/me:getResourceType",
            Ok(("any.type", &[("x", "v1/users/me")])),
        ),
    ];
    check(&router(RULES, UnescapeMode::default()), cases);
}

#[test]
fn dispatches_on_method_and_reports_allowed_methods() {
    let cases: &[(&str, &str, Expected)] = &[
        ("DELETE", "/v1/policies/p1", not_allowed(&["GET", "POST"])),
        ("PUT", "/v1/cache/k", not_allowed(&["DELETE", "PURGE"])),
        ("PURGE", "/v1/cache/k", Ok(("cache.purge", &[("key", "k")]))),
        ("GET", "/v1/any/1", Ok(("any.get", &[("id", "1")]))),
        ("PATCH", "/v1/any/1", Ok(("any.star", &[("id", "1")]))),
        (
            "GET",
            "/v1/policies/p1:enforce",
            Ok(("policy.get", &[("name", "policies/p1:enforce")])),
        ),
        (
            "PUT",
            "/v1/policies/p1:enforce",
            not_allowed(&["GET", "POST"]),
        ),
        ("GET", "/m/1/y", not_allowed(&["POST"])),
        ("PUT", "/m/1/y", not_allowed(&["POST"])),
        ("POST", "/nowhere/at/all", Err(RouteMiss::NotFound)),
    ];
    check(&router(RULES, UnescapeMode::default()), cases);
}

#[test]
fn method_backtracking_prefers_a_wildcard_rule_with_the_method_over_a_literal_without() {
    let rules = &[("GET", "/a/{x}", "a.x"), ("POST", "/a/b", "a.b")];
    let cases: &[(&str, &str, Expected)] = &[
        ("GET", "/a/b", Ok(("a.x", &[("x", "b")]))),
        ("POST", "/a/b", Ok(("a.b", &[]))),
        ("POST", "/a/c", not_allowed(&["GET"])),
    ];
    check(&router(rules, UnescapeMode::default()), cases);
}

#[test]
fn normalises_slashes_and_rejects_paths_without_a_leading_slash() {
    let cases: &[(&str, &str, Expected)] = &[
        ("GET", "/", Ok(("root", &[]))),
        ("GET", "/v1/policies/", Ok(("policies.list", &[]))),
        ("GET", "/v1/policies//", Err(RouteMiss::NotFound)),
        ("GET", "/v1//policies", Err(RouteMiss::NotFound)),
        ("GET", "//v1/policies", Err(RouteMiss::NotFound)),
        ("GET", "//", Err(RouteMiss::NotFound)),
        (
            "GET",
            "v1/policies",
            Err(RouteMiss::MalformedPath("does not start with '/'".into())),
        ),
        (
            "GET",
            "",
            Err(RouteMiss::MalformedPath("does not start with '/'".into())),
        ),
    ];
    check(&router(RULES, UnescapeMode::default()), cases);
}

const DECODE_RULES: &[(&str, &str, &str)] = &[
    ("GET", "/v1/shelves/{shelf}", "shelf"),
    ("GET", "/v1/lit/a%2Fb", "literal"),
    ("GET", "/v1/{name=**}", "any"),
];

#[test]
fn decodes_single_segment_variables_fully() {
    let cases: &[(&str, &str, Expected)] = &[
        (
            "GET",
            "/v1/shelves/a%2Fb",
            Ok(("shelf", &[("shelf", "a/b")])),
        ),
        (
            "GET",
            "/v1/shelves/%23%41",
            Ok(("shelf", &[("shelf", "#A")])),
        ),
        (
            "GET",
            "/v1/shelves/caf%C3%A9",
            Ok(("shelf", &[("shelf", "café")])),
        ),
        (
            "GET",
            "/v1/shelves/%zz",
            Err(RouteMiss::MalformedPath(
                "malformed percent-escape \"%zz\"".into(),
            )),
        ),
        (
            "GET",
            "/v1/shelves/a%4",
            Err(RouteMiss::MalformedPath(
                "malformed percent-escape \"%4\"".into(),
            )),
        ),
        (
            "GET",
            "/v1/shelves/%C3",
            Err(RouteMiss::MalformedPath(
                "not percent-decode to UTF-8".into(),
            )),
        ),
        // Literals compare against the raw text.
        ("GET", "/v1/lit/a%2Fb", Ok(("literal", &[]))),
    ];
    check(
        &router(DECODE_RULES, UnescapeMode::AllExceptReserved),
        cases,
    );
}

#[test]
fn decodes_multi_segment_variables_per_unescape_mode() {
    use UnescapeMode::{All, AllExceptReserved, AllExceptSlash};
    let cases: &[(UnescapeMode, &str, Expected)] = &[
        (
            AllExceptReserved,
            "/v1/x%2Fy/z",
            Ok(("any", &[("name", "x%2Fy/z")])),
        ),
        (
            AllExceptReserved,
            "/v1/a%23b%41%2523",
            Ok(("any", &[("name", "a%23bA%23")])),
        ),
        (
            AllExceptReserved,
            "/v1/%3a%5B%20",
            Ok(("any", &[("name", "%3a%5B ")])),
        ),
        (
            AllExceptSlash,
            "/v1/x%2Fy/z%2f",
            Ok(("any", &[("name", "x%2Fy/z%2f")])),
        ),
        (
            AllExceptSlash,
            "/v1/a%23b%41",
            Ok(("any", &[("name", "a#bA")])),
        ),
        (All, "/v1/x%2Fy/z", Ok(("any", &[("name", "x/y/z")]))),
        (All, "/v1/a%23b%2523", Ok(("any", &[("name", "a#b%23")]))),
        (
            All,
            "/v1/a/%zz",
            Err(RouteMiss::MalformedPath("%zz".into())),
        ),
    ];
    for (mode, path, expected) in cases {
        check(
            &router(DECODE_RULES, *mode),
            &[("GET", *path, expected.clone())],
        );
    }
}

#[test]
fn refuses_a_second_rule_with_the_same_method_and_canonical_template() {
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        (
            "GET",
            "/v1/policies/{id}",
            "GET",
            "/v1/policies/{name}",
            true,
        ),
        (
            "GET",
            "/v1/policies/{id}",
            "GET",
            "/v1/{name=policies/*}",
            true,
        ),
        (
            "GET",
            "/v1/policies/{id}",
            "POST",
            "/v1/policies/{id}",
            false,
        ),
        ("GET", "/v1/policies/{id}", "*", "/v1/policies/{id}", false),
        (
            "POST",
            "/v1/policies/{id}",
            "POST",
            "/v1/policies/{id}:enforce",
            false,
        ),
        (
            "POST",
            "/v1/{x=**}:enforce",
            "POST",
            "/v1/{y=**}:enforce",
            true,
        ),
        ("*", "/", "*", "/", true),
    ];
    for &(m1, t1, m2, t2, conflict) in cases {
        let mut builder = RouterBuilder::new(UnescapeMode::default());
        builder
            .insert(m1, PathTemplate::parse(t1).expect("valid"), 1)
            .expect("first");
        let result = builder.insert(m2, PathTemplate::parse(t2).expect("valid"), 2);
        assert_eq!(result.is_err(), conflict, "{m1} {t1} vs {m2} {t2}");
    }
}

#[test]
fn conflict_message_names_both_rules() {
    let mut builder = RouterBuilder::new(UnescapeMode::default());
    let first = PathTemplate::parse("/v1/policies/{id}").expect("valid");
    builder.insert("GET", first, ()).expect("first");
    let second = PathTemplate::parse("/v1/policies/{name}").expect("valid");
    let err = builder.insert("GET", second, ()).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "route `GET /v1/policies/{name}` conflicts with `GET /v1/policies/{id}`: \
         both match the paths `/v1/policies/*`"
    );
}

#[test]
fn get_returns_the_rule_holding_a_method_and_canonical_template() {
    let mut builder = RouterBuilder::new(UnescapeMode::default());
    let first = PathTemplate::parse("/v1/policies/{id}").expect("valid");
    builder.insert("GET", first, "first").expect("first");
    let same = PathTemplate::parse("/v1/policies/{name}").expect("valid");
    assert_eq!(builder.get("GET", &same), Some(&"first"));
    assert_eq!(builder.get("POST", &same), None);
    let other = PathTemplate::parse("/v1/policies/{id}:enforce").expect("valid");
    assert_eq!(builder.get("GET", &other), None);
}

#[test]
fn lists_routes_in_insertion_order() {
    let router = router(RULES, UnescapeMode::default());
    let listed: Vec<(String, String, &str)> = router
        .routes()
        .map(|(method, template, value)| (method.to_owned(), template.to_string(), *value))
        .collect();
    let expected: Vec<(String, String, &str)> = RULES
        .iter()
        .map(|&(m, t, v)| (m.to_owned(), t.to_owned(), v))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn miss_messages_say_what_went_wrong() {
    let cases = [
        (RouteMiss::NotFound, "no route matches the request path"),
        (
            RouteMiss::MethodNotAllowed {
                allow: vec!["GET".into(), "POST".into()],
            },
            "method not allowed; allowed methods: GET, POST",
        ),
        (
            RouteMiss::MalformedPath("bad".into()),
            "malformed request path: bad",
        ),
    ];
    for (miss, message) in cases {
        assert_eq!(miss.to_string(), message);
    }
}
