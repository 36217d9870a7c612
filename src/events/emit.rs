//! Building the event of a successful write: the per-method [`EventPlan`] compiled from the
//! route's `events:` when the runtime is built (field paths resolved against the descriptors),
//! and [`EventPlan::event`], which prints the request and response messages as JSON with the
//! route's output options, drops the configured fields and reads the aggregate id.
//!
//! **The size rule** ([`encode_bounded`]): an event whose JSON is larger than
//! `events.max_event_bytes` is truncated, never dropped — first its `request` is replaced by
//! `{"@truncated":{"bytes":N}}` (N: the size of the JSON it replaces), then its `response`, and
//! if it is still too large its `aggregate_id`, `subject` and `request_id` are cut to 256 bytes.
//! Every truncation is counted (`tai_gateway_events_truncated_total`) and logged.

use std::time::SystemTime;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::event::{Event, EventIds};
use crate::access_log::rfc3339;
use crate::config::{Durability, Located, RouteEventsConfig};
use crate::transcode::json::{EncodeOptions, encode_message_json, print_wire_message};

/// Attributes longer than this are cut by the size rule's last step.
const ATTRIBUTE_BYTES: usize = 256;

/// Where an event's `aggregate_id` is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateSource {
    /// Not configured: the attribute is empty.
    None,
    /// A field of the request message (printed JSON keys, outermost first).
    Request(Vec<String>),
    /// A field of the response message.
    Response(Vec<String>),
    /// A path variable of the HTTP rule (`id`, `policy.id`).
    Path(String),
}

/// What one method's successful writes emit, compiled for its route.
#[derive(Debug, Clone)]
pub struct EventPlan {
    /// The route's name.
    pub route: String,
    /// `pkg.Service/Method`.
    pub method: String,
    /// The `event_type` attribute.
    pub event_type: String,
    /// Whether the answer waits for the spool.
    pub durability: Durability,
    /// Where `aggregate_id` comes from.
    pub aggregate: AggregateSource,
    /// The aggregate was named for this method: each of its write rules must have its path
    /// variable (a route-wide `path.<var>` reads the variable where a rule has it).
    path_checked: bool,
    /// Printed key paths removed from the request JSON.
    drop_request: Vec<Vec<String>>,
    /// Printed key paths removed from the response JSON.
    drop_response: Vec<Vec<String>>,
    input: MessageDescriptor,
    output: MessageDescriptor,
    encode: EncodeOptions,
}

/// What a successful write leaves for its event.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    /// The encoded request message.
    pub request: &'a [u8],
    /// The encoded response message.
    pub response: &'a [u8],
    /// The path variables' values.
    pub vars: &'a [(&'a str, String)],
    /// `sub` of the verified token.
    pub subject: Option<&'a str>,
    /// The request's `x-request-id`.
    pub request_id: &'a str,
}

impl EventPlan {
    /// The plan of `method` on a route named `route` with `config` (`None` for a streaming
    /// method: only unary writes emit events); every problem (a field path naming no field, an
    /// entry for a streaming method) comes back with its place.
    pub fn compile(
        route: &str,
        method: &prost_reflect::MethodDescriptor,
        config: &RouteEventsConfig,
        encode: &EncodeOptions,
    ) -> Result<Option<EventPlan>, Vec<Located<String>>> {
        let full = format!("{}/{}", method.parent_service().full_name(), method.name());
        let own = config.methods.iter().find(|(m, _)| m.value == full);
        if method.is_client_streaming() || method.is_server_streaming() {
            return streaming(own.map(|(entry, _)| entry), &full);
        }
        let own = own.map(|(_, shape)| shape);
        let (input, output) = (method.input(), method.output());
        let messages = (&input, &output);
        let mut problems = Vec::new();
        // Own entries must fit; the route's apply where they fit (see `unmatched_route_paths`).
        let own_aggregate = own.and_then(|o| o.aggregate_id.as_ref());
        let route_aggregate = config.shape.aggregate_id.as_ref();
        let aggregate = aggregate_of((own_aggregate, route_aggregate), (messages, encode))
            .unwrap_or_else(|(path, reason)| {
                problems.push(problem(path, &full, reason));
                AggregateSource::None
            });
        let own_drops = own.map_or(&[][..], |o| &o.drop_fields[..]);
        let drops = all_drops(
            &config.shape.drop_fields,
            own_drops,
            (messages, encode),
            &full,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(problems);
        }
        let event_type = own.and_then(|o| o.event_type.clone());
        let event_type = event_type.or_else(|| config.shape.event_type.clone());
        Ok(Some(EventPlan {
            route: route.to_owned(),
            event_type: event_type.unwrap_or_else(|| full.clone()),
            method: full,
            durability: config.durability,
            path_checked: own_aggregate.is_some(),
            aggregate,
            drop_request: drops.0,
            drop_response: drops.1,
            input,
            output,
            encode: encode.clone(),
        }))
    }

