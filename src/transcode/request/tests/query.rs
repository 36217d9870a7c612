//! Query-string bindings.

use super::{SEARCH, build, search};
use crate::transcode::request::{BodyRule, QueryOptions, RequestError};

#[test]
fn binds_query_parameters_of_every_kind() {
    let cases = [
        ("filter.name_prefix=ab", r#"{"filter":{"namePrefix":"ab"}}"#),
        ("filter.namePrefix=ab", r#"{"filter":{"namePrefix":"ab"}}"#),
        ("ids=a&ids=b", r#"{"ids":["a","b"]}"#),
        (
            "states=POLICY_STATE_ACTIVE&states=1",
            r#"{"states":["POLICY_STATE_ACTIVE","POLICY_STATE_PROPOSED"]}"#,
        ),
        (
            "created_after=2024-05-01T10:00:00Z&max_age=1.5s&read_mask=policyName,rules&min_version=3",
            r#"{"createdAfter":"2024-05-01T10:00:00Z","maxAge":"1.500s","readMask":"policyName,rules","minVersion":3}"#,
        ),
        (
            "createdAfter=2024-05-01T10:00:00%2B02:00",
            r#"{"createdAfter":"2024-05-01T08:00:00Z"}"#,
        ),
        (
            "limit=9223372036854775807",
            r#"{"limit":"9223372036854775807"}"#,
        ),
        ("limit=-5", r#"{"limit":"-5"}"#),
        ("cursor=-_8", r#"{"cursor":"+/8="}"#),
        ("cursor=aGk%3D", r#"{"cursor":"aGk="}"#),
        ("include_revoked=true&includeRevoked2=x", "unknown"),
        ("parent=a+b", r#"{"parent":"a+b"}"#),
        ("parent=%E2%9C%93%20x", r#"{"parent":"✓ x"}"#),
        ("parent=", "{}"),
        ("parent&&ids=x&", r#"{"ids":["x"]}"#),
        (
            "filter.policy_types=a&filter.policyTypes=b",
            r#"{"filter":{"policyTypes":["a","b"]}}"#,
        ),
    ];
    for (query, expected) in cases {
        match search(query) {
            Ok(printed) => assert_eq!(printed, expected, "query {query}"),
            Err(err) => assert_eq!(
                err,
                RequestError::UnknownQueryParameter {
                    name: "includeRevoked2".into()
                },
                "query {query}"
            ),
        }
    }
}

#[test]
fn rejects_bad_query_parameters_precisely() {
    let invalid = |name: &str, reason: &str| RequestError::InvalidQueryParameter {
        name: name.into(),
        reason: reason.into(),
    };
    let cases = [
        (
            "states=BOGUS",
            invalid("states", "`BOGUS` is not a value of enum tai.PolicyState"),
        ),
        (
            "limit=9223372036854775808",
            invalid("limit", "9223372036854775808 is out of range for int64"),
        ),
        ("limit=1.5", invalid("limit", "1.5 is not an integer")),
        ("limit=", invalid("limit", "`` is not an integer")),
        (
            "include_revoked=1",
            invalid("include_revoked", "`1` is not a bool (use true or false)"),
        ),
        (
            "include_revoked",
            invalid("include_revoked", "`` is not a bool (use true or false)"),
        ),
        (
            "max_age=1h",
            invalid("max_age", "`1h` is not a duration such as \"1.5s\""),
        ),
        (
            "min_version=2147483648",
            invalid("min_version", "2147483648 is out of range for int32"),
        ),
        (
            "cursor=a$",
            invalid("cursor", "invalid base64: Invalid symbol 36, offset 1."),
        ),
        (
            "parent=%zz",
            invalid("parent", "malformed percent-encoding in `%zz`"),
        ),
        (
            "parent=%+5",
            invalid("parent", "malformed percent-encoding in `%+5`"),
        ),
        (
            "parent=%ff",
            invalid("parent", "`%ff` is not UTF-8 once percent-decoded"),
        ),
        (
            "filter=x",
            invalid(
                "filter",
                "`filter` in `filter` is a message (tai.SearchFilter); bind its fields instead",
            ),
        ),
        (
            "ids.x=1",
            invalid(
                "ids.x",
                "`ids` in `ids.x` is repeated, so it has no field `x`",
            ),
        ),
        (
            "min_version.value=3",
            invalid(
                "min_version.value",
                "`min_version` in `min_version.value` is a well-known type, so it has no field `value`",
            ),
        ),
        (
            "parent=a&parent=b",
            RequestError::RepeatedScalarQueryParameter {
                name: "parent".into(),
            },
        ),
        (
            "parent=a&parent=a",
            RequestError::RepeatedScalarQueryParameter {
                name: "parent".into(),
            },
        ),
        (
            "bogus=1",
            RequestError::UnknownQueryParameter {
                name: "bogus".into(),
            },
        ),
        (
            "filter.bogus=1",
            RequestError::UnknownQueryParameter {
                name: "filter.bogus".into(),
            },
        ),
        (
            "b%6Fgus=1",
            RequestError::UnknownQueryParameter {
                name: "bogus".into(),
            },
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(search(query), Err(expected), "query {query}");
    }
    let map = build(
        "tai.EchoMessage",
        &BodyRule::None,
        &[],
        Some("string_to_int64=1"),
        "",
        &QueryOptions::default(),
    );
    assert_eq!(
        map,
        Err(invalid(
            "string_to_int64",
            "`string_to_int64` is a map: set its entries as `string_to_int64[key]=value`"
        ))
    );
    let oneof = build(
        "tai.EchoMessage",
        &BodyRule::None,
        &[],
        Some("choice_text=a&choice_number=1"),
        "",
        &QueryOptions::default(),
    );
    assert_eq!(
        oneof,
        Err(invalid(
            "choice_number",
            "`choice_text` and `choice_number` are members of oneof `choice`; only one may be set"
        ))
    );
}

#[test]
fn honours_query_options() {
    let cases = [
        (
            QueryOptions {
                unescape_plus: true,
                ..QueryOptions::default()
            },
            "parent=a+b%2B",
            Ok(r#"{"parent":"a b+"}"#),
        ),
        (
            QueryOptions {
                ignored: vec!["access_token".into()],
                ..QueryOptions::default()
            },
            "access_token=x&parent=p",
            Ok(r#"{"parent":"p"}"#),
        ),
        (
            QueryOptions {
                ignore_unknown: true,
                ..QueryOptions::default()
            },
            "bogus=1&filter.nope=2&parent=p",
            Ok(r#"{"parent":"p"}"#),
        ),
        (
            QueryOptions {
                ignore_unknown: true,
                ..QueryOptions::default()
            },
            "limit=x",
            Err(RequestError::InvalidQueryParameter {
                name: "limit".into(),
                reason: "`x` is not an integer".into(),
            }),
        ),
    ];
    for (opts, query, expected) in cases {
        let got = build(SEARCH, &BodyRule::None, &[], Some(query), "", &opts);
        assert_eq!(got, expected.map(str::to_owned), "query {query}");
    }
}

fn maps(query: &str) -> Result<String, RequestError> {
    build(
        "tai_test.KeyedMaps",
        &BodyRule::None,
        &[],
        Some(query),
        "",
        &QueryOptions::default(),
    )
}

#[test]
fn binds_map_entries_from_bracketed_parameters() {
    let cases = [
        (
            "by_bool[true]=a&by_bool[false]=",
            r#"{"byBool":{"false":"","true":"a"}}"#,
        ),
        (
            "by_uint64[18446744073709551615]=-1&byUint64[0]=2",
            r#"{"byUint64":{"0":2,"18446744073709551615":-1}}"#,
        ),
        ("by_sint32[-5]=1.5", r#"{"bySint32":{"-5":1.5}}"#),
        ("by_fixed32[7]=aGk%3D", r#"{"byFixed32":{"7":"aGk="}}"#),
        (
            "by_enum[-9]=RED&by_enum[3]=0",
            r#"{"byEnum":{"-9":"RED","3":"COLOR_UNSPECIFIED"}}"#,
        ),
        (
            "child.by_bool[true]=x&child.child.by_uint64[1]=1",
            r#"{"child":{"byBool":{"true":"x"},"child":{"byUint64":{"1":1}}}}"#,
        ),
        // Percent-encoded brackets and keys are decoded first.
        ("by_bool%5Btrue%5D=y", r#"{"byBool":{"true":"y"}}"#),
    ];
    for (query, expected) in cases {
        assert_eq!(maps(query).as_deref(), Ok(expected), "query {query}");
    }
    let strings = build(
        "tai.EchoMessage",
        &BodyRule::None,
        &[],
        Some(
            "string_to_int64[env]=3&stringToInt64[a%5Bb%5D]=-4&string_to_int64[]=0&int32_to_string[-1]=x",
        ),
        "",
        &QueryOptions::default(),
    );
    assert_eq!(
        strings.as_deref(),
        Ok(r#"{"stringToInt64":{"":"0","a[b]":"-4","env":"3"},"int32ToString":{"-1":"x"}}"#)
    );
}

#[test]
fn rejects_bad_map_parameters_precisely() {
    let invalid = |name: &str, reason: &str| RequestError::InvalidQueryParameter {
        name: name.into(),
        reason: reason.into(),
    };
    let cases = [
        (
            "by_bool[1]=a",
            invalid("by_bool[1]", "`1` is not a valid bool map key"),
        ),
        (
            "by_uint64[-1]=1",
            invalid("by_uint64[-1]", "`-1` is not a valid uint64 map key"),
        ),
        (
            "by_uint64[x]=1",
            invalid("by_uint64[x]", "`x` is not a valid uint64 map key"),
        ),
        (
            "by_uint64[1]=x",
            invalid("by_uint64[1]", "`x` is not an integer"),
        ),
        (
            "by_uint64[1]=1&by_uint64[1]=1",
            invalid("by_uint64[1]", "map key `1` is given more than once"),
        ),
        (
            "by_bool[true]=a&byBool[true]=b",
            invalid("byBool[true]", "map key `true` is given more than once"),
        ),
        (
            "nested[k]=x",
            invalid(
                "nested[k]",
                "the values of map `nested` are messages (tai_test.KeyedMaps); only scalar values can come from the query",
            ),
        ),
        (
            "maybe[k]=x",
            invalid(
                "maybe[k]",
                "`maybe` is not a map field; `[key]` selects an entry of a map",
            ),
        ),
        (
            "flags[0]=true",
            invalid(
                "flags[0]",
                "`flags` is not a map field; `[key]` selects an entry of a map",
            ),
        ),
        (
            "by_bool=x",
            invalid(
                "by_bool",
                "`by_bool` is a map: set its entries as `by_bool[key]=value`",
            ),
        ),
        (
            "bogus[k]=1",
            RequestError::UnknownQueryParameter {
                name: "bogus[k]".into(),
            },
        ),
        (
            "[k]=1",
            RequestError::UnknownQueryParameter { name: "[k]".into() },
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(maps(query), Err(expected), "query {query}");
    }
    let in_body = build(
        "tai_test.KeyedMaps",
        &BodyRule::Whole,
        &[],
        Some("by_bool[true]=a"),
        "{}",
        &QueryOptions::default(),
    );
    assert_eq!(
        in_body,
        Err(RequestError::QueryParameterInBody {
            name: "by_bool[true]".into()
        })
    );
    let ignored = build(
        "tai_test.KeyedMaps",
        &BodyRule::None,
        &[],
        Some("bogus[k]=1&by_bool[true]=a"),
        "",
        &QueryOptions {
            ignore_unknown: true,
            ..QueryOptions::default()
        },
    );
    assert_eq!(ignored.as_deref(), Ok(r#"{"byBool":{"true":"a"}}"#));
}
