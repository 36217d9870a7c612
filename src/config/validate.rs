//! Raw YAML → [`Config`]: every value checked, every problem collected with its place and key path.

mod resilience;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{At, RawConfig, RawHeaders, RawHttpRule, RawRoute, RawTranscoding};
use super::{
    Config, ConfigError, ConfigErrors, ConfigHttpRule, DescriptorSources, HeaderRules,
    ListenerLimits, Located, MethodSelector, Place, RouteConfig, TranscodingOptions,
    UpstreamConfig, parse_duration, parse_size,
};
use crate::transcode::router::UnescapeMode;

const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `upstreams.<name>.resolve_interval` when absent.
const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Headers that carry protocol meaning on one side or the other and must never be copied across.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
    "content-type",
    "content-encoding",
    ":authority",
    "user-agent",
];

/// Collects problems while walking the raw config.
pub(crate) struct Checker<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    pub(crate) fn error(
        &mut self,
        place: Place,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            place,
            key: key.into(),
            reason: reason.into(),
        });
    }

    pub(crate) fn duration(&mut self, value: &At<String>, key: &str) -> Option<Duration> {
        match parse_duration(&value.value) {
            Ok(d) if d.is_zero() => {
                self.error(place(value), key, "must be greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(reason) => {
                self.error(place(value), key, reason);
                None
            }
        }
    }

    fn size(&mut self, value: &At<String>, key: &str) -> Option<usize> {
        match parse_size(&value.value) {
            Ok(0) => {
                self.error(place(value), key, "must be greater than zero");
                None
            }
            Ok(n) => Some(n),
            Err(reason) => {
                self.error(place(value), key, reason);
                None
            }
        }
    }

    pub(crate) fn socket_addr(&mut self, value: &At<String>, key: &str) -> Option<SocketAddr> {
        match value.value.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.error(
                    place(value),
                    key,
                    format!("`{}` is not an ip:port address", value.value),
                );
                None
            }
        }
    }
}

pub(crate) fn place<T>(value: &At<T>) -> Place {
    Place {
        line: value.referenced.line(),
        column: value.referenced.column(),
    }
}

fn located_path(base: &Path, value: &At<String>, key: String) -> Located<PathBuf> {
    Located {
        value: base.join(&value.value),
        place: place(value),
        key,
    }
}

/// Parses and validates config text.
pub(super) fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let (config, problems) = parse_with_problems(file, text)?;
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// The config built from whatever is valid, plus every problem found, in file order. `Err` only
/// when the YAML itself cannot be read into the config's shape (syntax, unknown key, wrong type).
pub(super) fn parse_with_problems(
    file: &Path,
    text: &str,
) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
        let place = e
            .location()
            .map(|l| Place {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or_default();
        ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            place,
            key: String::new(),
            reason: yaml_reason(&e),
        }])
    })?;
    let mut checker = Checker {
        file,
        errors: Vec::new(),
    };
    let config = build(&mut checker, file, raw);
    checker
        .errors
        .sort_by_key(|e| (e.place.line, e.place.column));
    Ok((config, checker.errors))
}

/// The first line of serde-saphyr's message, without the source snippet it renders below it and
/// without its `line N column M: ` prefix (the place is already printed as `file:line:col`).
fn yaml_reason(error: &serde_saphyr::Error) -> String {
    let rendered = error.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    strip_location(first).to_owned()
}

/// `line 8 column 5: unknown field` → `unknown field`; other text is returned as it is.
fn strip_location(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("line ") else {
        return text;
    };
    let mut words = rest.splitn(4, ' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(line), Some("column"), Some(column), Some(reason))
            if line.bytes().all(|b| b.is_ascii_digit())
                && column
                    .strip_suffix(':')
                    .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())) =>
        {
            reason
        }
        _ => text,
    }
}

