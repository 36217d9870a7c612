//! Checks of `redis:`: exactly one of `url`, `sentinel`, `cluster`; URLs with a redis scheme;
//! secrets read from the environment or a file at load time.

use std::path::Path;

use super::checker::{Checker, located_path, place};
use crate::config::edge::Secret;
use crate::config::raw::{At, RawRedis, RawSecret};
use crate::config::redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT, RedisConfig, RedisTarget, RedisTls,
};

/// `redis:`, if present and usable.
pub(super) fn redis(
    c: &mut Checker<'_>,
    base: &Path,
    raw: Option<&RawRedis>,
) -> Option<RedisConfig> {
    let raw = raw?;
    let target = target(c, raw)?;
    let timeout = match &raw.timeout {
        Some(v) => c
            .duration(v, "redis.timeout")
            .unwrap_or(DEFAULT_REDIS_TIMEOUT),
        None => DEFAULT_REDIS_TIMEOUT,
    };
    let tls = raw.tls.as_ref().map(|tls| RedisTls {
        ca: tls
            .ca
            .as_ref()
            .map(|ca| located_path(base, ca, "redis.tls.ca".to_owned()).value),
    });
    let password = raw
        .password
        .as_ref()
        .and_then(|p| secret(c, base, p, "redis.password"));
    Some(RedisConfig {
        target,
        username: raw.username.as_ref().map(|u| u.value.clone()),
        password,
        tls,
        timeout,
        key_prefix: raw
            .key_prefix
            .as_ref()
            .map_or_else(|| DEFAULT_KEY_PREFIX.to_owned(), |p| p.value.clone()),
        place: raw
            .url
            .as_ref()
            .map(place)
            .or_else(|| raw.sentinel.as_ref().map(|s| place(&s.master)))
            .or_else(|| {
                raw.cluster
                    .as_ref()
                    .and_then(|c| c.nodes.first())
                    .map(place)
            })
            .unwrap_or_default(),
    })
}

/// The one deployment form the section names.
fn target(c: &mut Checker<'_>, raw: &RawRedis) -> Option<RedisTarget> {
    let forms = [
        raw.url.is_some(),
        raw.sentinel.is_some(),
        raw.cluster.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        let at = raw.url.as_ref().map(place).unwrap_or_default();
        c.error(
            at,
            "redis",
            "set exactly one of `url`, `sentinel` or `cluster`",
        );
        return None;
    }
    if let Some(url) = &raw.url {
        return redis_url(c, url, "redis.url").map(RedisTarget::Standalone);
    }
    if let Some(sentinel) = &raw.sentinel {
        let nodes = urls(c, &sentinel.nodes, "redis.sentinel.nodes")?;
        let db = match &sentinel.db {
            Some(v) => match v.value.trim().parse::<i64>() {
                Ok(db) if db >= 0 => db,
                _ => {
                    c.error(
                        place(v),
                        "redis.sentinel.db",
                        "use a database number (0, 1, ...)",
                    );
                    return None;
                }
            },
            None => 0,
        };
        return Some(RedisTarget::Sentinel {
            master: sentinel.master.value.clone(),
            nodes,
            db,
        });
    }
    let cluster = raw.cluster.as_ref()?;
    urls(c, &cluster.nodes, "redis.cluster.nodes").map(RedisTarget::Cluster)
}

/// A non-empty list of Redis URLs.
fn urls(c: &mut Checker<'_>, raw: &[At<String>], key: &str) -> Option<Vec<String>> {
    if raw.is_empty() {
        c.error(Default::default(), key, "name at least one node");
        return None;
    }
    let checked: Vec<String> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, url)| redis_url(c, url, &format!("{key}[{i}]")))
        .collect();
    (checked.len() == raw.len()).then_some(checked)
}

/// A `redis://` or `rediss://` URL.
fn redis_url(c: &mut Checker<'_>, url: &At<String>, key: &str) -> Option<String> {
    let text = url.value.trim();
    let ok = ["redis://", "rediss://"]
        .iter()
        .any(|scheme| text.len() > scheme.len() && text.starts_with(scheme));
    if !ok {
        let reason = format!(
            "`{}`: use redis://host:port/db (or rediss:// for TLS)",
            crate::config::redact_url(text)
        );
        c.error(place(url), key, reason);
        return None;
    }
    Some(text.to_owned())
}

