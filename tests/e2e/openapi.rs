//! The OpenAPI document end to end: `GET /openapi.json` on the public listener describes every
//! binding of the live route table (checked by walking the runtime's router), parses as OpenAPI
//! 3.1 (the `oas3` crate) with every `$ref` resolving, answers `If-None-Match` with 304, follows
//! reloads, can be moved or turned off, and is what `tai-gateway openapi` prints. A second proto,
//! written here, proves the generator is not shaped around the TAI protos.

use std::collections::{BTreeSet, HashMap};

use http::{Method, StatusCode};
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::Value;
use tai_gateway::runtime::Runtime;
use tai_gateway::transcode::request::BodyRule;
use tai_gateway::transcode::template::PathTemplate;

use crate::harness::{Reply, TempDir, TestEnv, http1_client, proto_dir, send_with, start_gateway};

/// The document, checked to be OpenAPI 3.1 by `oas3` and by the invariants below.
fn parse(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let spec = oas3::from_json(&reply.body).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    spec.validate_version().expect("an OpenAPI 3.1 version");
    for (path, method, op) in spec.operations() {
        for parameter in &op.parameters {
            let parameter = parameter.resolve(&spec).expect("parameter resolves");
            assert!(
                parameter.schema.is_some(),
                "{method} {path}: {}",
                parameter.name
            );
        }
        for (code, response) in &op.responses.clone().unwrap_or_default() {
            response
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{method} {path} {code}: {e}"));
        }
    }
    let doc = reply.json();
    check_invariants(&doc);
    doc
}