    /// The path variable this plan reads, if it reads one (each write rule must have it).
    pub fn path_variable(&self) -> Option<&str> {
        match &self.aggregate {
            AggregateSource::Path(name) if self.path_checked => Some(name),
            _ => None,
        }
    }

    /// The event of `written`, answered at `now`, with an id from `ids`.
    pub fn event(&self, ids: &EventIds, written: &Written<'_>, now: SystemTime) -> Event {
        let mut request = printed(&self.input, written.request, &self.encode);
        let mut response = printed(&self.output, written.response, &self.encode);
        let aggregate_id = match &self.aggregate {
            AggregateSource::None => String::new(),
            AggregateSource::Request(keys) => text_at(&request, keys),
            AggregateSource::Response(keys) => text_at(&response, keys),
            AggregateSource::Path(name) => written
                .vars
                .iter()
                .find(|(var, _)| var == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default(),
        };
        for keys in &self.drop_request {
            remove_at(&mut request, keys);
        }
        for keys in &self.drop_response {
            remove_at(&mut response, keys);
        }
        Event {
            event_id: ids.next(now),
            event_type: self.event_type.clone(),
            aggregate_id,
            time: rfc3339(now),
            route: self.route.clone(),
            method: self.method.clone(),
            subject: written.subject.map(str::to_owned),
            request_id: written.request_id.to_owned(),
            request,
            response,
        }
    }
}

/// A streaming method emits nothing; an `events.methods` entry naming it is a mistake.
fn streaming(
    entry: Option<&Located<String>>,
    method: &str,
) -> Result<Option<EventPlan>, Vec<Located<String>>> {
    match entry {
        None => Ok(None),
        Some(entry) => Err(vec![Located {
            value: format!("{method} streams: events are emitted for unary methods only"),
            place: entry.place,
            key: entry.key.clone(),
        }]),
    }
}

/// The `events.methods` entries of `config` naming none of the route's `methods`.
pub fn unknown_methods(config: &RouteEventsConfig, methods: &[String]) -> Vec<Located<String>> {
    config
        .methods
        .iter()
        .filter(|(entry, _)| !methods.contains(&entry.value))
        .map(|(entry, _)| Located {
            value: format!("`{}` is not a method of this route", entry.value),
            place: entry.place,
            key: entry.key.clone(),
        })
        .collect()
}

/// The route-wide `aggregate_id` and `drop_fields` (request and response paths) that fit none of
/// the route's unary `methods`: a typo there would otherwise go unnoticed.
pub fn unmatched_route_paths(
    config: &RouteEventsConfig,
    methods: &[prost_reflect::MethodDescriptor],
    encode: &EncodeOptions,
) -> Vec<Located<String>> {
    let unary: Vec<_> = methods
        .iter()
        .filter(|m| !m.is_client_streaming() && !m.is_server_streaming())
        .map(|m| (m.input(), m.output()))
        .collect();
    let shape = &config.shape;
    let paths = shape.aggregate_id.iter().map(|p| (p, true));
    let paths = paths.chain(shape.drop_fields.iter().map(|p| (p, false)));
    paths
        .filter(|(path, scalar)| {
            let (source, rest) = path.value.split_once('.').unwrap_or_default();
            let fits = |(input, output): &(MessageDescriptor, MessageDescriptor)| match source {
                "request" => keys(input, rest, encode, *scalar).is_ok(),
                "response" => keys(output, rest, encode, *scalar).is_ok(),
                _ => true,
            };
            !unary.iter().any(fits)
        })
        .map(|(path, _)| Located {
            value: format!("`{}` names no field of any method of the route", path.value),
            place: path.place,
            key: path.key.clone(),
        })
        .collect()
}

fn problem(path: &Located<String>, method: &str, reason: String) -> Located<String> {
    Located {
        value: format!("{method}: `{}`: {reason}", path.value),
        place: path.place,
        key: path.key.clone(),
    }
}

type KeyPaths = Vec<Vec<String>>;

/// The method's own aggregate (which must fit), else the route's where it fits.
fn aggregate_of<'p>(
    (own, route): (Option<&'p Located<String>>, Option<&'p Located<String>>),
    (messages, encode): ((&MessageDescriptor, &MessageDescriptor), &EncodeOptions),
) -> Result<AggregateSource, (&'p Located<String>, String)> {
    match (own, route) {
        (Some(path), _) => aggregate(path, messages, encode).map_err(|reason| (path, reason)),
        (None, Some(path)) => {
            Ok(aggregate(path, messages, encode).unwrap_or(AggregateSource::None))
        }
        (None, None) => Ok(AggregateSource::None),
    }
}