fn build(c: &mut Checker<'_>, file: &Path, raw: RawConfig) -> Config {
    let base = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let http_listener = raw
        .listeners
        .http
        .as_ref()
        .and_then(|l| c.socket_addr(&l.address, "listeners.http.address"));
    let admin = raw
        .admin
        .as_ref()
        .and_then(|a| c.socket_addr(&a.address, "admin.address"));
    let tls_listener = raw
        .listeners
        .tls
        .as_ref()
        .and_then(|t| super::tls::validate(c, &base, t));
    if let (Some(a), Some(b)) = (http_listener, admin)
        && a == b
        && a.port() != 0
    {
        let at = raw
            .admin
            .as_ref()
            .map(|a| place(&a.address))
            .unwrap_or_default();
        c.error(
            at,
            "admin.address",
            "must differ from listeners.http.address",
        );
    }

    let d = &raw.descriptors;
    let list = |items: &[At<String>], name: &str| -> Vec<Located<PathBuf>> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| located_path(&base, v, format!("descriptors.{name}[{i}]")))
            .collect()
    };
    let descriptors = DescriptorSources {
        proto_dirs: list(&d.proto_dirs, "proto_dirs"),
        proto_files: d
            .proto_files
            .iter()
            .enumerate()
            .map(|(i, v)| Located {
                value: PathBuf::from(&v.value),
                place: place(v),
                key: format!("descriptors.proto_files[{i}]"),
            })
            .collect(),
        include_paths: list(&d.include_paths, "include_paths"),
        descriptor_sets: list(&d.descriptor_sets, "descriptor_sets"),
    };
    if descriptors.proto_dirs.is_empty()
        && descriptors.proto_files.is_empty()
        && descriptors.descriptor_sets.is_empty()
    {
        c.error(
            Place::default(),
            "descriptors",
            "names no proto_dirs, proto_files or descriptor_sets",
        );
    }

    let upstreams: Vec<UpstreamConfig> = raw
        .upstreams
        .iter()
        .filter_map(|(name, u)| {
            let key = format!("upstreams.{name}");
            let endpoints = resilience::endpoints(c, u, &key);
            let connect_timeout = u
                .connect_timeout
                .as_ref()
                .and_then(|v| c.duration(v, &format!("{key}.connect_timeout")))
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
            let max_response_bytes = u
                .max_response_bytes
                .as_ref()
                .and_then(|v| c.size(v, &format!("{key}.max_response_bytes")))
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
            let retry = resilience::retry(c, u.retry.as_ref(), &key);
            let circuit_breaker = resilience::breaker(c, u.circuit_breaker.as_ref(), &key);
            let health_check = resilience::health_check(c, u.health_check.as_ref(), &key);
            let resolve_interval = u
                .resolve_interval
                .as_ref()
                .and_then(|v| c.duration(v, &format!("{key}.resolve_interval")))
                .unwrap_or(DEFAULT_RESOLVE_INTERVAL);
            let endpoints = endpoints?;
            Some(UpstreamConfig {
                name: name.clone(),
                authority: endpoints.first()?.clone(),
                connect_timeout,
                max_response_bytes,
                endpoints,
                retry,
                circuit_breaker,
                health_check,
                resolve_interval,
            })
        })
        .collect();
    if raw.upstreams.is_empty() {
        c.error(
            Place::default(),
            "upstreams",
            "at least one upstream is required",
        );
    }

    let defaults = transcoding(
        c,
        &TranscodingOptions::default(),
        &raw.transcoding,
        "transcoding",
    );
    let headers = header_rules(c, &HeaderRules::default(), &raw.headers, "headers");
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| route(c, i, r, &upstreams, &raw, &defaults, &headers))
        .collect::<Vec<_>>();
    if raw.routes.is_empty() {
        c.error(Place::default(), "routes", "at least one route is required");
    }
    let mut names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        c.error(
            Place::default(),
            "routes",
            format!("route name `{}` is used twice", w[0]),
        );
    }

    let limits = limits(c, &raw);
    let workers = workers(c, raw.workers.as_ref());
    let path_unescape = match &raw.transcoding.path_unescape {
        None => UnescapeMode::AllExceptReserved,
        Some(v) => match v.value.as_str() {
            "all_except_reserved" => UnescapeMode::AllExceptReserved,
            "all_except_slash" => UnescapeMode::AllExceptSlash,
            "all" => UnescapeMode::All,
            other => {
                c.error(
                    place(v),
                    "transcoding.path_unescape",
                    format!("`{other}`: use all_except_reserved, all_except_slash or all"),
                );
                UnescapeMode::AllExceptReserved
            }
        },
    };
    let mut edge = super::edge::Problems {
        file,
        errors: &mut c.errors,
    };
    let auth = edge.auth(raw.auth.as_ref(), &base);
    let rate_limits = edge.rate_limits(raw.rate_limits.as_ref());
    Config {
        source: file.to_owned(),
        http_listener,
        admin,
        descriptors,
        upstreams,
        routes,
        limits,
        workers,
        path_unescape,
        ops: super::ops::ops(c, &base, &raw),
        auth,
        rate_limits,
        tls_listener,
    }
}

