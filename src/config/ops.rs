//! The validated operational settings (`reload`, `access_log`, `log_level`, `log_format`,
//! `shutdown`, `tracing`).

use std::path::PathBuf;
use std::time::Duration;

use super::tracing::TracingConfig;

/// Operational settings: how the process is watched, logged and stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// Poll the config file and descriptor sources for changes and reload them.
    pub watch: bool,
    /// How often they are polled (a change is applied once it has been stable for one period).
    pub poll_interval: Duration,
    /// Access log: `None` when off.
    pub access_log: Option<AccessLogTarget>,
    /// `tracing` filter when `RUST_LOG` is not set (`info`, `debug`, `tai_gateway=debug`, ...).
    pub log_level: String,
    /// How log lines are written to stderr.
    pub log_format: LogFormat,
    /// How long in-flight requests get to finish after SIGTERM / SIGINT.
    pub drain_timeout: Duration,
    /// Trace export and sampling (`tracing:`); read once at start, not on reload.
    pub tracing: TracingConfig,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            watch: true,
            poll_interval: Duration::from_secs(1),
            access_log: Some(AccessLogTarget::Stdout),
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            drain_timeout: Duration::from_secs(30),
            tracing: TracingConfig::default(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (colours only when stderr is a terminal).
    Text,
    /// One JSON object per line (timestamp, level, target, message, fields), for log shippers.
    Json,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output.
    Stdout,
    /// Appended to this file (created if missing).
    File(PathBuf),
}