/// The route's `drop_fields` that fit the method, then the method's own (which must fit).
fn all_drops(
    route: &[Located<String>],
    own: &[Located<String>],
    (messages, encode): ((&MessageDescriptor, &MessageDescriptor), &EncodeOptions),
    method: &str,
    problems: &mut Vec<Located<String>>,
) -> (KeyPaths, KeyPaths) {
    let mut lenient = Vec::new();
    let mut all = drops(route, messages, encode, method, &mut lenient);
    let (request, response) = drops(own, messages, encode, method, problems);
    all.0.extend(request);
    all.1.extend(response);
    all
}

/// The printed key paths of `drop_fields`: the request's, then the response's.
fn drops(
    fields: &[Located<String>],
    (input, output): (&MessageDescriptor, &MessageDescriptor),
    encode: &EncodeOptions,
    method: &str,
    problems: &mut Vec<Located<String>>,
) -> (KeyPaths, KeyPaths) {
    let (mut request, mut response) = (Vec::new(), Vec::new());
    for path in fields {
        let (source, rest) = path.value.split_once('.').unwrap_or_default();
        let (message, into) = match source {
            "request" => (input, &mut request),
            _ => (output, &mut response),
        };
        match keys(message, rest, encode, false) {
            Ok(keys) => into.push(keys),
            Err(reason) => problems.push(problem(path, method, reason)),
        }
    }
    (request, response)
}

/// `request.<field>`, `response.<field>` or `path.<var>` resolved for a method.
fn aggregate(
    path: &Located<String>,
    (input, output): (&MessageDescriptor, &MessageDescriptor),
    encode: &EncodeOptions,
) -> Result<AggregateSource, String> {
    let (source, rest) = path.value.split_once('.').unwrap_or_default();
    match source {
        "request" => keys(input, rest, encode, true).map(AggregateSource::Request),
        "response" => keys(output, rest, encode, true).map(AggregateSource::Response),
        _ => Ok(AggregateSource::Path(rest.to_owned())),
    }
}

