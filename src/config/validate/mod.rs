//! Raw YAML → [`Config`]: every value checked, every problem collected with its place and key path.
//!
//! One module per section of the file; [`build`] calls them in file order so problems found at the
//! same place keep the order they are found in. Each reads its `raw` shape and returns the typed
//! value, recording problems in the shared [`Checker`].

mod auth;
mod cache;
mod checker;
mod compression;
mod cors;
mod descriptors;
mod events;
mod listeners;
mod openapi;
mod ops;
mod rate_limit;
mod redis;
mod resilience;
mod route;
mod secret;
mod tls;
mod tracing;
mod transcoding;
mod upstream;

use std::path::Path;

use crate::config::error::{ConfigError, ConfigErrors, Place};
use crate::config::gateway::{Config, folder_of};
use crate::config::raw::RawConfig;
use checker::Checker;

impl Config {
    /// Reads and validates a config file (descriptors are checked later, by the runtime build).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let (config, problems) = Config::load_with_problems(path)?;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// Reads a config and returns what is valid in it together with every problem found, so the
    /// descriptor checks can still run and all problems be reported at once. `Err` only when the
    /// file cannot be read or is not YAML of the config's shape.
    pub fn load_with_problems(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                place: Place::default(),
                key: String::new(),
                reason: format!("cannot read file: {e}"),
            }])
        })?;
        parse_with_problems(path, &text)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        parse(path, text)
    }
}

/// Parses and validates config text.
fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let (config, problems) = parse_with_problems(file, text)?;
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// The config built from whatever is valid, plus every problem found, in file order. `Err` only
/// when the YAML itself cannot be read into the config's shape (syntax, unknown key, wrong type).
fn parse_with_problems(
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
    if let Some(key) = duplicate_key(error) {
        return match key {
            Some(key) => format!("duplicate key `{key}`"),
            None => "duplicate key".to_owned(),
        };
    }
    let rendered = error.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    strip_location(first).to_owned()
}

/// The key a duplicate-key error names (`Some(None)`: a key that is not a plain scalar), or `None`
/// for any other error. serde-saphyr's own text for it tells the reader to "set
/// DuplicateKeyPolicy in Options", which is advice for Rust code, not for a config's author.
fn duplicate_key(mut error: &serde_saphyr::Error) -> Option<Option<&str>> {
    use serde_saphyr::Error;
    while let Error::WithSnippet { error: inner, .. } | Error::AliasError { error: inner, .. } =
        error
    {
        error = inner;
    }
    match error {
        Error::DuplicateMappingKey { key, .. } => Some(key.as_deref()),
        _ => None,
    }
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

/// Every section, checked in file order.
fn build(c: &mut Checker<'_>, file: &Path, raw: RawConfig) -> Config {
    let base = folder_of(file);
    let listeners = listeners::listeners(c, &base, &raw);
    let reflecting = raw
        .upstreams
        .values()
        .any(|u| u.reflection.as_ref().is_some_and(|r| r.value));
    let descriptors = descriptors::descriptors(c, &base, &raw.descriptors, reflecting);
    let mut upstreams = upstream::upstreams(c, &base, &raw.upstreams);
    if raw.descriptors.reflection.as_ref().is_some_and(|r| r.value) {
        // `descriptors.reflection: true` is the shorthand for every upstream saying it.
        upstreams.iter_mut().for_each(|u| u.reflection = true);
    }
    let routes = route::routes(c, &raw, &upstreams);
    listeners::listener_routes(c, &raw);
    let limits = listeners::limits(c, &raw.limits);
    let workers = listeners::workers(c, raw.workers.as_ref());
    let path_unescape = transcoding::path_unescape(c, raw.transcoding.path_unescape.as_ref());
    let auth = auth::auth(c, raw.auth.as_ref(), &base);
    let rate_limits = rate_limit::rate_limits(c, raw.rate_limits.as_ref(), raw.redis.is_some());
    let mut ops = ops::ops(c, &base, &raw);
    ops.tracing = tracing::tracing(c, &raw.tracing);
    let redis = redis::redis(c, &base, raw.redis.as_ref());
    let cache = cache::cache(c, raw.cache.as_ref());
    let events = events::events(c, &base, raw.events.as_ref());
    let cors = raw.cors.as_ref().and_then(|r| cors::cors(c, r, "cors"));
    let compression = compression::compression(c, raw.compression.as_ref());
    let openapi = openapi::openapi(c, raw.openapi.as_ref());
    Config {
        source: file.to_owned(),
        listeners: listeners.public,
        admin: listeners.admin,
        descriptors,
        upstreams,
        routes,
        limits,
        workers,
        path_unescape,
        auth,
        rate_limits,
        ops,
        redis,
        cache,
        events,
        cors,
        compression,
        openapi,
    }
}

#[cfg(test)]
mod tests {
    use super::route::DEFAULT_ROUTE_TIMEOUT;
    use super::*;
    use crate::config::WorkerCount;

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
        let workers = |text: &str| parse(Path::new("g.yaml"), text).map(|c| c.workers);
        assert_eq!(workers(base).expect("valid"), WorkerCount::Auto);
        assert_eq!(
            workers(&format!("{base}workers: auto\n")).expect("valid"),
            WorkerCount::Auto
        );
        assert_eq!(
            workers(&format!("{base}workers: 3\n")).expect("valid"),
            WorkerCount::Threads(3)
        );
        assert_eq!(WorkerCount::Auto.threads(6), 6);
        assert_eq!(WorkerCount::Threads(3).threads(6), 3);
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

    #[test]
    fn reflection_stands_in_for_local_descriptors_per_upstream_or_for_all() {
        let head = "listeners:\n  http:\n    address: 127.0.0.1:0\n";
        let routes = "routes:\n  - service: s.A\n    upstream: a\n";
        let upstreams =
            "upstreams:\n  a:\n    address: 127.0.0.1:1\n  b:\n    address: 127.0.0.1:2\n";
        let one = format!(
            "{head}upstreams:\n  a:\n    address: 127.0.0.1:1\n    reflection: true\n  b:\n    address: 127.0.0.1:2\n{routes}"
        );
        let config = parse(Path::new("g.yaml"), &one).expect("valid");
        let reflecting: Vec<bool> = config.upstreams.iter().map(|u| u.reflection).collect();
        assert_eq!(reflecting, [true, false]);
        assert_eq!(
            config.descriptors.refresh_interval,
            std::time::Duration::from_secs(60)
        );

        let all = format!(
            "{head}descriptors:\n  reflection: true\n  refresh_interval: 5s\n{upstreams}{routes}"
        );
        let config = parse(Path::new("g.yaml"), &all).expect("valid");
        assert!(config.upstreams.iter().all(|u| u.reflection));
        assert_eq!(
            config.descriptors.refresh_interval,
            std::time::Duration::from_secs(5)
        );

        let none = format!("{head}{upstreams}{routes}");
        let errors = parse(Path::new("g.yaml"), &none).expect_err("no descriptors");
        assert_eq!(
            errors.to_string(),
            "g.yaml: descriptors: names no proto_dirs, proto_files or descriptor_sets (and no upstream has reflection: true)"
        );
        let zero = format!(
            "{head}descriptors:\n  reflection: true\n  refresh_interval: 0s\n{upstreams}{routes}"
        );
        let errors = parse(Path::new("g.yaml"), &zero).expect_err("zero interval");
        assert_eq!(
            errors.to_string(),
            "g.yaml:6:21: descriptors.refresh_interval: must be greater than zero"
        );
    }
}
