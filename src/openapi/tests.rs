//! Schema mapping, template paths and the served document's tag, on a proto written here.

use std::path::PathBuf;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};
use serde_json::{Value, json};

use super::parameters::path_of;
use super::published::Published;
use super::schema::{Schemas, Style};
use super::security;
use crate::config::{AuthConfig, AuthMode, RouteAuth};
use crate::transcode::template::PathTemplate;

/// `google.api.field_behavior`, declared here (same package, numbers and names as Google's).
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

const SHAPES: &str = r#"syntax = "proto3";
package shapes.v1;
import "google/api/field_behavior.proto";
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// A node of a tree.
message Node {
  // What the node is called.
  string name = 1 [(google.api.field_behavior) = REQUIRED];
  repeated Node children = 2;
  int64 size = 3 [(google.api.field_behavior) = OUTPUT_ONLY];
  uint64 big = 4;
  fixed64 fixed = 5;
  bytes blob = 6;
  Kind kind = 7;
  map<string, Node> by_name = 8;
  map<int32, string> by_number = 9;
  oneof target {
    string url = 10;
    int32 port = 11;
  }
  google.protobuf.Timestamp created = 12;
  google.protobuf.Duration ttl = 13;
  google.protobuf.Struct meta = 14;
  google.protobuf.Value anything = 15;
  google.protobuf.ListValue list = 16;
  google.protobuf.Int64Value count = 17;
  google.protobuf.Any extra = 18;
  google.protobuf.FieldMask mask = 19;
  google.protobuf.Empty nothing = 20;
  string secret = 21 [(google.api.field_behavior) = INPUT_ONLY];
  double ratio = 22;
  uint32 small = 23;
  optional int32 maybe = 24;
  google.protobuf.NullValue nothing_at_all = 25;
  google.protobuf.StringValue label = 26;
}

// What kind of node.
enum Kind {
  KIND_UNSPECIFIED = 0;
  KIND_LEAF = 1;
}

message Lookup {
  string name = 1;
  Node node = 2;
}
"#;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("tai-openapi-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("google/api")).expect("temp dir");
        std::fs::create_dir_all(dir.join("shapes")).expect("temp dir");
        std::fs::write(dir.join("google/api/field_behavior.proto"), FIELD_BEHAVIOR).expect("write");
        std::fs::write(dir.join("shapes/shapes.proto"), SHAPES).expect("write");
        let mut compiler = protox::Compiler::new([dir.clone()]).expect("include path");
        compiler.include_imports(true).include_source_info(true);
        compiler
            .open_files(["shapes/shapes.proto"])
            .expect("protos compile");
        let bytes = compiler.encode_file_descriptor_set();
        let _ = std::fs::remove_dir_all(&dir);
        DescriptorPool::decode(bytes.as_slice()).expect("pool decodes")
    })
}

fn node() -> MessageDescriptor {
    pool().get_message_by_name("shapes.v1.Node").expect("Node")
}

const DEFAULT: Style = Style {
    proto_names: false,
    enum_numbers: false,
};

/// The components after asking for `Node` in `style`.
fn components(style: Style) -> serde_json::Map<String, Value> {
    let mut schemas = Schemas::new(pool());
    let reference = schemas.message(&node(), style);
    assert!(
        reference["$ref"]
            .as_str()
            .is_some_and(|r| r.starts_with("#/components/schemas/shapes.v1.Node"))
    );
    schemas.finish()
}

fn property(name: &str) -> Value {
    components(DEFAULT)["shapes.v1.Node"]["properties"][name].clone()
}

#[test]
fn sixty_four_bit_integers_are_strings_and_enums_are_names() {
    assert_eq!(property("size")["type"], "string");
    assert_eq!(property("size")["format"], "int64");
    assert_eq!(property("big")["format"], "uint64");
    assert_eq!(property("fixed")["type"], "string");
    assert_eq!(property("small")["type"], "integer");
    assert_eq!(property("small")["maximum"], json!(u32::MAX));
    assert_eq!(property("blob")["contentEncoding"], "base64");
    assert_eq!(
        property("kind")["$ref"],
        "#/components/schemas/shapes.v1.Kind"
    );
    let all = components(DEFAULT);
    assert_eq!(
        all["shapes.v1.Kind"]["enum"],
        json!(["KIND_UNSPECIFIED", "KIND_LEAF"])
    );
    assert_eq!(all["shapes.v1.Kind"]["description"], "What kind of node.");
    let ratio = property("ratio");
    assert_eq!(
        ratio["anyOf"][1]["enum"],
        json!(["NaN", "Infinity", "-Infinity"])
    );
}

#[test]
fn well_known_types_take_their_json_forms() {
    assert_eq!(property("created")["format"], "date-time");
    assert!(
        property("ttl")["pattern"]
            .as_str()
            .is_some_and(|p| p.ends_with("s$"))
    );
    assert_eq!(property("meta")["type"], "object");
    assert!(
        property("anything").get("type").is_none(),
        "Value is any JSON"
    );
    assert_eq!(property("list")["type"], "array");
    assert_eq!(property("count")["type"], json!(["string", "null"]));
    assert_eq!(property("label")["type"], json!(["string", "null"]));
    assert_eq!(property("extra")["required"], json!(["@type"]));
    assert_eq!(property("mask")["type"], "string");
    assert_eq!(property("nothingAtAll")["type"], "null");
    let all = components(DEFAULT);
    let empty = &all["google.protobuf.Empty"];
    assert_eq!(empty["type"], "object");
    assert_eq!(empty["properties"], json!({}));
}

