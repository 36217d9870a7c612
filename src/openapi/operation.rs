//! One binding → one OpenAPI operation: its parameters, request body, responses (success, the
//! `google.rpc.Status` error body, 401 and 429 where the route can answer them), security and
//! rate-limit headers.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::parameters::{Unbound, path_of, query_parameters};
use super::schema::{Schemas, Style, comments, reference};
use super::security;
use crate::config::{AuthConfig, AuthMode, RouteAuth, StreamFormat};
use crate::runtime::Binding;
use crate::transcode::request::{BodyRule, resolve_field_path};
use crate::transcode::template::PathTemplate;

/// The component name of the error body.
pub(crate) const STATUS: &str = "google.rpc.Status";
const HTTP_BODY: &str = "google.api.HttpBody";

/// An operation and the OpenAPI path it belongs under.
pub(crate) struct Operation {
    pub(crate) path: String,
    pub(crate) value: Value,
}

/// The operation of `binding`; `operation_id` is unique in the document.
pub(crate) fn operation(
    binding: &Binding,
    template: &PathTemplate,
    operation_id: String,
    schemas: &mut Schemas,
    auth: &AuthConfig,
) -> Operation {
    let method = &binding.method;
    let style = Style::of(&method.options.encode);
    let (path, mut parameters) = path_of(template, &method.input, schemas, style);
    let unbound = Unbound {
        input: &method.input,
        body: &binding.body,
        path_fields: bound_fields(&method.input, template),
        ignored: &method.options.query.ignored,
    };
    let (query, truncated) = query_parameters(&unbound, schemas, style);
    parameters.extend(query);
    let (service, rpc) = method.full_name.split_once('/').unwrap_or(("", ""));
    let mut op = Map::new();
    op.insert("operationId".to_owned(), json!(operation_id));
    op.insert("tags".to_owned(), json!([service]));
    op.insert("summary".to_owned(), json!(format!("{service}.{rpc}")));
    if let Some(text) = method_comments(&method.input, &method.full_name) {
        op.insert("description".to_owned(), json!(text));
    }
    if !parameters.is_empty() {
        op.insert("parameters".to_owned(), Value::Array(parameters));
    }
    if let Some(body) = request_body(binding, &unbound, schemas, style) {
        op.insert("requestBody".to_owned(), body);
    }
    op.insert("responses".to_owned(), responses(binding, schemas, style));
    if let Some(requirements) = security::requirements(method.options.auth.rules(), auth) {
        op.insert("security".to_owned(), requirements);
    }
    extensions(&mut op, binding, truncated);
    Operation {
        path,
        value: Value::Object(op),
    }
}

/// The proto field paths (by name) the template binds.
fn bound_fields(input: &MessageDescriptor, template: &PathTemplate) -> Vec<String> {
    template
        .variables()
        .filter_map(|v| resolve_field_path(input, v).ok())
        .map(|chain| {
            let names: Vec<&str> = chain.iter().map(FieldDescriptor::name).collect();
            names.join(".")
        })
        .collect()
}

/// The comments above the method's `rpc`, found through its service in the pool.
fn method_comments(input: &MessageDescriptor, full_name: &str) -> Option<String> {
    let (service, rpc) = full_name.split_once('/')?;
    let service = input.parent_pool().get_service_by_name(service)?;
    let method = service.methods().find(|m| m.name() == rpc)?;
    comments(method.parent_file(), method.path())
}

fn request_body(
    binding: &Binding,
    unbound: &Unbound<'_>,
    schemas: &mut Schemas,
    style: Style,
) -> Option<Value> {
    let method = &binding.method;
    if binding.raw_body || (method.client_streaming && method.input.full_name() == HTTP_BODY) {
        let description =
            "raw bytes, sent to the backend as google.api.HttpBody with the request's Content-Type";
        return Some(
            json!({ "required": true, "description": description, "content": { "*/*": {} } }),
        );
    }
    let schema = match &binding.body {
        BodyRule::None => return None,
        BodyRule::Whole => whole_body(&method.input, &unbound.path_fields, schemas, style),
        BodyRule::Field(field) => schemas.field(field, style),
    };
    if method.client_streaming {
        return Some(json!({
            "required": true,
            "description": "the request stream: one message per element of a JSON array, or per line of NDJSON",
            "content": {
                "application/json": { "schema": { "type": "array", "items": schema } },
                "application/x-ndjson": { "schema": schema },
            },
        }));
    }
    Some(json!({ "required": true, "content": { "application/json": { "schema": schema } } }))
}

