//! Parameters of an operation: the OpenAPI path of a template and its path parameters, and the
//! query parameters a binding accepts.
//!
//! OpenAPI paths only know `{name}` expressions, each standing for text without `/`. A template
//! variable is written as `{field.path}` in the path; when it spans several segments
//! (`{name=agents/*/actions/*}`, `{path=**}`) its parameter says so: a `pattern` for the whole
//! value, `x-tai-multi-segment: true`, and the segment pattern as written in
//! `x-tai-segments`. Such a value is sent with its `/` unescaped (`agents/a1/actions/7`): the
//! gateway matches the template on the raw path, so a `%2F` does not separate segments. A bare
//! `*` or `**` outside a variable (matched but bound to no field) becomes a parameter named
//! `_wildcard1`, `_wildcard2`, … so the path stays a valid template. Every variable's parameter
//! names the field it binds in `x-tai-field` (its `name` can differ: see `document`).
//!
//! Query parameters follow `transcode::request`: every field the path and body leave unbound,
//! reached through singular (non well-known) messages as `a.b`, whose leaf is a scalar, an enum
//! (by name) or a Timestamp, Duration, FieldMask or wrapper; repeated leaves repeat the
//! parameter (`?ids=a&ids=b`). Maps and repeated messages cannot be set from the query, and
//! names in `transcoding.ignored_query_parameters` are never bound.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::schema::{Schemas, Style, comments};
use crate::transcode::json::{Wkt, classify_wkt};
use crate::transcode::request::{BodyRule, resolve_field_path};
use crate::transcode::template::{PathTemplate, Segment};

/// Most query parameters listed for one operation: a wide, deep request type stops here (the
/// operation then says so in `x-tai-query-parameters-truncated`).
pub(crate) const MAX_QUERY_PARAMETERS: usize = 300;

/// The OpenAPI path of `template` and its path parameters.
pub(crate) fn path_of(
    template: &PathTemplate,
    input: &MessageDescriptor,
    schemas: &mut Schemas,
    style: Style,
) -> (String, Vec<Value>) {
    let segments = template.segments();
    let spans = template.variable_spans();
    let mut path = String::new();
    let mut parameters = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        path.push('/');
        if let Some(var) = spans.iter().find(|v| v.start == i) {
            path.push_str(&format!("{{{}}}", var.field_path));
            let pattern = &segments[var.start..var.end];
            parameters.push(variable_parameter(
                &var.field_path,
                pattern,
                input,
                schemas,
                style,
            ));
            i = var.end.max(i + 1);
            continue;
        }
        match &segments[i] {
            Segment::Literal(text) => path.push_str(text),
            wildcard => {
                let name = format!("_wildcard{}", parameters.len() + 1);
                path.push_str(&format!("{{{name}}}"));
                parameters.push(wildcard_parameter(&name, wildcard));
            }
        }
        i += 1;
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(verb) = template.verb() {
        path.push(':');
        path.push_str(verb);
    }
    (path, parameters)
}

/// The parameter of one template variable bound to `field_path`.
fn variable_parameter(
    field_path: &str,
    pattern: &[Segment],
    input: &MessageDescriptor,
    schemas: &mut Schemas,
    style: Style,
) -> Value {
    let leaf = resolve_field_path(input, field_path)
        .ok()
        .and_then(|chain| chain.last().cloned());
    let single = matches!(pattern, [Segment::Wildcard]);
    let mut schema = match (&leaf, single) {
        (Some(field), true) => element_schema(field, schemas, style),
        _ => json!({ "type": "string" }),
    };
    let written: Vec<&str> = pattern.iter().map(Segment::as_str).collect();
    let mut description = format!("binds request field `{field_path}`");
    if !single {
        if let Value::Object(object) = &mut schema {
            object.insert("pattern".to_owned(), Value::String(regex_of(pattern)));
        }
        description.push_str(&format!(
            "; spans path segments matching `{}`: send its `/` unescaped",
            written.join("/")
        ));
    }
    if let Some(text) = leaf
        .as_ref()
        .and_then(|f| comments(f.parent_file(), f.path()))
    {
        description = format!("{text}\n\n({description})");
    }
    let mut parameter = json!({
        "name": field_path,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema,
        "x-tai-field": field_path,
    });
    if !single && let Value::Object(object) = &mut parameter {
        object.insert("x-tai-multi-segment".to_owned(), Value::Bool(true));
        object.insert("x-tai-segments".to_owned(), json!(written.join("/")));
    }
    parameter
}

fn wildcard_parameter(name: &str, wildcard: &Segment) -> Value {
    let multi = matches!(wildcard, Segment::DoubleWildcard);
    let description = if multi {
        "any number of path segments (`**`), bound to no field"
    } else {
        "any one path segment (`*`), bound to no field"
    };
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": { "type": "string" },
        "x-tai-multi-segment": multi,
    })
}