/// What the OpenAPI 3.1 text requires beyond its JSON schema: references resolve, operation ids
/// are unique, every `{name}` of a path is a required path parameter of each of its operations,
/// and no two paths differ only in their parameters' names.
fn check_invariants(doc: &Value) {
    assert!(doc["components"]["schemas"].is_object());
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for reference in refs {
        let (kind, name) = reference
            .strip_prefix("#/components/")
            .and_then(|r| r.split_once('/'))
            .expect("a component ref");
        let target = &doc["components"][kind][name];
        assert!(target.is_object(), "dangling $ref {reference}");
    }
    let mut ids = BTreeSet::new();
    let mut shapes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(shapes.insert(shape(path)), "two paths shaped like {path}");
        let names: BTreeSet<String> = path_names(path);
        for (_, op) in operations(item) {
            assert!(ids.insert(op["operationId"].as_str().expect("id").to_owned()));
            let declared: BTreeSet<String> = parameters(op, "path")
                .iter()
                .inspect(|p| assert_eq!(p["required"], true))
                .map(|p| p["name"].as_str().expect("name").to_owned())
                .collect();
            assert_eq!(declared, names, "path parameters of {path}");
            assert_eq!(
                op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/google.rpc.Status"
            );
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// `/v1/{name}/x` → `/v1/{}/x`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

fn path_names(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// The operations of a path item, standard methods and `x-tai-custom-operations` alike.
fn operations(item: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (key, value) in item.as_object().expect("path item") {
        if key == "x-tai-custom-operations" {
            out.extend(
                value
                    .as_object()
                    .expect("custom")
                    .iter()
                    .map(|(m, op)| (m.clone(), op)),
            );
        } else {
            out.push((key.to_uppercase(), value));
        }
    }
    out
}

fn parameters<'d>(op: &'d Value, place: &str) -> Vec<&'d Value> {
    op["parameters"]
        .as_array()
        .map(|list| list.iter().filter(|p| p["in"] == place).collect())
        .unwrap_or_default()
}

/// The OpenAPI path a template should have: each variable as `{field.path}`.
fn expected_path(template: &PathTemplate) -> String {
    let text = template.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("closed") + open;
        let name = rest[open + 1..close].split('=').next().expect("name");
        out.push_str(&format!("{{{name}}}"));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The query parameters the gateway accepts for a binding, by this test's own reading of
/// `google/api/http.proto`: fields not bound by path or body, through singular messages.
fn expected_query(input: &MessageDescriptor, body: &BodyRule, path: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !matches!(body, BodyRule::Whole) {
        let body_field = match body {
            BodyRule::Field(f) => Some(f.name().to_owned()),
            _ => None,
        };
        let mut stack = vec![input.full_name().to_owned()];
        query_leaves(input, ("", ""), (&body_field, path), &mut stack, &mut out);
    }
    out
}

fn query_leaves(
    msg: &MessageDescriptor,
    (prefix, proto_prefix): (&str, &str),
    (body, path): (&Option<String>, &[String]),
    stack: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) {
    for field in msg.fields() {
        let name = format!("{prefix}{}", field.json_name());
        let proto = format!("{proto_prefix}{}", field.name());
        if field.is_map() || body.as_deref() == Some(proto.as_str()) || path.contains(&proto) {
            continue;
        }
        match field.kind() {
            Kind::Message(m) if m.full_name().starts_with("google.protobuf.") => {
                let text_form = ["Timestamp", "Duration", "FieldMask"]
                    .iter()
                    .any(|t| m.name() == *t)
                    || (m.name().ends_with("Value") && !["Value", "ListValue"].contains(&m.name()));
                if text_form {
                    out.insert(name);
                }
            }
            Kind::Message(m) => {
                if field.is_list() || stack.contains(&m.full_name().to_owned()) {
                    continue;
                }
                stack.push(m.full_name().to_owned());
                let prefixes = (format!("{name}."), format!("{proto}."));
                query_leaves(&m, (&prefixes.0, &prefixes.1), (body, path), stack, out);
                stack.pop();
            }
            _ => {
                out.insert(name);
            }
        }
    }
}

/// Every binding of `runtime` has its operation, with the right path and query parameters and a
/// request body exactly when its rule has one.
fn check_covers_every_binding(runtime: &Runtime, doc: &Value) {
    let paths = doc["paths"].as_object().expect("paths");
    let by_shape: HashMap<String, &Value> =
        paths.iter().map(|(p, item)| (shape(p), item)).collect();
    let mut count = 0;
    for (method, template, binding) in runtime.router.routes() {
        let label = format!("{method} {template}");
        let item = by_shape[&shape(&expected_path(template))];
        let op = operations(item)
            .into_iter()
            .find(|(m, _)| m == method)
            .map(|(_, op)| op)
            .unwrap_or_else(|| panic!("no operation for {label}"));
        if op["x-tai-http-rule"]["template"] != binding.template {
            // Its place was taken by an equal-shaped binding: it must be named as unlisted.
            let unlisted = doc["x-tai-unlisted-bindings"].as_array().expect("unlisted");
            assert!(
                unlisted
                    .iter()
                    .any(|u| u["template"] == binding.template && u["method"] == method),
                "{label} neither documented nor listed as unlisted"
            );
            continue;
        }
        assert_eq!(op["x-tai-grpc-method"], binding.method.full_name, "{label}");
        assert_eq!(
            op["x-tai-http-rule"]["template"], binding.template,
            "{label}"
        );
        let fields: BTreeSet<String> = parameters(op, "path")
            .iter()
            .map(|p| p["x-tai-field"].as_str().expect("x-tai-field").to_owned())
            .collect();
        let variables: BTreeSet<String> = template.variables().map(str::to_owned).collect();
        assert_eq!(fields, variables, "{label}");
        let query: BTreeSet<String> = parameters(op, "query")
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect();
        let path_fields: Vec<String> = variables.into_iter().collect();
        let expected = expected_query(&binding.method.input, &binding.body, &path_fields);
        assert_eq!(query, expected, "{label}");
        let has_body = !matches!(binding.body, BodyRule::None);
        assert_eq!(op.get("requestBody").is_some(), has_body, "{label}");
        count += 1;
    }
    assert!(count > 0);
}

#[tokio::test]
async fn openapi_document_covers_every_binding_of_the_default_config() {
    let env = TestEnv::start().await;
    let doc = parse(&env.get("/openapi.json").await);
    let runtime = env.gateway.gateway.runtime();
    check_covers_every_binding(&runtime, &doc);
    let paths = &doc["paths"];
    // A custom method, a custom verb, a multi-segment and a `**` variable, a nested variable
    // sharing its path with a plain one.
    assert!(paths["/v1/cache"]["x-tai-custom-operations"]["PURGE"].is_object());
    assert!(paths["/v1/policies/{id}:enforce"]["post"].is_object());
    let action = &paths["/v1/{name}"]["get"]["parameters"][0];
    assert_eq!(action["schema"]["pattern"], "^agents/[^/]+/actions/[^/]+$");
    let document = &paths["/v1/documents/{path}"]["get"]["parameters"][0];
    assert_eq!(document["x-tai-multi-segment"], true);
    let update = &paths["/v1/policies/{id}"]["patch"];
    assert_eq!(update["parameters"][0]["x-tai-field"], "policy.id");
    assert_eq!(
        update["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/tai.Policy"
    );
    // body "*" minus the path's field; HttpBody raw; response_body; streams.
    let enforce = &paths["/v1/policies/{id}:enforce"]["post"]["requestBody"];
    let body = &enforce["content"]["application/json"]["schema"];
    assert!(body["properties"].get("id").is_none() && body["properties"]["dryRun"].is_object());
    assert!(
        paths["/v1/policies/{id}:export"]["get"]["responses"]["200"]["content"]["*/*"].is_object()
    );
    let rules = &paths["/v1/policies/{id}/rules"]["get"]["responses"]["200"];
    assert_eq!(
        rules["content"]["application/json"]["schema"]["type"],
        "object"
    );
    let watch = &paths["/v1/policies:watch"]["get"]["responses"]["200"]["content"];
    assert_eq!(watch["application/json"]["schema"]["type"], "array");
    assert!(watch["application/x-ndjson"].is_object() && watch["text/event-stream"].is_object());
    let policy = &doc["components"]["schemas"]["tai.Policy"]["properties"];
    assert_eq!(policy["version"]["type"], "string");
    assert_eq!(policy["createdAt"]["format"], "date-time");
    assert_eq!(policy["rules"]["additionalProperties"]["type"], "string");
}

/// A value of `schema` as query text.
fn sample(schema: &Value, doc: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        return target["enum"][0]
            .as_str()
            .map_or("0".to_owned(), str::to_owned);
    }
    if schema["type"] == "array" {
        return sample(&schema["items"], doc);
    }
    match (&schema["type"], schema["format"].as_str()) {
        (_, Some("date-time")) => "2024-05-01T10:00:00Z".to_owned(),
        (Value::String(t), Some("int64" | "uint64")) if t == "string" => "7".to_owned(),
        (t, _) if *t == "integer" || t.as_array().is_some_and(|a| a[0] == "integer") => {
            "7".to_owned()
        }
        (t, _) if *t == "boolean" || t.as_array().is_some_and(|a| a[0] == "boolean") => {
            "true".to_owned()
        }
        _ if schema["contentEncoding"] == "base64" => "AAE=".to_owned(),
        _ if schema["anyOf"].is_array() => "1.5".to_owned(),
        _ if schema["pattern"]
            .as_str()
            .is_some_and(|p| p.ends_with("s$")) =>
        {
            "1.5s".to_owned()
        }
        _ => "abc".to_owned(),
    }
}

#[tokio::test]
async fn every_documented_query_parameter_is_accepted_by_the_gateway() {
    let env = TestEnv::start().await;
    let doc = parse(&env.get("/openapi.json").await);
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(op) = item
            .get("get")
            .filter(|op| op.get("x-tai-streaming").is_none())
        else {
            continue;
        };
        let mut url = path.clone();
        for p in parameters(op, "path") {
            let value = match p["x-tai-segments"].as_str() {
                Some(segments) => segments.replace("**", "a/b").replace('*', "a"),
                None => sample(&p["schema"], &doc),
            };
            url = url.replace(
                &format!("{{{}}}", p["name"].as_str().expect("name")),
                &value,
            );
        }
        for q in parameters(op, "query") {
            let name = q["name"].as_str().expect("name");
            let value = sample(&q["schema"], &doc);
            let reply = env.get(&format!("{url}?{name}={value}")).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "GET {url}?{name}={value}: {}",
                reply.body
            );
            tried += 1;
        }
    }
    assert!(tried > 20, "only {tried} parameters tried");
}

