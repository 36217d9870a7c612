//! Checks of the listener keys: `listeners.http`, `admin`, `limits` (the public listener's protocol
//! bounds) and `workers` (the threads serving its connections). `listeners.tls` has its own module.

use std::net::SocketAddr;
use std::path::Path;

use super::checker::{Checker, place};
use crate::config::gateway::{ListenerLimits, WorkerCount};
use crate::config::raw::{At, RawConfig, RawLimits};
use crate::config::tls::TlsListenerConfig;

/// Most worker threads accepted: more than any machine this runs on has cores for.
const MAX_WORKERS: usize = 1024;

/// The checked listener addresses; `None` where absent or unusable.
pub(super) struct Listeners {
    /// `listeners.http.address`.
    pub(super) http: Option<SocketAddr>,
    /// `admin.address`.
    pub(super) admin: Option<SocketAddr>,
    /// `listeners.tls`.
    pub(super) tls: Option<TlsListenerConfig>,
}

/// `listeners.http`, `admin` and `listeners.tls`; the admin server must not take the public port.
pub(super) fn listeners(c: &mut Checker<'_>, base: &Path, raw: &RawConfig) -> Listeners {
    let http = raw
        .listeners
        .http
        .as_ref()
        .and_then(|l| c.socket_addr(&l.address, "listeners.http.address"));
    let admin = raw
        .admin
        .as_ref()
        .and_then(|a| c.socket_addr(&a.address, "admin.address"));
    let tls = raw
        .listeners
        .tls
        .as_ref()
        .and_then(|t| super::tls::tls_listener(c, base, t));
    if let (Some(a), Some(b)) = (http, admin)
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
    Listeners { http, admin, tls }
}

/// `limits:` defaults filled in.
pub(super) fn limits(c: &mut Checker<'_>, raw: &RawLimits) -> ListenerLimits {
    let mut limits = ListenerLimits::default();
    if let Some(v) = &raw.max_header_bytes
        && let Some(n) = c.size(v, "limits.max_header_bytes")
    {
        limits.max_header_bytes = n;
    }
    if let Some(v) = &raw.header_read_timeout
        && let Some(d) = c.duration(v, "limits.header_read_timeout")
    {
        limits.header_read_timeout = d;
    }
    if let Some(v) = &raw.body_read_timeout
        && let Some(d) = c.duration(v, "limits.body_read_timeout")
    {
        limits.body_read_timeout = d;
    }
    if let Some(v) = &raw.idle_timeout
        && let Some(d) = c.duration(v, "limits.idle_timeout")
    {
        limits.idle_timeout = d;
    }
    if let Some(v) = &raw.write_timeout
        && let Some(d) = c.duration(v, "limits.write_timeout")
    {
        limits.write_timeout = d;
    }
    connection_limits(c, raw, &mut limits);
    limits
}

/// Most connections and streams a setting may name.
const MAX_CONNECTIONS: usize = 1 << 20;

/// The connection, stream and buffered-answer bounds of `limits:`.
fn connection_limits(c: &mut Checker<'_>, raw: &RawLimits, limits: &mut ListenerLimits) {
    if let Some(v) = &raw.max_connections {
        match c.count(v, "limits.max_connections", MAX_CONNECTIONS) {
            Some(0) => c.error(
                place(v),
                "limits.max_connections",
                "must be greater than zero",
            ),
            Some(n) => limits.max_connections = n,
            None => {}
        }
    }
    if let Some(v) = &raw.max_connections_per_ip
        && let Some(n) = c.count(v, "limits.max_connections_per_ip", MAX_CONNECTIONS)
    {
        limits.max_connections_per_ip = n;
    }
    if let Some(v) = &raw.max_concurrent_streams {
        let key = "limits.max_concurrent_streams";
        match c.count(v, key, 65_536) {
            Some(0) => c.error(place(v), key, "must be greater than zero"),
            Some(n) => limits.max_concurrent_streams = n as u32,
            None => {}
        }
    }
    if let Some(v) = &raw.max_buffered_response_bytes
        && let Some(n) = c.size(v, "limits.max_buffered_response_bytes")
    {
        limits.max_buffered_response_bytes = n;
    }
    if let Some(v) = &raw.max_buffered_response_bytes_per_connection
        && let Some(n) = c.size(v, "limits.max_buffered_response_bytes_per_connection")
    {
        limits.max_buffered_response_bytes_per_connection = n;
    }
}

/// `workers:` `auto` (one per CPU, the default) or a count from 1 to [`MAX_WORKERS`]. Kept as
/// written: the CPU count is looked up where the threads are started, not here.
pub(super) fn workers(c: &mut Checker<'_>, raw: Option<&At<String>>) -> WorkerCount {
    let Some(value) = raw else {
        return WorkerCount::Auto;
    };
    let text = value.value.trim();
    if text == "auto" {
        return WorkerCount::Auto;
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => WorkerCount::Threads(n),
        _ => {
            c.error(
                place(value),
                "workers",
                format!("`{text}`: use auto or a number of threads from 1 to {MAX_WORKERS}"),
            );
            WorkerCount::Auto
        }
    }
}
