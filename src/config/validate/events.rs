//! Checks of the event stream: `routes[].events` (durability, type, aggregate and dropped-field
//! paths, per-method entries) and the top-level `events:` section. Whether the paths name real
//! fields and the methods exist is checked when the runtime is built (it needs the descriptors).

use std::path::Path;

use super::checker::{Checker, place};
use crate::config::error::Located;
use crate::config::events::{
    Durability, EventShape, EventsConfig, MIN_EVENT_BYTES, RouteEventsConfig,
};
use crate::config::raw::{At, RawEvents, RawMethodEvents, RawRouteEvents};

/// `routes[i].events`; `None` when a value in it is unusable.
pub(super) fn route_events(
    c: &mut Checker<'_>,
    raw: &RawRouteEvents,
    service: Option<&str>,
    key: &str,
) -> Option<RouteEventsConfig> {
    let before = c.errors.len();
    let durability = match &raw.durability {
        None => Durability::BeforeResponse,
        Some(v) => match v.value.trim() {
            "before_response" => Durability::BeforeResponse,
            "best_effort" => Durability::BestEffort,
            other => {
                let reason = format!("`{other}`: use before_response or best_effort");
                c.error(place(v), format!("{key}.durability"), reason);
                Durability::BeforeResponse
            }
        },
    };
    let shape = shape(
        c,
        (&raw.event_type, &raw.aggregate_id, &raw.drop_fields),
        key,
    );
    let methods = raw
        .methods
        .iter()
        .map(|(name, m)| method(c, name, m, service, &format!("{key}.methods.{name}")))
        .collect();
    (c.errors.len() == before).then_some(RouteEventsConfig {
        durability,
        shape,
        methods,
    })
}

/// One `events.methods` entry: its name qualified by the route's service.
fn method(
    c: &mut Checker<'_>,
    name: &str,
    raw: &RawMethodEvents,
    service: Option<&str>,
    key: &str,
) -> (Located<String>, EventShape) {
    let shape = shape(
        c,
        (&raw.event_type, &raw.aggregate_id, &raw.drop_fields),
        key,
    );
    // The entry's place: its first value's (a map key keeps none).
    let at = [&raw.event_type, &raw.aggregate_id]
        .into_iter()
        .flatten()
        .chain(raw.drop_fields.first())
        .map(place)
        .next()
        .unwrap_or_default();
    let full = match service {
        Some(s) if !name.contains('/') => format!("{s}/{name}"),
        _ => name.to_owned(),
    };
    let located = Located {
        value: full,
        place: at,
        key: key.to_owned(),
    };
    (located, shape)
}

type RawShape<'a> = (
    &'a Option<At<String>>,
    &'a Option<At<String>>,
    &'a Vec<At<String>>,
);

/// The type, aggregate and dropped fields written at `key`.
fn shape(
    c: &mut Checker<'_>,
    (event_type, aggregate, drop): RawShape<'_>,
    key: &str,
) -> EventShape {
    let event_type = event_type.as_ref().and_then(|t| {
        let text = t.value.trim();
        let ok = !text.is_empty() && text.len() <= 200 && !text.chars().any(char::is_whitespace);
        if !ok {
            let reason = format!("`{text}`: use a name without spaces (policy.proposed)");
            c.error(place(t), format!("{key}.type"), reason);
        }
        ok.then(|| text.to_owned())
    });
    let aggregate_id = aggregate.as_ref().and_then(|a| {
        let at = format!("{key}.aggregate_id");
        field_path(c, a, &at, &["request", "response", "path"])
    });
    let drop_fields = drop
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let at = format!("{key}.drop_fields[{i}]");
            field_path(c, f, &at, &["request", "response"])
        })
        .collect();
    EventShape {
        event_type,
        aggregate_id,
        drop_fields,
    }
}

/// `<source>.<field>[.<field>...]` with a source from `sources`.
fn field_path(
    c: &mut Checker<'_>,
    raw: &At<String>,
    key: &str,
    sources: &[&str],
) -> Option<Located<String>> {
    let text = raw.value.trim();
    let ok = text.split_once('.').is_some_and(|(source, rest)| {
        sources.contains(&source)
            && rest
                .split('.')
                .all(|s| !s.is_empty() && s.chars().all(|ch| ch.is_alphanumeric() || ch == '_'))
    });
    if !ok {
        let forms: Vec<String> = sources.iter().map(|s| format!("{s}.<field>")).collect();
        let reason = format!("`{text}`: use {}", forms.join(" or "));
        c.error(place(raw), key, reason);
        return None;
    }
    Some(Located {
        value: text.to_owned(),
        place: place(raw),
        key: key.to_owned(),
    })
}