fn upstream_authority(c: &mut Checker<'_>, value: &At<String>, key: &str) -> Option<String> {
    let text = value.value.trim();
    let authority = text
        .strip_prefix("http://")
        .unwrap_or(text)
        .trim_end_matches('/');
    if text.starts_with("https://") {
        c.error(
            place(value),
            key,
            "TLS to upstreams is not supported yet; use host:port (h2c)",
        );
        return None;
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Some(authority.to_owned())
        }
        _ => {
            c.error(
                place(value),
                key,
                format!("`{text}` is not a host:port address"),
            );
            None
        }
    }
}

/// Most worker threads accepted: more than any machine this runs on has cores for.
const MAX_WORKERS: usize = 1024;

/// `workers:` `auto` (one per CPU, the default) or a count from 1 to [`MAX_WORKERS`].
fn workers(c: &mut Checker<'_>, raw: Option<&At<String>>) -> usize {
    let Some(value) = raw else {
        return crate::workers::available();
    };
    let text = value.value.trim();
    if text == "auto" {
        return crate::workers::available();
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => n,
        _ => {
            c.error(
                place(value),
                "workers",
                format!("`{text}`: use auto or a number of threads from 1 to {MAX_WORKERS}"),
            );
            crate::workers::available()
        }
    }
}

fn limits(c: &mut Checker<'_>, raw: &RawConfig) -> ListenerLimits {
    let mut limits = ListenerLimits::default();
    if let Some(v) = &raw.limits.max_header_bytes
        && let Some(n) = c.size(v, "limits.max_header_bytes")
    {
        limits.max_header_bytes = n;
    }
    if let Some(v) = &raw.limits.header_read_timeout
        && let Some(d) = c.duration(v, "limits.header_read_timeout")
    {
        limits.header_read_timeout = d;
    }
    if let Some(v) = &raw.limits.body_read_timeout
        && let Some(d) = c.duration(v, "limits.body_read_timeout")
    {
        limits.body_read_timeout = d;
    }
    if let Some(v) = &raw.limits.idle_timeout
        && let Some(d) = c.duration(v, "limits.idle_timeout")
    {
        limits.idle_timeout = d;
    }
    limits
}

fn route(
    c: &mut Checker<'_>,
    index: usize,
    r: &RawRoute,
    upstreams: &[UpstreamConfig],
    raw: &RawConfig,
    defaults: &TranscodingOptions,
    headers: &HeaderRules,
) -> Option<RouteConfig> {
    let key = format!("routes[{index}]");
    let at = place(&r.upstream);
    let upstream = match upstreams.iter().position(|u| u.name == r.upstream.value) {
        Some(i) => Some(i),
        None => {
            let reason = if raw.upstreams.contains_key(&r.upstream.value) {
                "upstream is invalid (see its own error)".to_owned()
            } else {
                let known: Vec<&str> = raw.upstreams.keys().map(String::as_str).collect();
                format!(
                    "unknown upstream `{}` (known: {})",
                    r.upstream.value,
                    known.join(", ")
                )
            };
            c.error(at, format!("{key}.upstream"), reason);
            None
        }
    };
    let selector = match (&r.service, &r.methods) {
        (Some(service), None) => Some(MethodSelector::Service(service.value.clone())),
        (service, Some(methods)) if !methods.is_empty() => Some(MethodSelector::Methods(
            methods
                .iter()
                .enumerate()
                .map(|(i, m)| Located {
                    value: match service {
                        Some(s) if !m.value.contains('/') => format!("{}/{}", s.value, m.value),
                        _ => m.value.clone(),
                    },
                    place: place(m),
                    key: format!("{key}.methods[{i}]"),
                })
                .collect(),
        )),
        _ => {
            c.error(
                at,
                key.clone(),
                "needs `service` or a non-empty `methods` list",
            );
            None
        }
    };
    let timeout = r
        .timeout
        .as_ref()
        .and_then(|t| c.duration(t, &format!("{key}.timeout")))
        .unwrap_or(DEFAULT_ROUTE_TIMEOUT);
    let http_rules = r
        .http_rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            http_rule(
                c,
                rule,
                r.service.as_ref(),
                &format!("{key}.http_rules[{i}]"),
            )
        })
        .collect();
    let name = match &r.name {
        Some(n) => n.value.clone(),
        None => match &r.service {
            Some(s) => s.value.clone(),
            None => format!("route-{index}"),
        },
    };
    let transcoding = transcoding(c, defaults, &r.transcoding, &format!("{key}.transcoding"));
    let headers = match &r.headers {
        Some(h) => header_rules(c, headers, h, &format!("{key}.headers")),
        None => headers.clone(),
    };
    let retry = resilience::route_retry(c, r, &key);
    let mut edge = super::edge::Problems {
        file: c.file,
        errors: &mut c.errors,
    };
    let auth = edge.route_auth(&key, r.auth.as_ref(), raw.auth.as_ref());
    let rate_limits = edge.route_limits(&key, &r.rate_limits, raw.rate_limits.as_ref());
    let cors = r
        .cors
        .as_ref()
        .and_then(|raw| super::cors::cors(c, raw, &format!("{key}.cors")));
    Some(RouteConfig {
        name,
        key,
        // Descriptor errors about the route (unknown service, collisions) point at its service.
        place: r.service.as_ref().map_or(at, place),
        selector: selector?,
        upstream: upstream?,
        timeout,
        auto_mapping: r.auto_mapping.unwrap_or(false),
        http_rules,
        transcoding,
        headers,
        retry,
        auth,
        rate_limits,
        cors,
    })
}