#[test]
fn maps_are_objects_and_recursive_messages_are_references() {
    let by_name = property("byName");
    assert_eq!(by_name["type"], "object");
    assert_eq!(
        by_name["additionalProperties"]["$ref"],
        "#/components/schemas/shapes.v1.Node"
    );
    assert_eq!(
        property("byNumber")["propertyNames"]["pattern"],
        "^-?[0-9]+$"
    );
    assert_eq!(
        property("children")["items"]["$ref"],
        "#/components/schemas/shapes.v1.Node"
    );
}

#[test]
fn oneof_members_exclude_each_other_and_proto3_optional_does_not() {
    let all = components(DEFAULT);
    let rules = &all["shapes.v1.Node"]["dependentSchemas"];
    assert_eq!(
        rules["url"]["not"]["anyOf"],
        json!([{ "required": ["port"] }])
    );
    assert_eq!(
        rules["port"]["not"]["anyOf"],
        json!([{ "required": ["url"] }])
    );
    assert!(rules.get("maybe").is_none());
}

#[test]
fn comments_and_field_behavior_become_description_required_read_and_write_only() {
    let all = components(DEFAULT);
    let node = &all["shapes.v1.Node"];
    assert_eq!(node["description"], "A node of a tree.");
    assert_eq!(
        node["properties"]["name"]["description"],
        "What the node is called."
    );
    assert_eq!(node["required"], json!(["name"]));
    assert_eq!(node["properties"]["size"]["readOnly"], true);
    assert_eq!(node["properties"]["secret"]["writeOnly"], true);
}

#[test]
fn proto_names_and_enum_numbers_have_their_own_components() {
    let style = Style {
        proto_names: true,
        enum_numbers: true,
    };
    let all = components(style);
    let node = &all["shapes.v1.Node-proto_names-enum_numbers"];
    assert!(node["properties"].get("by_name").is_some());
    assert!(node["properties"].get("byName").is_none());
    assert_eq!(
        all["shapes.v1.Kind-proto_names-enum_numbers"]["enum"],
        json!([0, 1])
    );
}

fn path(template: &str) -> (String, Vec<Value>) {
    let input = pool()
        .get_message_by_name("shapes.v1.Lookup")
        .expect("Lookup");
    let template = PathTemplate::parse(template).expect("template");
    path_of(&template, &input, &mut Schemas::new(pool()), DEFAULT)
}

#[test]
fn template_variables_become_one_parameter_each() {
    let (key, parameters) = path("/v1/{name=trees/*/nodes/*}:inspect");
    assert_eq!(key, "/v1/{name}:inspect");
    assert_eq!(parameters.len(), 1);
    assert_eq!(
        parameters[0]["schema"]["pattern"],
        "^trees/[^/]+/nodes/[^/]+$"
    );
    assert_eq!(parameters[0]["x-tai-multi-segment"], true);
    let (key, parameters) = path("/v1/files/{name=**}");
    assert_eq!(key, "/v1/files/{name}");
    assert_eq!(parameters[0]["schema"]["pattern"], "^.*$");
    let (key, parameters) = path("/v1/{node.name}/x/*");
    assert_eq!(key, "/v1/{node.name}/x/{_wildcard2}");
    assert_eq!(parameters[0]["x-tai-field"], "node.name");
    assert_eq!(parameters[1]["name"], "_wildcard2");
    assert_eq!(path("/").0, "/");
}

#[test]
fn the_tag_matches_itself_its_gzip_form_and_star_only() {
    let published = Published::of(&json!({ "openapi": "3.1.0" }));
    let json = published.json();
    let tag = json.etag().to_owned();
    assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 42);
    assert!(json.matches(&tag));
    assert!(json.matches(&format!("\"x\", W/{tag}")));
    assert!(json.matches(&format!("{}-gzip\"", &tag[..41])));
    assert!(json.matches("*"));
    assert!(!json.matches("\"other\""));
    assert_ne!(published.yaml().expect("yaml").etag(), tag);
}

#[test]
fn the_yaml_form_reads_back_as_the_same_document() {
    let mut schemas = Schemas::new(pool());
    schemas.message(&node(), DEFAULT);
    let doc = json!({
        "openapi": "3.1.0",
        "paths": { "/v1/{name}:x": { "get": { "responses": { "200": { "description": "OK" } } } } },
        "components": { "schemas": schemas.finish() },
        "tricky": ["true", "null", "007", "1e3", "*/*", "@type", "- a", "a: b", "#x", "", "NaN", "~"],
    });
    let published = Published::of(&doc);
    let text = std::str::from_utf8(published.yaml().expect("yaml").body()).expect("utf-8");
    let back: Value = serde_saphyr::from_str(text).expect("YAML reads back");
    assert_eq!(back, doc);
}

#[test]
fn required_and_optional_routes_list_their_scopes() {
    let auth = AuthConfig {
        query_parameter: Some("access_token".to_owned()),
        ..AuthConfig::default()
    };
    let mut rules = RouteAuth {
        mode: AuthMode::Required,
        require_scopes: vec!["nodes:read".to_owned()],
        ..RouteAuth::default()
    };
    let required = security::requirements(&rules, &auth).expect("some");
    assert_eq!(
        required,
        json!([{ "bearerAuth": ["nodes:read"] }, { "tokenQuery": ["nodes:read"] }])
    );
    rules.mode = AuthMode::Optional;
    let optional = security::requirements(&rules, &auth).expect("some");
    assert_eq!(optional[2], json!({}));
    rules.mode = AuthMode::None;
    assert!(security::requirements(&rules, &auth).is_none());
    let schemes = security::schemes(&auth, true).expect("schemes");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["tokenQuery"]["in"], "query");
}
