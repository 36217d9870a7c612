//! Checks of the operational sections of `gateway.yaml` (`reload`, `access_log`, `log_level`,
//! `shutdown`) into an [`OpsConfig`].

use std::path::Path;

use super::checker::{Checker, place};
use crate::config::ops::{AccessLogTarget, LogFormat, OpsConfig};
use crate::config::raw::RawConfig;

/// Log levels `log_level` accepts as a bare word; anything with `=` or `,` is a full filter.
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// The operational sections, defaults filled in.
pub(super) fn ops(c: &mut Checker<'_>, base: &Path, raw: &RawConfig) -> OpsConfig {
    let mut ops = OpsConfig::default();
    if let Some(watch) = raw.reload.watch {
        ops.watch = watch;
    }
    if let Some(v) = &raw.reload.poll_interval
        && let Some(d) = c.duration(v, "reload.poll_interval")
    {
        ops.poll_interval = d;
    }
    let log = &raw.access_log;
    ops.access_log = match (log.enabled, &log.path) {
        (Some(false), _) => None,
        (_, None) => Some(AccessLogTarget::Stdout),
        (_, Some(p)) if p.value == "stdout" => Some(AccessLogTarget::Stdout),
        (_, Some(p)) if p.value.trim().is_empty() => {
            c.error(
                place(p),
                "access_log.path",
                "must be `stdout` or a file path",
            );
            None
        }
        (_, Some(p)) => Some(AccessLogTarget::File(base.join(&p.value))),
    };
    logging(c, raw, &mut ops);
    if let Some(v) = &raw.shutdown.drain_timeout
        && let Some(d) = c.duration(v, "shutdown.drain_timeout")
    {
        ops.drain_timeout = d;
    }
    ops
}

/// `log_level` (a level or a `RUST_LOG` filter) and `log_format`.
fn logging(c: &mut Checker<'_>, raw: &RawConfig, ops: &mut OpsConfig) {
    if let Some(v) = &raw.log_level {
        let text = v.value.trim();
        let filter = (text.contains('=') || text.contains(','))
            && tracing_subscriber::EnvFilter::try_new(text).is_ok();
        if filter || LEVELS.contains(&text.to_ascii_lowercase().as_str()) {
            ops.log_level = text.to_owned();
        } else {
            c.error(
                place(v),
                "log_level",
                format!("`{text}`: use error, warn, info, debug, trace, off or a RUST_LOG filter"),
            );
        }
    }
    if let Some(v) = &raw.log_format {
        match v.value.trim() {
            "text" => ops.log_format = LogFormat::Text,
            "json" => ops.log_format = LogFormat::Json,
            other => c.error(
                place(v),
                "log_format",
                format!("`{other}`: use text or json"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{AccessLogTarget, Config, OpsConfig};

    const BASE: &str = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(
            std::path::Path::new("/etc/tai/g.yaml"),
            &format!("{BASE}{extra}"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn ops_sections_default_to_watching_and_logging_to_stdout() {
        let config = parse("").expect("valid");
        assert_eq!(config.ops, OpsConfig::default());
        assert!(config.ops.watch);
        assert_eq!(config.ops.access_log, Some(AccessLogTarget::Stdout));
    }

    #[test]
    fn ops_sections_are_read() {
        let config = parse(
            "reload:\n  watch: false\n  poll_interval: 200ms\naccess_log:\n  path: logs/access.log\nlog_level: debug\nshutdown:\n  drain_timeout: 5s\n",
        )
        .expect("valid");
        assert!(!config.ops.watch);
        assert_eq!(config.ops.poll_interval, Duration::from_millis(200));
        assert_eq!(
            config.ops.access_log,
            Some(AccessLogTarget::File("/etc/tai/logs/access.log".into()))
        );
        assert_eq!(config.ops.log_level, "debug");
        assert_eq!(config.ops.drain_timeout, Duration::from_secs(5));
        let filter = parse("log_level: info,tai_gateway=debug\n").expect("valid");
        assert_eq!(filter.ops.log_level, "info,tai_gateway=debug");
        let off = parse("access_log:\n  enabled: false\n").expect("valid");
        assert_eq!(off.ops.access_log, None);
    }

    #[test]
    fn bad_ops_values_are_reported_with_their_line() {
        let errors = parse("log_level: loud\nshutdown:\n  drain_timeout: 0s\n").expect_err("bad");
        assert_eq!(
            errors,
            "/etc/tai/g.yaml:12:12: log_level: `loud`: use error, warn, info, debug, trace, off or a RUST_LOG filter\n/etc/tai/g.yaml:14:18: shutdown.drain_timeout: must be greater than zero"
        );
    }
}