fn http_rule(
    c: &mut Checker<'_>,
    rule: &RawHttpRule,
    service: Option<&At<String>>,
    key: &str,
) -> Option<ConfigHttpRule> {
    let patterns = [
        ("GET", &rule.get),
        ("PUT", &rule.put),
        ("POST", &rule.post),
        ("DELETE", &rule.delete),
        ("PATCH", &rule.patch),
    ];
    let mut found: Vec<(String, &At<String>)> = patterns
        .iter()
        .filter_map(|(m, v)| v.as_ref().map(|v| ((*m).to_owned(), v)))
        .collect();
    if let Some(custom) = &rule.custom {
        found.push((custom.kind.value.to_ascii_uppercase(), &custom.path));
    }
    let [(http_method, template)] = found.as_slice() else {
        c.error(
            place(&rule.method),
            key,
            "needs exactly one of get, put, post, delete, patch, custom",
        );
        return None;
    };
    let method = match service {
        Some(s) if !rule.method.value.contains('/') => format!("{}/{}", s.value, rule.method.value),
        _ => rule.method.value.clone(),
    };
    Some(ConfigHttpRule {
        method: Located {
            value: method,
            place: place(&rule.method),
            key: format!("{key}.method"),
        },
        http_method: http_method.clone(),
        template: Located {
            value: template.value.clone(),
            place: place(template),
            key: key.to_owned(),
        },
        body: rule
            .body
            .as_ref()
            .map(|b| b.value.clone())
            .unwrap_or_default(),
        response_body: rule
            .response_body
            .as_ref()
            .map(|b| b.value.clone())
            .unwrap_or_default(),
    })
}

fn transcoding(
    c: &mut Checker<'_>,
    base: &TranscodingOptions,
    raw: &RawTranscoding,
    key: &str,
) -> TranscodingOptions {
    let mut t = base.clone();
    if let Some(v) = raw.ignore_unknown_fields {
        t.ignore_unknown_fields = v;
    }
    if let Some(v) = raw.ignore_unknown_query_parameters {
        t.ignore_unknown_query_parameters = v;
    }
    if let Some(v) = &raw.ignored_query_parameters {
        t.ignored_query_parameters = v.clone();
    }
    if let Some(v) = raw.query_unescape_plus {
        t.query_unescape_plus = v;
    }
    if let Some(v) = raw.emit_defaults {
        t.emit_defaults = v;
    }
    if let Some(v) = raw.proto_field_names {
        t.proto_field_names = v;
    }
    if let Some(v) = raw.enums_as_ints {
        t.enums_as_ints = v;
    }
    if let Some(v) = &raw.path_unescape
        && key != "transcoding"
    {
        c.error(
            place(v),
            format!("{key}.path_unescape"),
            "can only be set in the top-level transcoding section",
        );
    }
    if let Some(v) = &raw.max_json_depth {
        if v.value == 0 || v.value > 1000 {
            c.error(
                place(v),
                format!("{key}.max_json_depth"),
                "must be between 1 and 1000",
            );
        } else {
            t.max_json_depth = v.value;
        }
    }
    if let Some(v) = &raw.max_request_bytes
        && let Some(n) = c.size(v, &format!("{key}.max_request_bytes"))
    {
        t.max_request_bytes = n;
    }
    if let Some(v) = &raw.stream_format {
        match crate::config::StreamFormat::parse(&v.value) {
            Some(format) => t.stream_format = format,
            None => c.error(
                place(v),
                format!("{key}.stream_format"),
                format!(
                    "unknown stream format `{}` (expected json_array, ndjson or sse)",
                    v.value
                ),
            ),
        }
    }
    t
}

