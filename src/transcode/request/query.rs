//! Query-string bindings: `name=value` pairs onto (nested, repeated) fields.

use std::borrow::Cow;

use prost_reflect::{
    DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage as _, Value,
};

use super::query_map::MapParameter;
use super::{
    BodyRule, RequestError, check_leaf_kind, in_body, invalid_parameter, leaf, parent_along,
    parse_binding_value, set_along, walk,
};

/// How query parameters are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Drop parameters that name no field instead of failing with `UnknownQueryParameter`.
    pub ignore_unknown: bool,
    /// Names never bound and never unknown, such as `access_token` or `api_key`.
    pub ignored: Vec<String>,
    /// Decode `+` as a space (HTML forms). Off by default, like Envoy: `+` stays `+`.
    pub unescape_plus: bool,
}

/// Applies every pair of `raw` to `msg`. `path_bound` holds the number chains the path set.
pub(super) fn bind_query(
    msg: &mut DynamicMessage,
    body_rule: &BodyRule,
    raw: &str,
    opts: &QueryOptions,
    path_bound: &[Vec<u32>],
) -> Result<(), RequestError> {
    let input = msg.descriptor();
    let mut query_bound: Vec<Vec<u32>> = Vec::new();
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        // `?flag` is `flag=`: an empty value, which only string fields accept.
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(raw_name, opts.unescape_plus).map_err(|reason| {
            RequestError::InvalidQueryParameter {
                name: raw_name.to_owned(),
                reason,
            }
        })?;
        if opts.ignored.iter().any(|ignored| *ignored == name) {
            continue;
        }
        if let Some(entry) = MapParameter::parse(&name) {
            let text = percent_decode(raw_value, opts.unescape_plus)
                .map_err(|reason| invalid_parameter(&name, reason))?;
            entry.bind(msg, body_rule, &text, opts.ignore_unknown)?;
            continue;
        }
        let Some(chain) = parameter_field(&input, body_rule, &name, opts)? else {
            continue;
        };
        let invalid = |reason: String| invalid_parameter(&name, reason);
        let text = percent_decode(raw_value, opts.unescape_plus).map_err(invalid)?;
        let element =
            parse_binding_value(leaf(&chain).map_err(invalid)?, &text).map_err(invalid)?;
        let bound = Bound {
            path: path_bound,
            query: &mut query_bound,
        };
        bind_element(msg, &chain, element, &name, bound)?;
    }
    Ok(())
}

/// The fields already set by path and query, as number chains.
struct Bound<'a> {
    path: &'a [Vec<u32>],
    query: &'a mut Vec<Vec<u32>>,
}

/// The field chain parameter `name` binds; `None` for an unknown name the options ignore.
fn parameter_field(
    input: &MessageDescriptor,
    body_rule: &BodyRule,
    name: &str,
    opts: &QueryOptions,
) -> Result<Option<Vec<FieldDescriptor>>, RequestError> {
    let invalid = |reason: String| invalid_parameter(name, reason);
    let chain = match walk(input, name) {
        Ok(chain) => chain,
        Err(err) if err.unknown && opts.ignore_unknown => return Ok(None),
        Err(err) if err.unknown => {
            return Err(RequestError::UnknownQueryParameter {
                name: name.to_owned(),
            });
        }
        Err(err) => return Err(invalid(err.reason)),
    };
    if in_body(body_rule, &chain) {
        return Err(RequestError::QueryParameterInBody {
            name: name.to_owned(),
        });
    }
    let last = leaf(&chain).map_err(invalid)?;
    if last.is_map() {
        return Err(invalid(format!(
            "`{}` is a map: set its entries as `{name}[key]=value`",
            last.name()
        )));
    }
    check_leaf_kind(last, name).map_err(invalid)?;
    Ok(Some(chain))
}

/// Appends `element` to a repeated field, or sets a singular one that neither the path nor an
/// earlier parameter set.
fn bind_element(
    msg: &mut DynamicMessage,
    chain: &[FieldDescriptor],
    element: Value,
    name: &str,
    bound: Bound<'_>,
) -> Result<(), RequestError> {
    let invalid = |reason: String| invalid_parameter(name, reason);
    if leaf(chain).map_err(invalid)?.is_list() {
        return append_along(msg, chain, element).map_err(invalid);
    }
    let key: Vec<u32> = chain.iter().map(FieldDescriptor::number).collect();
    if bound.query.contains(&key) {
        return Err(RequestError::RepeatedScalarQueryParameter {
            name: name.to_owned(),
        });
    }
    if set_along(msg, chain, element).map_err(invalid)?.is_some() {
        let reason = if bound.path.contains(&key) {
            "the URL path sets this field to a different value"
        } else {
            "the field already has a different value"
        };
        return Err(invalid(reason.into()));
    }
    bound.query.push(key);
    Ok(())
}

/// Appends one element to the repeated field at the end of `chain`.
fn append_along(
    msg: &mut DynamicMessage,
    chain: &[FieldDescriptor],
    element: Value,
) -> Result<(), String> {
    let (target, last) = parent_along(msg, chain)?;
    match target.get_field_mut(last) {
        Value::List(items) => {
            items.push(element);
            Ok(())
        }
        _ => Err(format!("`{}` is not a repeated field", last.name())),
    }
}

/// Decodes `%XX` escapes (and `+` when asked); the result must be UTF-8.
pub(crate) fn percent_decode(raw: &str, plus_is_space: bool) -> Result<Cow<'_, str>, String> {
    let needs_work = raw.contains('%') || (plus_is_space && raw.contains('+'));
    if !needs_work {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                // Check the digits ourselves: from_str_radix would take `%+5` as 5.
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                let byte = hex.ok_or_else(|| format!("malformed percent-encoding in `{raw}`"))?;
                out.push(byte);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| format!("`{raw}` is not UTF-8 once percent-decoded"))
}