/// A secret's value: written as is, from `{ env: NAME }`, or from `{ file: path }` (one
/// trailing newline dropped). A missing variable or unreadable file is a config error.
pub(super) fn secret(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &RawSecret,
    key: &str,
) -> Option<Secret<String>> {
    let source = match raw {
        RawSecret::Text(text) => return Some(Secret::new(text.value.clone())),
        RawSecret::From(source) => source,
    };
    match (&source.env, &source.file) {
        (Some(name), None) => match std::env::var(&name.value) {
            Ok(value) => Some(Secret::new(value)),
            Err(_) => {
                let reason = format!("environment variable `{}` is not set", name.value);
                c.error(place(name), key, reason);
                None
            }
        },
        (None, Some(file)) => {
            let path = located_path(base, file, key.to_owned()).value;
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(Secret::new(
                    text.strip_suffix('\n').unwrap_or(&text).to_owned(),
                )),
                Err(e) => {
                    let reason = format!("cannot read `{}`: {e}", path.display());
                    c.error(place(file), key, reason);
                    None
                }
            }
        }
        _ => {
            let at = source.env.as_ref().or(source.file.as_ref()).map(place);
            c.error(
                at.unwrap_or_default(),
                key,
                "use { env: NAME } or { file: path }",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::redis::RedisTarget;
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("g.yaml"), &format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn no_redis_section_means_no_redis() {
        assert!(parse("").expect("valid").redis.is_none());
    }

    #[test]
    fn reads_the_three_forms_with_their_defaults() {
        let one = parse("redis:\n  url: redis://127.0.0.1:6379/0\n").expect("valid");
        let redis = one.redis.expect("redis");
        assert_eq!(
            redis.target,
            RedisTarget::Standalone("redis://127.0.0.1:6379/0".to_owned())
        );
        assert_eq!(redis.timeout, Duration::from_millis(25));
        assert_eq!(redis.key_prefix, "tai:");
        let sentinel = parse(
            "redis:\n  sentinel:\n    master: mymaster\n    nodes: [redis://10.0.0.1:26379, redis://10.0.0.2:26379]\n  timeout: 50ms\n",
        )
        .expect("valid");
        assert!(matches!(
            sentinel.redis.expect("redis").target,
            RedisTarget::Sentinel { ref master, ref nodes, db: 0 } if master == "mymaster" && nodes.len() == 2
        ));
        let cluster =
            parse("redis:\n  cluster:\n    nodes: [redis://10.0.0.1:7000]\n").expect("valid");
        assert!(matches!(
            cluster.redis.expect("redis").target,
            RedisTarget::Cluster(ref nodes) if nodes.len() == 1
        ));
    }

    #[test]
    fn refuses_two_forms_a_bad_url_and_a_missing_secret_with_their_places() {
        let two = parse("redis:\n  url: redis://a:1\n  cluster:\n    nodes: [redis://b:2]\n")
            .expect_err("two forms");
        assert!(
            two.contains("set exactly one of `url`, `sentinel` or `cluster`"),
            "{two}"
        );
        let scheme = parse("redis:\n  url: http://a:1\n").expect_err("scheme");
        assert!(
            scheme.contains("g.yaml:13:8: redis.url: `http://a:1`: use redis://host:port/db"),
            "{scheme}"
        );
        let env = parse("redis:\n  url: redis://a:1\n  password: { env: TAI_TEST_NO_SUCH_VAR }\n")
            .expect_err("env");
        assert!(
            env.contains("redis.password: environment variable `TAI_TEST_NO_SUCH_VAR` is not set"),
            "{env}"
        );
    }

    #[test]
    fn reads_a_password_from_a_file_and_never_shows_it() {
        let dir = std::env::temp_dir().join(format!("tai-redis-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("redis-password");
        std::fs::write(&file, "s3cret\n").expect("write");
        let config = parse(&format!(
            "redis:\n  url: redis://a:1\n  password: {{ file: {} }}\n",
            file.display()
        ))
        .expect("valid");
        let redis = config.redis.expect("redis");
        assert_eq!(
            redis.password.as_ref().map(|p| p.expose().as_str()),
            Some("s3cret")
        );
        assert!(!format!("{redis:?}").contains("s3cret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
