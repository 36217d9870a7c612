//! [`Checker`]: collects the problems found while the raw config is walked, and reads the values
//! every section uses (durations, sizes, addresses), each problem placed at its file:line:col.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::error::{ConfigError, Located, Place};
use crate::config::raw::At;
use crate::config::units::{parse_duration, parse_size};

/// Collects problems while walking the raw config.
pub(super) struct Checker<'a> {
    /// The config file every problem points into.
    pub(super) file: &'a Path,
    /// Every problem found so far, in the order found (sorted by place at the end).
    pub(super) errors: Vec<ConfigError>,
}

impl Checker<'_> {
    /// Records a problem at `place` under the key path `key`.
    pub(super) fn error(
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

    /// A positive duration (`10s`); `None` (problem recorded) when unreadable or zero.
    pub(super) fn duration(&mut self, value: &At<String>, key: &str) -> Option<Duration> {
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

    /// A duration that may be zero (`clock_skew: 0s`), or `default` when absent or unreadable.
    pub(super) fn duration_or(
        &mut self,
        value: Option<&At<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        match parse_duration(&value.value) {
            Ok(d) => d,
            Err(reason) => {
                self.error(place(value), key, reason);
                default
            }
        }
    }

    /// A positive size (`4MiB`); `None` (problem recorded) when unreadable or zero.
    pub(super) fn size(&mut self, value: &At<String>, key: &str) -> Option<usize> {
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

    /// A whole number from 0 to `max`; `None` (problem recorded) when it is not one.
    pub(super) fn count(&mut self, value: &At<String>, key: &str, max: usize) -> Option<usize> {
        match value.value.trim().parse::<usize>() {
            Ok(n) if n <= max => Some(n),
            _ => {
                let reason = format!("`{}`: use a whole number from 0 to {max}", value.value);
                self.error(place(value), key, reason);
                None
            }
        }
    }

    /// An `ip:port` socket address.
    pub(super) fn socket_addr(&mut self, value: &At<String>, key: &str) -> Option<SocketAddr> {
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

/// Where a raw value was written.
pub(super) fn place<T>(value: &At<T>) -> Place {
    Place {
        line: value.referenced.line(),
        column: value.referenced.column(),
    }
}

/// A path written in the config, resolved against the config file's folder `base`.
pub(super) fn located_path(base: &Path, value: &At<String>, key: String) -> Located<PathBuf> {
    Located {
        value: base.join(&value.value),
        place: place(value),
        key,
    }
}
