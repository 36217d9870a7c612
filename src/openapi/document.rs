//! The whole document: every binding of the route table, in the router's order, under its
//! OpenAPI path; the components; the security schemes.
//!
//! Two things OpenAPI 3.1 cannot say directly are kept as extensions:
//! - an HTTP method outside OpenAPI's eight (a `custom` rule such as `PURGE`) has no operation
//!   key: its operation sits in the path item's `x-tai-custom-operations`, keyed by the method;
//! - two bindings that share an OpenAPI path and method (possible when a multi-segment variable
//!   collapses to one `{name}`, e.g. `GET /v1/{id}` next to `GET /v1/{path=**}`): the first keeps
//!   the operation, the others are listed in the root's `x-tai-unlisted-bindings` with the path
//!   they would take.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::operation::{Operation, STATUS, header_components, operation};
use super::schema::{Schemas, comments};
use super::security;
use crate::config::AuthMode;
use crate::runtime::{Binding, Runtime};
use crate::transcode::template::PathTemplate;

/// HTTP methods that are operation keys of a path item.
const OPERATION_KEYS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The OpenAPI 3.1 document of `runtime`'s route table.
pub fn document(runtime: &Runtime) -> Value {
    document_of(runtime, None)
}

/// The document of the routes named in `routes` only (`None`: every route), as a listener that
/// serves those routes publishes it.
pub fn document_of(runtime: &Runtime, routes: Option<&HashSet<String>>) -> Value {
    let listed = Listed(routes);
    let mut schemas = Schemas::new(&runtime.pool);
    schemas.insert(STATUS, status_schema());
    let (paths, unlisted) = paths(runtime, &mut schemas, listed);
    let auth = &runtime.config.auth;
    let mut components = Map::new();
    let used = listed
        .bindings(runtime)
        .any(|(_, _, b)| b.method.options.auth.rules().mode != AuthMode::None);
    if let Some(schemes) = security::schemes(auth, used) {
        components.insert("securitySchemes".to_owned(), schemes);
    }
    components.insert("schemas".to_owned(), Value::Object(schemas.finish()));
    components.insert("headers".to_owned(), header_components());
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": info(),
        "servers": [{ "url": "/" }],
        "tags": tags(runtime, listed),
        "paths": paths,
        "components": components,
    });
    if !unlisted.is_empty()
        && let Value::Object(root) = &mut doc
    {
        root.insert("x-tai-unlisted-bindings".to_owned(), Value::Array(unlisted));
    }
    doc
}

/// The routes a document lists: all, or those a listener serves.
#[derive(Clone, Copy)]
struct Listed<'a>(Option<&'a HashSet<String>>);

impl<'a> Listed<'a> {
    /// The router's bindings of the listed routes, in the router's order.
    fn bindings<'r>(
        self,
        runtime: &'r Runtime,
    ) -> impl Iterator<Item = (&'r str, &'r PathTemplate, &'r Arc<Binding>)> + use<'r, 'a> {
        let routes = self.0;
        runtime
            .router
            .routes()
            .filter(move |(_, _, b)| routes.is_none_or(|r| r.contains(&b.method.options.name)))
    }
}

/// Every binding's operation under its path, and the bindings that found their place taken.
fn paths(
    runtime: &Runtime,
    schemas: &mut Schemas,
    listed: Listed<'_>,
) -> (Map<String, Value>, Vec<Value>) {
    let mut paths: Map<String, Value> = Map::new();
    let mut unlisted = Vec::new();
    let mut per_method: HashMap<String, usize> = HashMap::new();
    let mut shapes: HashMap<String, String> = HashMap::new();
    for (http_method, template, binding) in listed.bindings(runtime) {
        let count = per_method
            .entry(binding.method.full_name.clone())
            .or_default();
        let id = operation_id(&binding.method.full_name, *count);
        *count += 1;
        let mut op = operation(binding, template, id, schemas, &runtime.config.auth);
        let key = shapes
            .entry(shape(&op.path))
            .or_insert_with(|| op.path.clone());
        if *key != op.path {
            adopt(&mut op, key);
        }
        let item = paths.entry(op.path.clone()).or_insert_with(|| json!({}));
        if !place(item, http_method, op.value) {
            unlisted.push(json!({
                "method": http_method,
                "template": binding.template,
                "grpc_method": binding.method.full_name,
                "path": op.path,
            }));
        }
    }
    (paths, unlisted)
}