/// The top-level `events:` section, defaults filled in (paths against the config's folder).
pub(super) fn events(c: &mut Checker<'_>, base: &Path, raw: Option<&RawEvents>) -> EventsConfig {
    let mut config = EventsConfig::defaults_in(base);
    let Some(raw) = raw else { return config };
    if let Some(v) = &raw.spool_dir {
        config.spool_dir = path(c, base, v, "events.spool_dir").unwrap_or(config.spool_dir);
    }
    if let Some(v) = &raw.file {
        config.file = path(c, base, v, "events.file").unwrap_or(config.file);
    }
    if let Some(v) = &raw.max_spool_bytes
        && let Some(n) = c.size(v, "events.max_spool_bytes")
    {
        config.max_spool_bytes = n as u64;
    }
    if let Some(v) = &raw.max_event_bytes
        && let Some(n) = c.size(v, "events.max_event_bytes")
    {
        if n < MIN_EVENT_BYTES {
            let reason = format!("must be at least {} KiB", MIN_EVENT_BYTES >> 10);
            c.error(place(v), "events.max_event_bytes", reason);
        } else {
            config.max_event_bytes = n;
        }
    }
    if config.max_event_bytes as u64 > config.max_spool_bytes {
        let at = raw
            .max_event_bytes
            .as_ref()
            .or(raw.max_spool_bytes.as_ref());
        c.error(
            at.map(place).unwrap_or_default(),
            "events.max_event_bytes",
            "must not be larger than events.max_spool_bytes",
        );
    }
    if let Some(v) = &raw.retention
        && let Some(d) = c.duration(v, "events.retention")
    {
        config.retention = d;
    }
    stream_names(c, raw, &mut config);
    config
}

/// `events.stream` and `events.dead_letter_stream`: non-empty names.
fn stream_names(c: &mut Checker<'_>, raw: &RawEvents, config: &mut EventsConfig) {
    for (value, key, slot) in [
        (&raw.stream, "events.stream", &mut config.stream),
        (
            &raw.dead_letter_stream,
            "events.dead_letter_stream",
            &mut config.dead_letter_stream,
        ),
    ] {
        if let Some(v) = value {
            match v.value.trim() {
                "" => c.error(place(v), key, "must not be empty"),
                name => *slot = name.to_owned(),
            }
        }
    }
}

/// A non-empty path, resolved against the config's folder.
fn path(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &At<String>,
    key: &str,
) -> Option<std::path::PathBuf> {
    if raw.value.trim().is_empty() {
        c.error(place(raw), key, "must be a path");
        return None;
    }
    Some(base.join(raw.value.trim()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, Durability};

    const BASE: &str = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: a\n";

    fn parse(route: &str, top: &str) -> Result<Config, String> {
        Config::parse(Path::new("conf/g.yaml"), &format!("{BASE}{route}{top}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn events_default_to_a_spool_and_a_file_next_to_the_config_and_seven_days() {
        let config = parse("", "").expect("valid");
        assert!(config.routes[0].events.is_none());
        let events = &config.events;
        assert_eq!(events.spool_dir, Path::new("conf/events-spool"));
        assert_eq!(events.file, Path::new("conf/events.jsonl"));
        assert_eq!(events.retention, Duration::from_secs(7 * 86400));
        assert_eq!(events.stream, "tai-events");
        assert_eq!(events.dead_letter_stream, "tai-events-dlq");
    }

    #[test]
    fn route_events_are_read_with_per_method_entries() {
        let route = "    events:\n      durability: best_effort\n      drop_fields: [request.rules]\n      methods:\n        ProposePolicy: { type: policy.proposed, aggregate_id: response.policyId }\n        tai.Governor/RevokePolicy: { type: policy.revoked, aggregate_id: path.id }\n";
        let top = "events:\n  spool_dir: /var/spool/tai\n  max_spool_bytes: 1MiB\n  max_event_bytes: 64KiB\n  retention: 36h\n  stream: audit\n";
        let config = parse(route, top).expect("valid");
        let events = config.routes[0].events.as_ref().expect("on");
        assert_eq!(events.durability, Durability::BestEffort);
        assert_eq!(events.shape.drop_fields[0].value, "request.rules");
        let names: Vec<&str> = events
            .methods
            .iter()
            .map(|(m, _)| m.value.as_str())
            .collect();
        assert_eq!(
            names,
            ["tai.Governor/ProposePolicy", "tai.Governor/RevokePolicy"]
        );
        let propose = &events.methods[0].1;
        assert_eq!(propose.event_type.as_deref(), Some("policy.proposed"));
        assert_eq!(
            propose.aggregate_id.as_ref().map(|a| a.value.as_str()),
            Some("response.policyId")
        );
        assert_eq!(config.events.spool_dir, Path::new("/var/spool/tai"));
        assert_eq!(config.events.max_spool_bytes, 1 << 20);
        assert_eq!(config.events.max_event_bytes, 64 << 10);
        assert_eq!(config.events.retention, Duration::from_secs(36 * 3600));
        assert_eq!(config.events.stream, "audit");
    }

    #[test]
    fn bad_event_values_are_reported_with_their_line() {
        let route = "    events:\n      durability: later\n      type: \"policy proposed\"\n      aggregate_id: body.id\n      drop_fields: [path.id]\n";
        let top = "events:\n  max_event_bytes: 1KiB\n  retention: 0s\n  stream: \"\"\n";
        assert_eq!(
            parse(route, top).expect_err("bad"),
            "conf/g.yaml:13:19: routes[0].events.durability: `later`: use before_response or best_effort\n\
             conf/g.yaml:14:13: routes[0].events.type: `policy proposed`: use a name without spaces (policy.proposed)\n\
             conf/g.yaml:15:21: routes[0].events.aggregate_id: `body.id`: use request.<field> or response.<field> or path.<field>\n\
             conf/g.yaml:16:21: routes[0].events.drop_fields[0]: `path.id`: use request.<field> or response.<field>\n\
             conf/g.yaml:18:20: events.max_event_bytes: must be at least 8 KiB\n\
             conf/g.yaml:19:14: events.retention: must be greater than zero\n\
             conf/g.yaml:20:11: events.stream: must not be empty"
        );
    }
}