/// The printed JSON keys of a dotted field path (proto or JSON names accepted); `scalar`: the
/// last field must hold one value that prints as text.
fn keys(
    message: &MessageDescriptor,
    path: &str,
    encode: &EncodeOptions,
    scalar: bool,
) -> Result<Vec<String>, String> {
    let mut current = message.clone();
    let mut keys = Vec::new();
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let field = field_named(&current, segment)
            .ok_or_else(|| format!("`{segment}` is not a field of {}", current.full_name()))?;
        keys.push(if encode.proto_field_names {
            field.name().to_owned()
        } else {
            field.json_name().to_owned()
        });
        let last = i + 1 == segments.len();
        match (last, field.kind()) {
            (false, Kind::Message(next)) if !field.is_list() && !field.is_map() => current = next,
            (false, _) => return Err(format!("`{segment}` is not a message field to go into")),
            (true, Kind::Message(_)) if scalar => {
                return Err(format!(
                    "`{segment}` is a message; name a field holding the id"
                ));
            }
            (true, _) if scalar && (field.is_list() || field.is_map()) => {
                return Err(format!("`{segment}` is repeated; name a single field"));
            }
            (true, _) => {}
        }
    }
    Ok(keys)
}

fn field_named(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(name)
        .or_else(|| message.get_field_by_json_name(name))
}

/// A message printed as JSON with the route's options (`null` if the bytes do not decode,
/// which a message the gateway encoded itself or already answered with cannot do).
fn printed(desc: &MessageDescriptor, bytes: &[u8], encode: &EncodeOptions) -> Value {
    let json = print_wire_message(desc, bytes, encode).or_else(|| {
        let message = DynamicMessage::decode(desc.clone(), bytes).ok()?;
        encode_message_json(&message, encode).ok()
    });
    json.and_then(|j| serde_json::from_slice(&j).ok())
        .unwrap_or(Value::Null)
}

