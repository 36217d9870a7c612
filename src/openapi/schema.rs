//! Protobuf types → JSON Schema 2020-12 (the dialect OpenAPI 3.1 uses), following the proto3 JSON
//! mapping as the gateway prints and reads it (`transcode::json`):
//!
//! - 64-bit integers are strings (`"5"`): the gateway prints them so and accepts both forms;
//! - enums are their names (numbers with `transcoding.enums_as_ints`);
//! - `bytes` are base64 text; floats are numbers or `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - well-known types take their JSON forms: Timestamp an RFC 3339 string, Duration `"1.5s"`,
//!   FieldMask one comma-separated string, Struct / Value / ListValue plain JSON, wrappers their
//!   bare value or `null`, Any an object with `@type`;
//! - maps are objects (`additionalProperties`), repeated fields arrays;
//! - every ordinary message and enum is a component reached by `$ref`, which makes recursive
//!   messages finite; members of a oneof exclude each other (`dependentSchemas`).
//!
//! Proto comments become `description`s; `google.api.field_behavior` (when the pool has it)
//! makes REQUIRED fields `required`, OUTPUT_ONLY ones `readOnly`, INPUT_ONLY ones `writeOnly`.

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    Value as ProtoValue,
};
use serde_json::{Map, Value, json};

use crate::transcode::json::{EncodeOptions, Wkt, classify_wkt};

/// How a route prints JSON, as far as schemas differ by it: member names and enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Style {
    /// Members are proto field names (`policy_name`), not lowerCamel JSON names.
    pub(crate) proto_names: bool,
    /// Enums are numbers, not names.
    pub(crate) enum_numbers: bool,
}

impl Style {
    /// The style of a route's JSON output.
    pub(crate) fn of(encode: &EncodeOptions) -> Style {
        Style {
            proto_names: encode.proto_field_names,
            enum_numbers: encode.enums_as_ints,
        }
    }

    /// The member name `field` has in this style.
    pub(crate) fn key(self, field: &FieldDescriptor) -> String {
        if self.proto_names {
            field.name().to_owned()
        } else {
            field.json_name().to_owned()
        }
    }

    /// The suffix of component names in this style (none for the default style).
    fn suffix(self) -> &'static str {
        match (self.proto_names, self.enum_numbers) {
            (false, false) => "",
            (true, false) => "-proto_names",
            (false, true) => "-enum_numbers",
            (true, true) => "-proto_names-enum_numbers",
        }
    }
}

/// `google.api.field_behavior` values this module reads (`google/api/field_behavior.proto`).
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const INPUT_ONLY: i32 = 4;

/// The component schemas of one document, filled as operations refer to types.
pub(crate) struct Schemas {
    components: BTreeMap<String, Value>,
    /// Messages referred to whose component is not built yet.
    pending: Vec<(String, MessageDescriptor, Style)>,
    field_behavior: Option<ExtensionDescriptor>,
}

impl Schemas {
    /// An empty set of components for types of `pool`.
    pub(crate) fn new(pool: &DescriptorPool) -> Schemas {
        Schemas {
            components: BTreeMap::new(),
            pending: Vec::new(),
            field_behavior: pool.get_extension_by_name("google.api.field_behavior"),
        }
    }

    /// Adds a hand-written component (the error body) unless one of that name exists.
    pub(crate) fn insert(&mut self, name: &str, schema: Value) {
        self.components.entry(name.to_owned()).or_insert(schema);
    }

    /// Every component, once each message referred to has been built.
    pub(crate) fn finish(mut self) -> Map<String, Value> {
        while let Some((name, desc, style)) = self.pending.pop() {
            let schema = self.message_object(&desc, style);
            self.components.insert(name, schema);
        }
        self.components.into_iter().collect()
    }

    /// The schema of a message value: its JSON form for well-known types, else a `$ref`.
    pub(crate) fn message(&mut self, desc: &MessageDescriptor, style: Style) -> Value {
        if let Some(wkt) = classify_wkt(desc) {
            return self.well_known(wkt, desc, style);
        }
        let name = format!("{}{}", desc.full_name(), style.suffix());
        if !self.components.contains_key(&name) {
            // A placeholder first, so a recursive reference does not queue the type twice.
            self.components.insert(name.clone(), Value::Null);
            self.pending.push((name.clone(), desc.clone(), style));
        }
        reference(&name)
    }