/// A regular expression for a multi-segment variable's whole value.
fn regex_of(pattern: &[Segment]) -> String {
    let parts: Vec<String> = pattern
        .iter()
        .map(|segment| match segment {
            Segment::Literal(text) => escape(text),
            Segment::Wildcard => "[^/]+".to_owned(),
            Segment::DoubleWildcard => ".*".to_owned(),
        })
        .collect();
    format!("^{}$", parts.join("/"))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The schema of one value of `field` as text in a path or query (a wrapper is its bare value).
fn element_schema(field: &FieldDescriptor, schemas: &mut Schemas, style: Style) -> Value {
    match field.kind() {
        Kind::Message(desc) if classify_wkt(&desc) == Some(Wkt::Wrapper) => desc
            .get_field(1)
            .map_or_else(|| json!({}), |inner| schemas.kind(&inner.kind(), style)),
        kind => schemas.kind(&kind, style),
    }
}

/// What a binding leaves to the query: the request type, the body rule, the path's fields.
pub(crate) struct Unbound<'a> {
    pub(crate) input: &'a MessageDescriptor,
    pub(crate) body: &'a BodyRule,
    /// Field paths the template binds (`policy.id`).
    pub(crate) path_fields: Vec<String>,
    /// Parameter names the route never binds (`transcoding.ignored_query_parameters`).
    pub(crate) ignored: &'a [String],
}

/// The query parameters of a binding, and whether the list was cut at [`MAX_QUERY_PARAMETERS`].
pub(crate) fn query_parameters(
    unbound: &Unbound<'_>,
    schemas: &mut Schemas,
    style: Style,
) -> (Vec<Value>, bool) {
    let mut walk = QueryWalk {
        unbound,
        schemas,
        style,
        out: Vec::new(),
        truncated: false,
        stack: vec![unbound.input.full_name().to_owned()],
    };
    if !matches!(unbound.body, BodyRule::Whole) {
        walk.message(unbound.input, "", "");
    }
    (walk.out, walk.truncated)
}

struct QueryWalk<'a, 'b> {
    unbound: &'a Unbound<'b>,
    schemas: &'a mut Schemas,
    style: Style,
    out: Vec<Value>,
    truncated: bool,
    /// Message types on the way to the current one: a recursive type is not entered twice.
    stack: Vec<String>,
}

impl QueryWalk<'_, '_> {
    /// The fields of `desc`, reached as `prefix` (query name) / `proto_prefix` (field path).
    fn message(&mut self, desc: &MessageDescriptor, prefix: &str, proto_prefix: &str) {
        for field in desc.fields() {
            let name = format!("{prefix}{}", self.style.key(&field));
            let proto_path = format!("{proto_prefix}{}", field.name());
            if self.skipped(&field, &proto_path) {
                continue;
            }
            match field.kind() {
                Kind::Message(inner) if classify_wkt(&inner).is_none() => {
                    if field.is_list() || self.stack.iter().any(|t| t == inner.full_name()) {
                        continue;
                    }
                    self.stack.push(inner.full_name().to_owned());
                    self.message(&inner, &format!("{name}."), &format!("{proto_path}."));
                    self.stack.pop();
                }
                Kind::Message(inner) if !query_wkt(&inner) => {}
                _ => self.leaf(&field, name),
            }
        }
    }

    /// Fields the query cannot (maps), may not (the body's) or need not (the path's) set.
    fn skipped(&self, field: &FieldDescriptor, proto_path: &str) -> bool {
        let in_body = match self.unbound.body {
            BodyRule::Field(body) => proto_path == body.name(),
            BodyRule::Whole => true,
            BodyRule::None => false,
        };
        field.is_map()
            || in_body
            || self
                .unbound
                .path_fields
                .iter()
                .any(|bound| bound == proto_path)
    }

    fn leaf(&mut self, field: &FieldDescriptor, name: String) {
        if self.unbound.ignored.contains(&name) {
            return;
        }
        if self.out.len() >= MAX_QUERY_PARAMETERS {
            self.truncated = true;
            return;
        }
        let element = element_schema(field, self.schemas, self.style);
        let schema = if field.is_list() {
            json!({ "type": "array", "items": element })
        } else {
            element
        };
        let mut parameter = json!({ "name": name, "in": "query", "schema": schema });
        if let (Some(text), Value::Object(object)) =
            (comments(field.parent_file(), field.path()), &mut parameter)
        {
            object.insert("description".to_owned(), Value::String(text));
        }
        if field.is_list()
            && let Value::Object(object) = &mut parameter
        {
            object.insert("style".to_owned(), json!("form"));
            object.insert("explode".to_owned(), Value::Bool(true));
        }
        self.out.push(parameter);
    }
}

/// Well-known types the query can set from text (`transcode::request::check_leaf_kind`).
fn query_wkt(desc: &MessageDescriptor) -> bool {
    matches!(
        classify_wkt(desc),
        Some(Wkt::Timestamp | Wkt::Duration | Wkt::FieldMask | Wkt::Wrapper)
    )
}
