//! Table-driven tests for the path-template grammar.

use super::{PathTemplate, TemplateErrorKind as K};

#[test]
fn parses_valid_templates_into_canonical_form_variables_and_verb() {
    // (template, canonical, variables, verb)
    let cases: &[(&str, &str, &[&str], Option<&str>)] = &[
        ("/", "/", &[], None),
        ("/v1/policies", "/v1/policies", &[], None),
        ("/v1/policies/{id}", "/v1/policies/*", &["id"], None),
        ("/v1/policies/{id=*}", "/v1/policies/*", &["id"], None),
        (
            "/v1/policies/{id}:enforce",
            "/v1/policies/*:enforce",
            &["id"],
            Some("enforce"),
        ),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/shelves/*/books/*",
            &["name"],
            None,
        ),
        ("/v1/files/{path=**}", "/v1/files/**", &["path"], None),
        ("/v1/{name=**}/versions", "/v1/**/versions", &["name"], None),
        (
            "/v1/{name=**}:undelete",
            "/v1/**:undelete",
            &["name"],
            Some("undelete"),
        ),
        (
            "/v1/example/{single_nested.name}",
            "/v1/example/*",
            &["single_nested.name"],
            None,
        ),
        ("/v1/{a}/{b.c_d}/x", "/v1/*/*/x", &["a", "b.c_d"], None),
        ("/v1/*/**", "/v1/*/**", &[], None),
        (
            "/people:getResourceType",
            "/people:getResourceType",
            &[],
            Some("getResourceType"),
        ),
        (
            "/v1/a-b.c~d_e!$&'()+,;@/%2F",
            "/v1/a-b.c~d_e!$&'()+,;@/%2F",
            &[],
            None,
        ),
        (
            "/{name=policies/*}:propose",
            "/policies/*:propose",
            &["name"],
            Some("propose"),
        ),
    ];
    for &(text, canonical, variables, verb) in cases {
        let template = PathTemplate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(template.canonical(), canonical, "{text}");
        assert_eq!(
            template.variables().collect::<Vec<_>>(),
            variables,
            "{text}"
        );
        assert_eq!(template.verb(), verb, "{text}");
        assert_eq!(template.to_string(), text, "display of {text}");
    }
}

#[test]
fn rejects_invalid_templates_with_position_and_reason() {
    let cases: &[(&str, usize, K)] = &[
        ("", 0, K::MissingLeadingSlash),
        ("v1/policies", 0, K::MissingLeadingSlash),
        ("/v1//policies", 4, K::EmptySegment),
        ("/v1/policies/", 13, K::EmptySegment),
        ("//", 1, K::EmptySegment),
        ("/v1/{a={b}}", 7, K::NestedVariable),
        ("/v1/{a{b}}", 6, K::NestedVariable),
        ("/v1/{id", 4, K::UnclosedVariable),
        ("/v1/{id=*", 4, K::UnclosedVariable),
        ("/v1/id}", 6, K::UnmatchedClosingBrace),
        ("/v1/}", 4, K::UnmatchedClosingBrace),
        ("/v1/{}", 5, K::BadFieldPath),
        ("/v1/{1id}", 5, K::BadFieldPath),
        ("/v1/{a.}", 7, K::BadFieldPath),
        ("/v1/{a-b}", 6, K::BadFieldPath),
        ("/v1/{id}/{id}", 10, K::DuplicateVariable("id".into())),
        ("/{a=**}/{b=**}", 11, K::MultipleDoubleWildcards),
        ("/v1/**/**", 7, K::MultipleDoubleWildcards),
        ("/v1/**/*", 7, K::WildcardAfterDoubleWildcard),
        ("/v1/{path=**}/{id}", 14, K::WildcardAfterDoubleWildcard),
        ("/v1/x:", 6, K::EmptyVerb),
        ("/v1/{id}:", 9, K::EmptyVerb),
        ("/v1/a:b:c", 7, K::InvalidCharacter(':')),
        ("/v1/a b", 5, K::InvalidCharacter(' ')),
        ("/v1/a*", 5, K::InvalidCharacter('*')),
        ("/v1/***", 6, K::InvalidCharacter('*')),
        ("/v1/a=b", 5, K::InvalidCharacter('=')),
        ("/v1/é", 4, K::InvalidCharacter('é')),
        ("/v1/{name=a:b}", 11, K::InvalidCharacter(':')),
        ("/v1/a%zz", 5, K::BadPercentEscape),
        ("/v1/a%4", 5, K::BadPercentEscape),
        ("/v1/{x=}", 7, K::EmptySegment),
    ];
    for (text, position, kind) in cases {
        let err = PathTemplate::parse(text).expect_err(text);
        assert_eq!(
            (err.position, &err.kind),
            (*position, kind),
            "{text}: {err}"
        );
        assert_eq!(err.template, *text);
    }
}

#[test]
fn error_message_names_template_position_and_reason() {
    let err = PathTemplate::parse("/v1/{id}/{id}").expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "invalid path template `/v1/{id}/{id}` at byte 10: field path `id` is bound twice"
    );
}

#[test]
fn variable_spans_cover_their_segments() {
    let template = PathTemplate::parse("/v1/{name=shelves/*/books/*}/x/{rest=**}").expect("valid");
    let spans: Vec<_> = template
        .variable_spans()
        .iter()
        .map(|v| (v.field_path.as_str(), v.start, v.end))
        .collect();
    assert_eq!(spans, [("name", 1, 5), ("rest", 6, 7)]);
}