/// One tag per routed service (operations are tagged with their service), described by the
/// service's proto comment.
fn tags(runtime: &Runtime, listed: Listed<'_>) -> Value {
    let mut names: Vec<&str> = listed
        .bindings(runtime)
        .filter_map(|(_, _, b)| b.method.full_name.split_once('/').map(|(s, _)| s))
        .collect();
    names.sort_unstable();
    names.dedup();
    let tags: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let service = runtime.pool.get_service_by_name(name);
            let text = service.and_then(|s| comments(s.parent_file(), s.path()));
            match text {
                Some(text) => json!({ "name": name, "description": text }),
                None => json!({ "name": name }),
            }
        })
        .collect();
    Value::Array(tags)
}

/// The path with its parameter names erased: `/v1/policies/{}`. OpenAPI forbids two paths that
/// differ only in their parameters' names (`/v1/policies/{id}`, `/v1/policies/{policy.id}`).
fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut inside = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if !inside => out.push(ch),
            _ => {}
        }
    }
    out
}

/// Moves `op` under `path`, an equal-shaped path written first: its path parameters take that
/// path's names, in order (each still says which field it binds, in `x-tai-field`).
fn adopt(op: &mut Operation, path: &str) {
    let names: Vec<&str> = path
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect();
    if let Some(Value::Array(parameters)) = op.value.get_mut("parameters") {
        let in_path = parameters.iter_mut().filter(|p| p["in"] == "path");
        for (parameter, name) in in_path.zip(names) {
            parameter["name"] = json!(name);
        }
    }
    op.path = path.to_owned();
}

/// `pkg.Service.Method` for a method's first binding, `pkg.Service.Method_2`, … for the next.
fn operation_id(full_name: &str, index: usize) -> String {
    let id = full_name.replace('/', ".");
    match index {
        0 => id,
        n => format!("{id}_{}", n + 1),
    }
}

/// Puts `op` in the path item under its method; false when that place is taken.
fn place(item: &mut Value, http_method: &str, op: Value) -> bool {
    let Value::Object(item) = item else {
        return false;
    };
    let lower = http_method.to_ascii_lowercase();
    let slot = if OPERATION_KEYS.contains(&lower.as_str()) {
        item
    } else {
        let custom = item
            .entry("x-tai-custom-operations")
            .or_insert_with(|| json!({}));
        match custom {
            Value::Object(custom) => custom,
            _ => return false,
        }
    };
    let key = if OPERATION_KEYS.contains(&lower.as_str()) {
        lower
    } else {
        http_method.to_owned()
    };
    if slot.contains_key(&key) {
        return false;
    }
    slot.insert(key, op);
    true
}

fn info() -> Value {
    json!({
        "title": "tai-gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "description": concat!(
            "The HTTP/JSON API this gateway serves now, generated from its route table and the ",
            "services' descriptors (proto3 JSON mapping: 64-bit integers as strings, enums by ",
            "name, well-known types in their JSON forms). Requests may name fields by their ",
            "lowerCamel JSON name or their proto name, in the body and in query parameters. ",
            "Operations of HTTP methods OpenAPI has no key for (custom rules) are under each ",
            "path item's `x-tai-custom-operations`."
        ),
    })
}

/// `google.rpc.Status` as the gateway writes every error (`src/error.rs`).
fn status_schema() -> Value {
    json!({
        "type": "object",
        "description": "an error (google.rpc.Status): the gRPC code, a message and typed details",
        "properties": {
            "code": { "type": "integer", "format": "int32", "description": "google.rpc.Code" },
            "message": { "type": "string" },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "a google.protobuf.Any: `@type` names the detail's type",
                    "properties": { "@type": { "type": "string" } },
                    "required": ["@type"],
                },
            },
        },
        "required": ["code", "message"],
    })
}
