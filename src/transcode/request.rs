//! Builds the gRPC request message from an HTTP request: body first, then path variables, then
//! query parameters, following `google/api/http.proto`.
//!
//! Decisions that differ between the anchors, pinned down here:
//! - A body on a rule without `body` is rejected (Envoy parses it, grpc-gateway drops it).
//! - Path and body may name the same field only with the same value; query parameters may not
//!   name fields the body carries at all, nor repeat a non-repeated field.
//! - A value-less query parameter `?flag` means `flag=` (empty): fine for strings, an error for
//!   other types. Empty pairs (`&&`) are skipped.
//! - Bools in bindings are exactly `true` or `false`, as in JSON (no `1`, `t`, `yes`).
//! - A JSON request body is parsed whatever its `content-type` says; only `google.api.HttpBody`
//!   targets look at the content type.

pub(crate) mod encode;
mod query;
mod query_map;
#[cfg(test)]
mod tests;

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};

use crate::transcode::json::{self, DecodeOptions, JsonError, TextMode, Wkt, classify_wkt};

pub use encode::encode_message;
pub use query::QueryOptions;

/// What `HttpRule.body` says the HTTP body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// `body` is empty: the request must have no body.
    None,
    /// `body: "*"`: the body is the whole request message.
    Whole,
    /// `body: "field"`: the body is the value of this top-level field.
    Field(FieldDescriptor),
}

/// The parts of an HTTP request the transcoder reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// Field paths (`policy.id`) with the already percent-decoded values the router extracted.
    pub path_bindings: &'a [(&'a str, String)],
    /// The raw query string, still percent-encoded, without the `?`.
    pub query: Option<&'a str>,
    /// The whole request body.
    pub body: &'a [u8],
    /// The request's `content-type`, used only for `google.api.HttpBody` targets.
    pub content_type: Option<&'a str>,
}