#[tokio::test]
async fn openapi_answers_if_none_match_with_304_and_follows_a_reload() {
    let env = TestEnv::start_with(|c| c + "reload:\n  watch: false\n").await;
    let first = env.get("/openapi.json").await;
    let etag = first.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let again = env
        .send(
            Method::GET,
            "/openapi.json",
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let zipped = env
        .send(
            Method::GET,
            "/openapi.json",
            &[("accept-encoding", "gzip")],
            None,
        )
        .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let gzip_tag = zipped.header("etag").expect("etag").to_owned();
    assert_ne!(gzip_tag, etag);
    let revalidated = env
        .send(
            Method::GET,
            "/openapi.json",
            &[("if-none-match", &gzip_tag)],
            None,
        )
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    let path = env.dir.path().join("gateway.yaml");
    let config = std::fs::read_to_string(&path).expect("read config");
    let without = config.replace(
        "  - service: tai.Coordinator\n    upstream: coordinator\n",
        "",
    );
    assert_ne!(config, without);
    std::fs::write(&path, without).expect("write config");
    assert!(env.gateway.reload("test").await.ok);
    let reloaded = env
        .send(
            Method::GET,
            "/openapi.json",
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(reloaded.status, StatusCode::OK);
    assert_ne!(reloaded.header("etag"), Some(etag.as_str()));
    let doc = parse(&reloaded);
    assert!(doc["paths"].get("/v1/actions").is_none());
    assert!(doc["paths"].get("/v1/policies").is_some());
}

#[tokio::test]
async fn the_yaml_form_is_the_same_document_with_its_own_tag() {
    let env = TestEnv::start().await;
    let json = env.get("/openapi.json").await;
    let yaml = env.get("/openapi.yaml").await;
    assert_eq!(yaml.status, StatusCode::OK);
    assert_eq!(yaml.header("content-type"), Some("application/yaml"));
    let read: Value = serde_saphyr::from_str(&yaml.body).expect("YAML");
    assert_eq!(read, json.json());
    let tag = yaml.header("etag").expect("etag").to_owned();
    assert_ne!(Some(tag.as_str()), json.header("etag"));
    let again = env
        .send(
            Method::GET,
            "/openapi.yaml",
            &[("if-none-match", &tag)],
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn openapi_can_be_moved_or_turned_off() {
    let off = TestEnv::start_with(|c| c + "openapi:\n  enabled: false\n").await;
    assert_eq!(off.get("/openapi.json").await.status, StatusCode::NOT_FOUND);
    assert_eq!(off.get("/openapi.yaml").await.status, StatusCode::NOT_FOUND);
    let moved = TestEnv::start_with(|c| c + "openapi:\n  path: /v1/spec.json\n").await;
    assert_eq!(
        moved.get("/openapi.json").await.status,
        StatusCode::NOT_FOUND
    );
    parse(&moved.get("/v1/spec.json").await);
    assert_eq!(moved.get("/v1/spec.yaml").await.status, StatusCode::OK);
    assert_eq!(
        moved.get("/openapi.yaml").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_openapi_path_a_route_answers_is_a_config_error_with_its_line() {
    let stubs = crate::harness::start_stubs().await;
    let text = crate::harness::default_config(&stubs) + "openapi:\n  path: /v1/policies\n";
    let line = text.lines().count();
    let dir = TempDir::new();
    let path = dir.write("gateway.yaml", &text);
    let config = tai_gateway::config::Config::parse(&path, &text).expect("valid YAML");
    let errors = Runtime::build(config).expect_err("the path collides");
    let shown = errors[0].to_string();
    assert!(
        shown.starts_with(&format!("{}:{line}:", path.display())),
        "{shown}"
    );
    assert!(
        shown.contains("openapi.path") && shown.contains("tai.Governor/ListPolicies"),
        "{shown}"
    );
    let text = crate::harness::default_config(&stubs) + "openapi:\n  path: spec.json\n";
    let errors = tai_gateway::config::Config::parse(&path, &text).expect_err("not a path");
    let shown = errors.to_string();
    assert!(
        shown.contains(&format!(":{line}:9: openapi.path:")),
        "{shown}"
    );
}

#[tokio::test]
async fn the_openapi_command_prints_the_served_document() {
    let env = TestEnv::start().await;
    let served = env.get("/openapi.json").await.json();
    let config = env.dir.path().join("gateway.yaml");
    for args in [vec!["openapi", "--config"], vec!["openapi"]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
            .args(args)
            .arg(&config)
            .env("RUST_LOG", "error")
            .output()
            .expect("run tai-gateway openapi");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
        assert_eq!(printed, served);
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["openapi", "--yaml", "-c"])
        .arg(&config)
        .output()
        .expect("run tai-gateway openapi --yaml");
    assert!(output.status.success());
    let yaml = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        serde_saphyr::from_str::<Value>(&yaml).expect("YAML"),
        served
    );
    let broken = env.dir.write("broken.yaml", "listeners: {}\nroutes: []\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["openapi", "--config"])
        .arg(&broken)
        .output()
        .expect("run tai-gateway openapi");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
}

/// A proto unlike the TAI ones: nested and recursive messages, maps, enums, a oneof, repeated
/// fields, well-known types, `**` and multi-segment templates, a custom verb and method, a
/// server stream, `body: field`, field behaviour and comments.
const FLEET: &str = r#"syntax = "proto3";
package fleet.v1;
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// Ships and their cargo.
service Fleet {
  // Reads one ship.
  rpc GetShip(GetShipRequest) returns (Ship) {
    option (google.api.http) = { get: "/v2/{name=fleets/*/ships/*}" };
  }
  rpc ListCargo(ListCargoRequest) returns (stream Cargo) {
    option (google.api.http) = { get: "/v2/{parent=fleets/*/ships/*}/cargo" };
  }
  rpc Fetch(FetchRequest) returns (Blob) {
    option (google.api.http) = { get: "/v2/blobs/{path=**}" };
  }
  // Served next to Fetch (the router prefers `*` to `**`), but OpenAPI has one GET per path.
  rpc Peek(FetchRequest) returns (Blob) {
    option (google.api.http) = { get: "/v2/blobs/{path}" };
  }
  rpc Dock(DockRequest) returns (Ship) {
    option (google.api.http) = {
      post: "/v2/{name=fleets/*/ships/*}:dock"
      body: "*"
      additional_bindings { custom { kind: "LOCK" path: "/v2/{name=fleets/*/ships/*}:lock" } }
    };
  }
  rpc Rename(RenameRequest) returns (Ship) {
    option (google.api.http) = { patch: "/v2/{ship.name=fleets/*/ships/*}" body: "ship" };
  }
  rpc Clear(google.protobuf.Empty) returns (google.protobuf.Empty) {
    option (google.api.http) = { delete: "/v2/cache" };
  }
}

// A ship of a fleet.
message Ship {
  // fleets/{fleet}/ships/{ship}
  string name = 1 [(google.api.field_behavior) = REQUIRED];
  message Hull {
    int64 mass_kg = 1;
    message Deck {
      string label = 1;
      Deck below = 2;
    }
    repeated Deck decks = 2;
  }
  Hull hull = 2;
  map<string, Cargo> holds = 3;
  enum Status {
    STATUS_UNSPECIFIED = 0;
    AFLOAT = 1;
    DOCKED = 2;
  }
  Status status = 4;
  oneof position {
    Coordinates at = 5;
    string port = 6;
  }
  google.protobuf.Timestamp launched = 7 [(google.api.field_behavior) = OUTPUT_ONLY];
  google.protobuf.Duration uptime = 8;
  google.protobuf.Struct notes = 9;
  google.protobuf.DoubleValue draft = 10;
  repeated string tags = 11;
  uint64 serial = 12;
}

message Coordinates {
  double lat = 1;
  double lon = 2;
}

message Cargo {
  string id = 1;
  bytes manifest = 2;
  fixed64 weight = 3;
}

message GetShipRequest {
  string name = 1;
  google.protobuf.FieldMask view = 2;
  Ship.Status status_filter = 3;
}

message ListCargoRequest {
  string parent = 1;
  int32 page_size = 2;
  message Filter {
    repeated string ids = 1;
    google.protobuf.Timestamp since = 2;
  }
  Filter filter = 3;
}

message FetchRequest { string path = 1; }
message Blob {
  string path = 1;
  bytes data = 2;
}
message DockRequest {
  string name = 1;
  string berth = 2;
  bool force = 3;
}
message RenameRequest {
  Ship ship = 1;
  google.protobuf.FieldMask update_mask = 2;
}
"#;

/// `google.api.field_behavior`, declared for this test (Google's package, numbers and names).
const FIELD_BEHAVIOR: &str = r#"syntax = "proto3";
package google.api;
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions {
  repeated FieldBehavior field_behavior = 1052 [packed = false];
}
enum FieldBehavior {
  FIELD_BEHAVIOR_UNSPECIFIED = 0;
  OPTIONAL = 1;
  REQUIRED = 2;
  OUTPUT_ONLY = 3;
  INPUT_ONLY = 4;
}
"#;

#[tokio::test]
async fn openapi_describes_an_unseen_proto_faithfully() {
    let dir = TempDir::new();
    dir.write("protos/fleet/v1/fleet.proto", FLEET);
    dir.write("protos/google/api/field_behavior.proto", FIELD_BEHAVIOR);
    let text = format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{protos}"]
  include_paths: ["{repo}"]
upstreams:
  fleet:
    address: 127.0.0.1:1
routes:
  - service: fleet.v1.Fleet
    upstream: fleet
    auth: {{ mode: required, require_scopes: [fleet:read] }}
    rate_limits: [per_ip]
    transcoding: {{ stream_format: ndjson }}
auth:
  providers:
    hs:
      issuer: hs-issuer
      algorithms: [HS256]
      shared_secret: "an-hs256-secret-of-at-least-32-bytes!!"
rate_limits:
  limits:
    per_ip: {{ rate: 10/s, burst: 10, key: ip }}
"#,
        protos = dir.path().join("protos").display(),
        repo = proto_dir().display(),
    );
    let path = dir.write("gateway.yaml", &text);
    let gateway = start_gateway(&path, &text).await;
    let url = format!("http://{}/openapi.json", gateway.http_addr.expect("http"));
    let reply = send_with(&http1_client(), Method::GET, &url, &[], None).await;
    let doc = parse(&reply);
    check_covers_every_binding(&gateway.gateway.runtime(), &doc);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| p.starts_with("/v2/")),
        "only the routed service"
    );
    let get = &paths["/v2/{name}"]["get"];
    assert_eq!(get["description"], "Reads one ship.");
    assert_eq!(
        doc["tags"],
        serde_json::json!([{ "name": "fleet.v1.Fleet", "description": "Ships and their cargo." }])
    );
    assert_eq!(
        get["parameters"][0]["schema"]["pattern"],
        "^fleets/[^/]+/ships/[^/]+$"
    );
    assert_eq!(
        get["security"],
        serde_json::json!([{ "bearerAuth": ["fleet:read"] }])
    );
    assert!(get["responses"]["200"]["headers"]["RateLimit-Remaining"].is_object());
    assert!(get["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(get["responses"]["401"].is_object());
    let rename = &paths["/v2/{name}"]["patch"];
    assert_eq!(rename["parameters"][0]["x-tai-field"], "ship.name");
    assert!(paths["/v2/{name}:lock"]["x-tai-custom-operations"]["LOCK"].is_object());
    let dock =
        &paths["/v2/{name}:dock"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(dock["properties"].get("name").is_none() && dock["properties"]["berth"].is_object());
    assert_eq!(
        paths["/v2/blobs/{path}"]["get"]["parameters"][0]["schema"]["pattern"],
        "^.*$"
    );
    assert_eq!(
        doc["x-tai-unlisted-bindings"],
        serde_json::json!([{
            "method": "GET",
            "template": "/v2/blobs/{path}",
            "grpc_method": "fleet.v1.Fleet/Peek",
            "path": "/v2/blobs/{path}",
        }])
    );
    let cargo = &paths["/v2/{parent}/cargo"]["get"]["responses"]["200"];
    assert_eq!(cargo["x-tai-stream-format"], "ndjson");
    assert_eq!(
        cargo["content"]["application/x-ndjson"]["schema"]["$ref"],
        "#/components/schemas/fleet.v1.Cargo"
    );
    assert!(paths["/v2/cache"]["delete"].get("requestBody").is_none());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"],
        "JWT"
    );
    check_fleet_schemas(&doc["components"]["schemas"]);
    gateway.shutdown().await;
}

fn check_fleet_schemas(schemas: &Value) {
    let ship = &schemas["fleet.v1.Ship"];
    assert_eq!(ship["description"], "A ship of a fleet.");
    assert_eq!(ship["required"], serde_json::json!(["name"]));
    let p = &ship["properties"];
    assert_eq!(p["name"]["description"], "fleets/{fleet}/ships/{ship}");
    assert_eq!(p["hull"]["$ref"], "#/components/schemas/fleet.v1.Ship.Hull");
    assert_eq!(
        p["holds"]["additionalProperties"]["$ref"],
        "#/components/schemas/fleet.v1.Cargo"
    );
    assert_eq!(
        p["status"]["$ref"],
        "#/components/schemas/fleet.v1.Ship.Status"
    );
    assert_eq!(p["launched"]["readOnly"], true);
    assert_eq!(p["uptime"]["type"], "string");
    assert_eq!(p["notes"]["type"], "object");
    assert_eq!(p["draft"]["anyOf"][1]["type"], "null");
    assert_eq!(p["tags"]["items"]["type"], "string");
    assert_eq!(p["serial"]["type"], "string");
    assert!(ship["dependentSchemas"]["at"].is_object());
    assert_eq!(
        schemas["fleet.v1.Ship.Status"]["enum"],
        serde_json::json!(["STATUS_UNSPECIFIED", "AFLOAT", "DOCKED"])
    );
    let deck = &schemas["fleet.v1.Ship.Hull.Deck"]["properties"]["below"];
    assert_eq!(deck["$ref"], "#/components/schemas/fleet.v1.Ship.Hull.Deck");
    assert_eq!(
        schemas["fleet.v1.Ship.Hull"]["properties"]["massKg"]["type"],
        "string"
    );
    assert_eq!(
        schemas["fleet.v1.Cargo"]["properties"]["weight"]["format"],
        "uint64"
    );
}