/// The value at `keys` as text: strings as they are, numbers and booleans printed, absent empty.
fn text_at(value: &Value, keys: &[String]) -> String {
    let mut at = value;
    for key in keys {
        match at.get(key) {
            Some(next) => at = next,
            None => return String::new(),
        }
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Removes the key at `keys` (nothing when a step is absent).
fn remove_at(value: &mut Value, keys: &[String]) {
    let Some((last, path)) = keys.split_last() else {
        return;
    };
    let mut at = value;
    for key in path {
        match at.get_mut(key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.remove(last);
    }
}

/// `event` as JSON within `max` bytes by the size rule; true when it had to be truncated.
pub fn encode_bounded(event: &mut Event, max: usize) -> (Vec<u8>, bool) {
    let json = |event: &Event| serde_json::to_vec(event).unwrap_or_default();
    let mut bytes = json(event);
    if bytes.len() <= max {
        return (bytes, false);
    }
    for step in 0..3 {
        match step {
            0 => event.request = marker(&event.request),
            1 => event.response = marker(&event.response),
            _ => {
                for text in [&mut event.aggregate_id, &mut event.request_id] {
                    cut(text);
                }
                if let Some(subject) = event.subject.as_mut() {
                    cut(subject);
                }
            }
        }
        bytes = json(event);
        if bytes.len() <= max {
            break;
        }
    }
    (bytes, true)
}

/// `{"@truncated":{"bytes":N}}` for a value that printed as N bytes.
fn marker(value: &Value) -> Value {
    let bytes = serde_json::to_vec(value).map_or(0, |b| b.len());
    let mut inner = Map::new();
    inner.insert("bytes".to_owned(), Value::from(bytes));
    let mut outer = Map::new();
    outer.insert("@truncated".to_owned(), Value::Object(inner));
    Value::Object(outer)
}

/// Cuts `text` to [`ATTRIBUTE_BYTES`] at a character boundary.
fn cut(text: &mut String) {
    if text.len() > ATTRIBUTE_BYTES {
        let mut end = ATTRIBUTE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost_reflect::{DynamicMessage, Value as Field};

    use super::*;
    use crate::config::{EventShape, Place};
    use crate::transcode::json::test_pool::{message, pool};

    fn at(text: &str) -> Located<String> {
        Located {
            value: text.to_owned(),
            place: Place::default(),
            key: "routes[0].events".to_owned(),
        }
    }

    fn config(shape: EventShape) -> RouteEventsConfig {
        RouteEventsConfig {
            durability: Durability::BeforeResponse,
            shape: EventShape::default(),
            methods: vec![(at("tai.Governor/ProposePolicy"), shape)],
        }
    }

    fn plan(shape: EventShape) -> Result<Option<EventPlan>, Vec<Located<String>>> {
        let method = pool()
            .get_service_by_name("tai.Governor")
            .and_then(|s| s.methods().find(|m| m.name() == "ProposePolicy"))
            .expect("ProposePolicy");
        EventPlan::compile("w", &method, &config(shape), &EncodeOptions::default())
    }

    fn encoded(name: &str, fields: &[(&str, Field)]) -> Vec<u8> {
        let mut msg = DynamicMessage::new(message(name));
        for (field, value) in fields {
            msg.set_field_by_name(field, value.clone());
        }
        msg.encode_to_vec()
    }

    #[test]
    fn an_event_carries_the_configured_type_aggregate_and_messages_without_dropped_fields() {
        let plan = plan(EventShape {
            event_type: Some("policy.proposed".to_owned()),
            aggregate_id: Some(at("response.policyId")),
            drop_fields: vec![at("request.rules"), at("response.status")],
        })
        .expect("compiles")
        .expect("unary");
        let request = encoded(
            "tai.Policy",
            &[("policy_name", Field::String("deny".to_owned()))],
        );
        let response = encoded(
            "tai.Receipt",
            &[
                ("policy_id", Field::String("pol-7".to_owned())),
                ("status", Field::String("success".to_owned())),
            ],
        );
        let written = Written {
            request: &request,
            response: &response,
            vars: &[],
            subject: Some("alice"),
            request_id: "req-1",
        };
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_000_000_123);
        let event = plan.event(&EventIds::default(), &written, now);
        assert_eq!(event.event_type, "policy.proposed");
        assert_eq!(event.aggregate_id, "pol-7");
        assert_eq!(event.method, "tai.Governor/ProposePolicy");
        assert_eq!(event.time, "2025-11-24T16:00:00.123Z");
        assert_eq!(event.subject.as_deref(), Some("alice"));
        assert_eq!(event.request["policyName"], "deny");
        assert!(event.request.get("rules").is_none(), "dropped");
        assert!(event.response.get("status").is_none(), "dropped");
        assert_eq!(event.response["policyId"], "pol-7");
    }

    #[test]
    fn the_type_defaults_to_the_method_and_bad_paths_are_reported() {
        let plan = plan(EventShape::default())
            .expect("compiles")
            .expect("unary");
        assert_eq!(plan.event_type, "tai.Governor/ProposePolicy");
        assert_eq!(plan.aggregate, AggregateSource::None);
        let problems = plan_problems(EventShape {
            aggregate_id: Some(at("response.nope")),
            drop_fields: vec![at("request.rules.effect")],
            ..EventShape::default()
        });
        assert_eq!(
            problems,
            [
                "tai.Governor/ProposePolicy: `response.nope`: `nope` is not a field of tai.Receipt",
                "tai.Governor/ProposePolicy: `request.rules.effect`: `rules` is not a message field to go into",
            ]
        );
    }

    fn plan_problems(shape: EventShape) -> Vec<String> {
        plan(shape)
            .expect_err("problems")
            .into_iter()
            .map(|p| p.value)
            .collect()
    }

    #[test]
    fn an_event_over_the_limit_loses_its_request_then_its_response_never_itself() {
        let mut event = Event {
            event_id: "1".to_owned(),
            event_type: "t".to_owned(),
            aggregate_id: "a".to_owned(),
            time: "now".to_owned(),
            route: "r".to_owned(),
            method: "m".to_owned(),
            subject: None,
            request_id: "q".to_owned(),
            request: serde_json::json!({ "big": "x".repeat(5000) }),
            response: serde_json::json!({ "id": "pol-1" }),
        };
        let (bytes, truncated) = encode_bounded(&mut event.clone(), 10_000);
        assert!(!truncated && bytes.len() < 10_000);
        let (bytes, truncated) = encode_bounded(&mut event, 1000);
        assert!(truncated && bytes.len() <= 1000);
        assert_eq!(
            event.request,
            serde_json::json!({"@truncated": {"bytes": 5010}})
        );
        assert_eq!(event.response["id"], "pol-1", "the response fitted");
    }
}