/// Why a request could not be transcoded; every variant is the client's fault (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The JSON body is invalid for the target message.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The rule has no body but the request carries one.
    #[error("this method takes no request body")]
    BodyNotAllowed,
    /// The body sets a field to a different value than the URL path does.
    #[error("`{field}` has one value in the URL path and a different one in the body")]
    PathBodyConflict {
        /// Field path as written in the route template.
        field: String,
    },
    /// A path variable's value does not fit its field.
    #[error("invalid path parameter `{name}`: {reason}")]
    InvalidPathParameter {
        /// Field path of the variable.
        name: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A query parameter names no field of the request.
    #[error("unknown query parameter `{name}`")]
    UnknownQueryParameter {
        /// The decoded parameter name.
        name: String,
    },
    /// A query parameter's name or value cannot be used.
    #[error("invalid query parameter `{name}`: {reason}")]
    InvalidQueryParameter {
        /// The decoded parameter name (raw if it could not be decoded).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A non-repeated field is given more than once in the query.
    #[error("query parameter `{name}` is repeated but its field is not")]
    RepeatedScalarQueryParameter {
        /// The decoded parameter name.
        name: String,
    },
    /// A query parameter names a field that the body carries.
    #[error("query parameter `{name}` names a field carried by the request body")]
    QueryParameterInBody {
        /// The decoded parameter name.
        name: String,
    },
    /// The body cannot be used at all (for example an `HttpBody` problem).
    #[error("invalid request body: {reason}")]
    InvalidBody {
        /// What is wrong.
        reason: String,
    },
}

impl RequestError {
    /// The field path or parameter the error is about, for a `google.rpc.BadRequest` detail.
    pub fn field(&self) -> Option<String> {
        match self {
            RequestError::Json(e) if !e.path.is_empty() => Some(e.path.clone()),
            RequestError::PathBodyConflict { field } => Some(field.clone()),
            RequestError::InvalidPathParameter { name, .. }
            | RequestError::UnknownQueryParameter { name }
            | RequestError::InvalidQueryParameter { name, .. }
            | RequestError::RepeatedScalarQueryParameter { name }
            | RequestError::QueryParameterInBody { name } => Some(name.clone()),
            RequestError::Json(_)
            | RequestError::BodyNotAllowed
            | RequestError::InvalidBody { .. } => None,
        }
    }
}

/// Builds the request message for one call: body, then path bindings, then the query string.
pub fn build_request(
    input: &MessageDescriptor,
    body_rule: &BodyRule,
    parts: &RequestParts<'_>,
    json: &DecodeOptions,
    query: &QueryOptions,
) -> Result<DynamicMessage, RequestError> {
    let mut msg = message_from_body(input, body_rule, parts, json)?;
    // Number chains of the non-repeated fields set by path or query, to catch repeats.
    let mut bound: Vec<Vec<u32>> = Vec::with_capacity(parts.path_bindings.len());
    for (path, text) in parts.path_bindings {
        let invalid = |reason: String| RequestError::InvalidPathParameter {
            name: (*path).to_owned(),
            reason,
        };
        let chain = resolve_field_path(input, path).map_err(invalid)?;
        let value = parse_binding_value(leaf(&chain).map_err(invalid)?, text).map_err(invalid)?;
        let previous = set_along(&mut msg, &chain, value).map_err(invalid)?;
        if previous.is_some() {
            return Err(RequestError::PathBodyConflict {
                field: (*path).to_owned(),
            });
        }
        bound.push(chain.iter().map(FieldDescriptor::number).collect());
    }
    if let Some(raw) = parts.query {
        query::bind_query(&mut msg, body_rule, raw, query, &bound)?;
    }
    Ok(msg)
}

/// Builds the request message for one call and encodes it: [`build_request`] then
/// [`encode_message`], in one step.
///
/// A whole-body JSON request with no path bindings and no query string (the common `POST`
/// with `body: "*"`) is encoded straight from the JSON, with the same checks and errors but
/// without a `DynamicMessage` in between; fields then come in the order the client sent them.
pub fn encode_request(
    input: &MessageDescriptor,
    body_rule: &BodyRule,
    parts: &RequestParts<'_>,
    json: &DecodeOptions,
    query: &QueryOptions,
) -> Result<Vec<u8>, RequestError> {
    let direct = matches!(body_rule, BodyRule::Whole)
        && parts.path_bindings.is_empty()
        && parts.query.is_none()
        && !parts.body.is_empty()
        && !is_http_body(input);
    if direct && let Some(bytes) = json::encode_wire(input, parts.body, json)? {
        return Ok(bytes);
    }
    build_request(input, body_rule, parts, json, query).map(|msg| encode_message(&msg))
}

/// Starts the message from the body according to the rule.
fn message_from_body(
    input: &MessageDescriptor,
    body_rule: &BodyRule,
    parts: &RequestParts<'_>,
    json: &DecodeOptions,
) -> Result<DynamicMessage, RequestError> {
    match body_rule {
        BodyRule::None if parts.body.is_empty() => Ok(DynamicMessage::new(input.clone())),
        BodyRule::None => Err(RequestError::BodyNotAllowed),
        BodyRule::Whole if is_http_body(input) => http_body(input, parts),
        // An empty body with `body: "*"` is an empty message, as in Envoy and grpc-gateway.
        BodyRule::Whole if parts.body.is_empty() => Ok(DynamicMessage::new(input.clone())),
        BodyRule::Whole => Ok(json::decode_message(input, parts.body, json)?),
        BodyRule::Field(field) => {
            let mut msg = DynamicMessage::new(input.clone());
            let value = match field.kind().as_message() {
                Some(desc) if is_http_body(desc) && !field.is_list() => {
                    Some(Value::Message(http_body(desc, parts)?))
                }
                _ if parts.body.is_empty() => None,
                _ => json::decode_field_opt(field, parts.body, json)?,
            };
            if let Some(value) = value {
                msg.try_set_field(field, value)
                    .map_err(|err| RequestError::InvalidBody {
                        reason: err.to_string(),
                    })?;
            }
            Ok(msg)
        }
    }
}

fn is_http_body(desc: &MessageDescriptor) -> bool {
    desc.full_name() == "google.api.HttpBody"
}

/// A `google.api.HttpBody` holding the raw body and its content type; no JSON involved.
fn http_body(
    desc: &MessageDescriptor,
    parts: &RequestParts<'_>,
) -> Result<DynamicMessage, RequestError> {
    let invalid = |err: prost_reflect::SetFieldError| RequestError::InvalidBody {
        reason: format!("google.api.HttpBody: {err}"),
    };
    let mut msg = DynamicMessage::new(desc.clone());
    if let (Some(field), Some(content_type)) =
        (desc.get_field_by_name("content_type"), parts.content_type)
    {
        msg.try_set_field(&field, Value::String(content_type.to_owned()))
            .map_err(invalid)?;
    }
    if let Some(field) = desc.get_field_by_name("data") {
        let data = bytes::Bytes::copy_from_slice(parts.body);
        msg.try_set_field(&field, Value::Bytes(data))
            .map_err(invalid)?;
    }
    Ok(msg)
}

/// Resolves a dotted field path for a path variable (config-time check).
///
/// Every step but the last must be a singular message field; the last must be a singular
/// scalar, enum, or a well-known type with a string form (Timestamp, Duration, FieldMask,
/// wrappers). Steps match proto names first, then JSON names.
pub fn resolve_field_path(
    input: &MessageDescriptor,
    path: &str,
) -> Result<Vec<FieldDescriptor>, String> {
    let chain = walk(input, path).map_err(|e| e.reason)?;
    let last = leaf(&chain)?;
    if last.is_list() || last.is_map() {
        return Err(format!(
            "`{}` in `{path}` is repeated; a path variable binds a single value",
            last.name()
        ));
    }
    check_leaf_kind(last, path)?;
    Ok(chain)
}

/// Parses one element (scalar, enum, or string-form well-known type) for `field` from text.
pub fn parse_binding_value(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    if field.is_map() {
        return Err(format!(
            "map field `{}` cannot be bound from text",
            field.name()
        ));
    }
    json::value_from_text(&field.kind(), text, TextMode::Binding)
}

/// A query parameter whose name or value cannot be used.
fn invalid_parameter(name: &str, reason: String) -> RequestError {
    RequestError::InvalidQueryParameter {
        name: name.to_owned(),
        reason,
    }
}

/// True when the body carries the field `chain` leads to.
fn in_body(body_rule: &BodyRule, chain: &[FieldDescriptor]) -> bool {
    match body_rule {
        BodyRule::None => false,
        BodyRule::Whole => true,
        BodyRule::Field(field) => {
            chain.first().map(FieldDescriptor::number) == Some(field.number())
        }
    }
}

fn leaf(chain: &[FieldDescriptor]) -> Result<&FieldDescriptor, String> {
    chain.last().ok_or_else(|| "empty field path".to_owned())
}

/// A failed [`walk`]: `unknown` when some step names no field at all.
struct WalkError {
    unknown: bool,
    reason: String,
}

/// Follows a dotted path through singular, ordinary message fields.
fn walk(input: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, WalkError> {
    let mut chain: Vec<FieldDescriptor> = Vec::with_capacity(2);
    let mut current = input.clone();
    for (i, step) in path.split('.').enumerate() {
        if i > 0 {
            let prev = &chain[i - 1];
            let invalid = |why: &str| WalkError {
                unknown: false,
                reason: format!(
                    "`{}` in `{path}` {why}, so it has no field `{step}`",
                    prev.name()
                ),
            };
            current = match prev.kind().as_message() {
                _ if prev.is_list() || prev.is_map() => return Err(invalid("is repeated")),
                Some(desc) if classify_wkt(desc).is_none() => desc.clone(),
                Some(_) => return Err(invalid("is a well-known type")),
                None => return Err(invalid("is not a message")),
            };
        }
        let field = current
            .get_field_by_name(step)
            .or_else(|| current.get_field_by_json_name(step))
            .ok_or_else(|| WalkError {
                unknown: true,
                reason: format!(
                    "{} has no field `{step}` (in `{path}`)",
                    current.full_name()
                ),
            })?;
        chain.push(field);
    }
    Ok(chain)
}

/// Only scalars, enums and string-form well-known types can come from text.
fn check_leaf_kind(last: &FieldDescriptor, path: &str) -> Result<(), String> {
    match last.kind().as_message() {
        None => Ok(()),
        Some(desc) => match classify_wkt(desc) {
            Some(Wkt::Timestamp | Wkt::Duration | Wkt::FieldMask | Wkt::Wrapper) => Ok(()),
            _ => Err(format!(
                "`{}` in `{path}` is a message ({}); bind its fields instead",
                last.name(),
                desc.full_name()
            )),
        },
    }
}

/// Sets the singular field at the end of `chain`, creating intermediate messages.
///
/// Returns the earlier value when the field already held a *different* one (a conflict for the
/// caller to report); an equal earlier value is not a conflict.
fn set_along(
    msg: &mut DynamicMessage,
    chain: &[FieldDescriptor],
    value: Value,
) -> Result<Option<Value>, String> {
    let (target, last) = parent_along(msg, chain)?;
    // Setting one member of a oneof clears the others: refuse instead of dropping a value the
    // client sent, as the JSON decoder does for two members in one body.
    if let Some(oneof) = last.containing_oneof().filter(|o| !o.is_synthetic())
        && let Some(other) = oneof
            .fields()
            .find(|other| other.number() != last.number() && target.has_field(other))
    {
        return Err(format!(
            "`{}` and `{}` are members of oneof `{}`; only one may be set",
            other.name(),
            last.name(),
            oneof.name()
        ));
    }
    let previous = if target.has_field(last) {
        Some(target.get_field(last).into_owned()).filter(|old| *old != value)
    } else {
        None
    };
    if previous.is_none() {
        target
            .try_set_field(last, value)
            .map_err(|err| err.to_string())?;
    }
    Ok(previous)
}

/// The message holding the last field of `chain` (created on the way if unset), and that field.
fn parent_along<'m, 'c>(
    msg: &'m mut DynamicMessage,
    chain: &'c [FieldDescriptor],
) -> Result<(&'m mut DynamicMessage, &'c FieldDescriptor), String> {
    let (last, parents) = chain.split_last().ok_or("empty field path")?;
    let mut target = msg;
    for field in parents {
        target = match target.get_field_mut(field) {
            Value::Message(inner) => inner,
            _ => return Err(format!("`{}` is not a message field", field.name())),
        };
    }
    Ok((target, last))
}