    /// The schema of a field's whole value: arrays for repeated fields, objects for maps,
    /// with the field's description and behaviour.
    pub(crate) fn field(&mut self, field: &FieldDescriptor, style: Style) -> Value {
        let mut schema = if field.is_map() {
            self.map(field, style)
        } else if field.is_list() {
            json!({ "type": "array", "items": self.kind(&field.kind(), style) })
        } else {
            self.kind(&field.kind(), style)
        };
        if let Value::Object(object) = &mut schema {
            if let Some(text) = comments(field.parent_file(), field.path()) {
                object.insert("description".to_owned(), Value::String(text));
            }
            let behavior = self.behavior(field);
            if behavior.contains(&OUTPUT_ONLY) {
                object.insert("readOnly".to_owned(), Value::Bool(true));
            }
            if behavior.contains(&INPUT_ONLY) {
                object.insert("writeOnly".to_owned(), Value::Bool(true));
            }
        }
        schema
    }

    /// The schema of one element of kind `kind` (a map's value, a repeated field's item).
    pub(crate) fn kind(&mut self, kind: &Kind, style: Style) -> Value {
        match kind {
            Kind::Message(desc) => self.message(desc, style),
            Kind::Enum(desc) => self.enumeration(desc, style),
            scalar => scalar_schema(scalar),
        }
    }

    /// Whether `google.api.field_behavior` marks `field` REQUIRED.
    pub(crate) fn is_required(&self, field: &FieldDescriptor) -> bool {
        self.behavior(field).contains(&REQUIRED)
    }

    fn behavior(&self, field: &FieldDescriptor) -> Vec<i32> {
        let Some(ext) = &self.field_behavior else {
            return Vec::new();
        };
        let options = field.options();
        if !options.has_extension(ext) {
            return Vec::new();
        }
        match options.get_extension(ext).as_ref() {
            ProtoValue::List(items) => items
                .iter()
                .filter_map(ProtoValue::as_enum_number)
                .collect(),
            ProtoValue::EnumNumber(n) => vec![*n],
            _ => Vec::new(),
        }
    }

    fn map(&mut self, field: &FieldDescriptor, style: Style) -> Value {
        let Kind::Message(entry) = field.kind() else {
            return json!({ "type": "object" });
        };
        let value = self.kind(&entry.map_entry_value_field().kind(), style);
        let names = match entry.map_entry_key_field().kind() {
            Kind::Bool => json!({ "enum": ["true", "false"] }),
            Kind::String => json!({ "type": "string" }),
            _ => json!({ "pattern": "^-?[0-9]+$" }),
        };
        json!({ "type": "object", "propertyNames": names, "additionalProperties": value })
    }