/// `body: "*"`: the request message, without the members the path binds at its top level.
fn whole_body(
    input: &MessageDescriptor,
    path_fields: &[String],
    schemas: &mut Schemas,
    style: Style,
) -> Value {
    let top: Vec<FieldDescriptor> = input
        .fields()
        .filter(|f| path_fields.iter().any(|p| p == f.name()))
        .collect();
    let whole = schemas.message(input, style);
    if top.is_empty() {
        return whole;
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in input.fields().filter(|f| !top.contains(f)) {
        let key = style.key(&field);
        if schemas.is_required(&field) {
            required.push(json!(key));
        }
        properties.insert(key, schemas.field(&field, style));
    }
    let names: Vec<String> = top.iter().map(|f| f.name().to_owned()).collect();
    json!({
        "type": "object",
        "description": format!("{} without `{}` (taken from the path)", input.full_name(), names.join("`, `")),
        "properties": properties,
        "required": required,
    })
}

fn responses(binding: &Binding, schemas: &mut Schemas, style: Style) -> Value {
    let options = &binding.method.options;
    let limited = !options.rate_limits.names().is_empty();
    let headers = if limited {
        rate_limit_headers()
    } else {
        json!({})
    };
    let mut ok = success(binding, schemas, style);
    with_headers(&mut ok, &headers);
    let mut out = Map::new();
    out.insert("200".to_owned(), ok);
    auth_responses(&mut out, options.auth.rules(), &headers);
    if limited {
        let mut refused = headers.clone();
        if let Value::Object(map) = &mut refused {
            map.insert("Retry-After".to_owned(), header_ref("Retry-After"));
        }
        out.insert("429".to_owned(), error("rate limit exceeded", &refused));
    }
    let text = "an error: the gRPC status (or the gateway's own refusal) as google.rpc.Status, with the HTTP status mapped from its code";
    out.insert("default".to_owned(), error(text, &headers));
    Value::Object(out)
}

/// 401 on routes that read tokens; 403 where they must carry scopes or claims.
fn auth_responses(out: &mut Map<String, Value>, auth: &RouteAuth, headers: &Value) {
    if auth.mode == AuthMode::None {
        return;
    }
    let mut challenge = headers.clone();
    if let Value::Object(map) = &mut challenge {
        map.insert(
            "WWW-Authenticate".to_owned(),
            header_ref("WWW-Authenticate"),
        );
    }
    let text = match auth.mode {
        AuthMode::Required => "no token, or one that does not verify",
        _ => "a token that does not verify (requests without one pass)",
    };
    out.insert("401".to_owned(), error(text, &challenge));
    if !auth.require_scopes.is_empty() || !auth.require_claims.is_empty() {
        let text = "the token lacks a required scope or claim";
        out.insert("403".to_owned(), error(text, headers));
    }
}

/// An error answer: `google.rpc.Status` with `headers`.
fn error(description: &str, headers: &Value) -> Value {
    let mut response = json!({
        "description": description,
        "content": { "application/json": { "schema": reference(STATUS) } },
    });
    with_headers(&mut response, headers);
    response
}

/// The 200 answer: JSON, raw bytes (HttpBody), or a stream in the three formats.
fn success(binding: &Binding, schemas: &mut Schemas, style: Style) -> Value {
    let method = &binding.method;
    let raw = method.output.full_name() == HTTP_BODY
        || binding
            .response_body
            .as_ref()
            .is_some_and(|f| matches!(f.kind(), Kind::Message(m) if m.full_name() == HTTP_BODY));
    if raw {
        let description = "raw bytes with the Content-Type the backend's google.api.HttpBody names (application/octet-stream when none); a stream's chunks are sent one after another";
        return json!({ "description": description, "content": { "*/*": {} } });
    }
    let schema = match &binding.response_body {
        Some(field) => schemas.field(field, style),
        None => schemas.message(&method.output, style),
    };
    if !method.server_streaming {
        return json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
    }
    stream_response(schema, method.options.stream_format)
}

/// A server stream: every format, the route's default first; the client's `Accept` chooses.
fn stream_response(item: Value, default: StreamFormat) -> Value {
    let array = json!({
        "schema": { "type": "array", "items": item },
        "x-tai-stream": "a JSON array whose elements are written as the messages arrive; an error after the first element ends it with {\"error\": google.rpc.Status}",
    });
    let ndjson = json!({
        "schema": item,
        "x-tai-stream": "one message per line; an error after the first line is a last line {\"error\": google.rpc.Status}",
    });
    let sse = json!({
        "schema": { "type": "string" },
        "x-tai-stream": "one `data: <message JSON>` event per message; an error after the first is an `event: error` with google.rpc.Status",
        "x-tai-stream-item": item,
    });
    let mut formats = vec![
        (StreamFormat::JsonArray, array),
        (StreamFormat::Ndjson, ndjson),
        (StreamFormat::Sse, sse),
    ];
    formats.sort_by_key(|(format, _)| *format != default);
    let content: Map<String, Value> = formats
        .into_iter()
        .map(|(format, media)| (format.content_type().to_owned(), media))
        .collect();
    json!({
        "description": format!("a stream of messages, written as they arrive; `{default}` unless the request's Accept names another format"),
        "content": content,
        "x-tai-stream-format": default.to_string(),
    })
}

/// Adds `headers` (an object of header objects) to `response` unless there are none.
fn with_headers(response: &mut Value, headers: &Value) {
    if let (Value::Object(response), Value::Object(list)) = (response, headers)
        && !list.is_empty()
    {
        response.insert("headers".to_owned(), headers.clone());
    }
}

fn integer_header(description: &str) -> Value {
    json!({ "description": description, "schema": { "type": "integer", "minimum": 0 } })
}

/// `RateLimit-*` headers of the tightest limit the request passed.
fn rate_limit_headers() -> Value {
    let names = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"];
    Value::Object(
        names
            .map(|n| (n.to_owned(), header_ref(n)))
            .into_iter()
            .collect(),
    )
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// The response headers operations refer to (`components.headers`).
pub(crate) fn header_components() -> Value {
    json!({
        "RateLimit-Limit": integer_header("requests per period of the tightest limit applied"),
        "RateLimit-Remaining": integer_header("requests left in the current period"),
        "RateLimit-Reset": integer_header("seconds until the budget is full again"),
        "Retry-After": integer_header("seconds until a request may pass"),
        "WWW-Authenticate": {
            "description": "the Bearer challenge: realm, and the error when a token was sent",
            "schema": { "type": "string" },
        },
    })
}

/// `x-tai-*` facts OpenAPI has no field for: the gRPC method, the route, the template.
fn extensions(op: &mut Map<String, Value>, binding: &Binding, truncated: bool) {
    let method = &binding.method;
    op.insert("x-tai-grpc-method".to_owned(), json!(method.full_name));
    op.insert("x-tai-route".to_owned(), json!(method.options.name));
    op.insert(
        "x-tai-http-rule".to_owned(),
        json!({ "method": binding.http_method, "template": binding.template }),
    );
    let streaming = match (method.client_streaming, method.server_streaming) {
        (false, false) => None,
        (true, false) => Some("client"),
        (false, true) => Some("server"),
        (true, true) => Some("bidi"),
    };
    if let Some(kind) = streaming {
        op.insert("x-tai-streaming".to_owned(), json!(kind));
    }
    let limits = method.options.rate_limits.names();
    if !limits.is_empty() {
        op.insert("x-tai-rate-limits".to_owned(), json!(limits));
    }
    if truncated {
        op.insert("x-tai-query-parameters-truncated".to_owned(), json!(true));
    }
}