fn header_rules(
    c: &mut Checker<'_>,
    base: &HeaderRules,
    raw: &RawHeaders,
    key: &str,
) -> HeaderRules {
    let mut check = |items: &[At<String>], name: &str, fallback: &[String]| -> Vec<String> {
        if items.is_empty() {
            return fallback.to_vec();
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let name_lc = item.value.trim().to_ascii_lowercase();
            let stem = name_lc.strip_suffix('*').unwrap_or(&name_lc);
            let valid = !stem.is_empty()
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !valid {
                c.error(
                    place(item),
                    format!("{key}.{name}[{i}]"),
                    format!("`{}` is not a header name", item.value),
                );
            } else if RESERVED_HEADERS.contains(&stem) || stem.starts_with("grpc-") {
                c.error(
                    place(item),
                    format!("{key}.{name}[{i}]"),
                    format!(
                        "`{}` is reserved by HTTP or gRPC and cannot be forwarded",
                        item.value
                    ),
                );
            } else {
                out.push(name_lc);
            }
        }
        out
    };
    HeaderRules {
        request_to_metadata: check(
            &raw.request_to_metadata,
            "request_to_metadata",
            &base.request_to_metadata,
        ),
        metadata_to_response: check(
            &raw.metadata_to_response,
            "metadata_to_response",
            &base.metadata_to_response,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_reason_drops_the_location_prefix_only() {
        assert_eq!(
            strip_location("line 8 column 5: unknown field `adress`"),
            "unknown field `adress`"
        );
        assert_eq!(strip_location("line 8: something"), "line 8: something");
        assert_eq!(strip_location("invalid YAML"), "invalid YAML");
    }

    #[test]
    fn workers_are_auto_by_default_or_a_count_and_bad_counts_are_placed() {
        let base = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";
        let auto = crate::workers::available();
        let workers = |text: &str| parse(Path::new("g.yaml"), text).map(|c| c.workers);
        assert_eq!(workers(base).expect("valid"), auto);
        assert_eq!(
            workers(&format!("{base}workers: auto\n")).expect("valid"),
            auto
        );
        assert_eq!(workers(&format!("{base}workers: 3\n")).expect("valid"), 3);
        for bad in ["0", "many", "-2", "1025"] {
            let errors = workers(&format!("{base}workers: {bad}\n")).expect_err(bad);
            assert_eq!(
                errors.to_string(),
                format!(
                    "g.yaml:12:10: workers: `{bad}`: use auto or a number of threads from 1 to 1024"
                )
            );
        }
    }

    #[test]
    fn unknown_key_is_reported_once_with_its_place() {
        let text = "listeners:\n  http:\n    adress: 127.0.0.1:0\n";
        let errors = parse(Path::new("g.yaml"), text).expect_err("unknown key");
        assert_eq!(
            errors.to_string(),
            "g.yaml:3:5: unknown field `adress`, expected one of address"
        );
    }

    #[test]
    fn problems_come_with_the_config_built_from_what_is_valid() {
        let text = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n    timeout: 10\n  - service: s.B\n    upstream: b\n";
        let (config, problems) = parse_with_problems(Path::new("g.yaml"), text).expect("YAML");
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "g.yaml:12:14: routes[0].timeout: `10` needs a unit (ms, s, m, h)",
                "g.yaml:14:15: routes[1].upstream: unknown upstream `b` (known: a)",
            ]
        );
        assert_eq!(config.routes.len(), 1);
        assert_eq!(config.routes[0].timeout, DEFAULT_ROUTE_TIMEOUT);
        assert_eq!(
            config.routes[0].place,
            Place {
                line: 10,
                column: 14
            }
        );
    }
}