    fn enumeration(&mut self, desc: &EnumDescriptor, style: Style) -> Value {
        if desc.full_name() == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        let name = format!("{}{}", desc.full_name(), style.suffix());
        if !self.components.contains_key(&name) {
            let mut schema = if style.enum_numbers {
                let numbers: Vec<i32> = desc.values().map(|v| v.number()).collect();
                json!({ "type": "integer", "format": "int32", "enum": numbers })
            } else {
                let names: Vec<String> = desc.values().map(|v| v.name().to_owned()).collect();
                json!({ "type": "string", "enum": names })
            };
            if let (Some(text), Value::Object(object)) =
                (comments(desc.parent_file(), desc.path()), &mut schema)
            {
                object.insert("description".to_owned(), Value::String(text));
            }
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// The component of an ordinary message: its members, the required ones, its oneofs.
    fn message_object(&mut self, desc: &MessageDescriptor, style: Style) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in desc.fields() {
            let key = style.key(&field);
            if self.is_required(&field) {
                required.push(Value::String(key.clone()));
            }
            properties.insert(key, self.field(&field, style));
        }
        let mut object = Map::new();
        object.insert("type".to_owned(), json!("object"));
        if let Some(text) = comments(desc.parent_file(), desc.path()) {
            object.insert("description".to_owned(), Value::String(text));
        }
        object.insert("properties".to_owned(), Value::Object(properties));
        if !required.is_empty() {
            object.insert("required".to_owned(), Value::Array(required));
        }
        if let Some(exclusive) = oneof_exclusions(desc, style) {
            object.insert("dependentSchemas".to_owned(), exclusive);
        }
        Value::Object(object)
    }

    fn well_known(&mut self, wkt: Wkt, desc: &MessageDescriptor, style: Style) -> Value {
        match wkt {
            Wkt::Timestamp => json!({
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339 time in UTC (google.protobuf.Timestamp), e.g. `2024-05-01T10:00:00Z`",
            }),
            Wkt::Duration => json!({
                "type": "string",
                "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                "description": "seconds with up to 9 fractional digits and an `s` (google.protobuf.Duration), e.g. `1.500s`",
            }),
            Wkt::FieldMask => json!({
                "type": "string",
                "description": "comma-separated lowerCamel field paths (google.protobuf.FieldMask), e.g. `policyName,rules`",
            }),
            Wkt::Struct => {
                json!({ "type": "object", "description": "any JSON object (google.protobuf.Struct)" })
            }
            Wkt::Value => json!({ "description": "any JSON value (google.protobuf.Value)" }),
            Wkt::ListValue => {
                json!({ "type": "array", "description": "any JSON array (google.protobuf.ListValue)" })
            }
            Wkt::Any => json!({
                "type": "object",
                "description": "a message of any type, named by `@type` (google.protobuf.Any)",
                "properties": { "@type": { "type": "string", "examples": ["type.googleapis.com/google.rpc.BadRequest"] } },
                "required": ["@type"],
            }),
            Wkt::Wrapper => self.wrapper(desc, style),
        }
    }

    /// A `google.protobuf.*Value` wrapper: the bare wrapped value, or `null`.
    fn wrapper(&mut self, desc: &MessageDescriptor, style: Style) -> Value {
        let inner = desc
            .get_field(1)
            .map_or_else(|| json!({}), |f| self.kind(&f.kind(), style));
        let mut schema = nullable(inner);
        if let Value::Object(object) = &mut schema {
            let text = format!("{} (the value itself, or null)", desc.full_name());
            object.insert("description".to_owned(), Value::String(text));
        }
        schema
    }
}

/// A `$ref` to a component schema.
pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema` that also admits `null`.
fn nullable(schema: Value) -> Value {
    match schema {
        Value::Object(mut object) => match object.get("type").cloned() {
            Some(Value::String(t)) => {
                object.insert("type".to_owned(), json!([t, "null"]));
                Value::Object(object)
            }
            _ => json!({ "anyOf": [Value::Object(object), { "type": "null" }] }),
        },
        other => json!({ "anyOf": [other, { "type": "null" }] }),
    }
}

/// The JSON Schema of a scalar kind as the gateway prints it.
pub(crate) fn scalar_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Double | Kind::Float => {
            let format = if matches!(kind, Kind::Float) {
                "float"
            } else {
                "double"
            };
            json!({
                "anyOf": [{ "type": "number" }, { "enum": ["NaN", "Infinity", "-Infinity"] }],
                "format": format,
            })
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer", "format": "uint32", "minimum": 0, "maximum": u32::MAX })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" })
        }
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Kind::Message(_) | Kind::Enum(_) => json!({}),
    }
}

/// For a message with real oneofs: each member, when present, forbids the other members.
fn oneof_exclusions(desc: &MessageDescriptor, style: Style) -> Option<Value> {
    let mut rules = Map::new();
    for oneof in desc.oneofs().filter(|o| !o.is_synthetic()) {
        let members: Vec<String> = oneof.fields().map(|f| style.key(&f)).collect();
        for member in &members {
            let others: Vec<Value> = members
                .iter()
                .filter(|other| *other != member)
                .map(|other| json!({ "required": [other] }))
                .collect();
            if !others.is_empty() {
                rules.insert(member.clone(), json!({ "not": { "anyOf": others } }));
            }
        }
    }
    (!rules.is_empty()).then_some(Value::Object(rules))
}

/// The comments written before (else after) the element at `path` of `file`, when the
/// descriptors carry source info (`.proto` files compiled in-process do; descriptor sets may not).
pub(crate) fn comments(file: prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location
        .leading_comments
        .as_deref()
        .or(location.trailing_comments.as_deref())?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let joined = lines.join("\n").trim().to_owned();
    (!joined.is_empty()).then_some(joined)
}
