//! Checks of the listener keys: `listeners` (each entry's name, address, routes, and its `tls`
//! in its own module), `admin`, `limits` (the public listeners' protocol bounds) and `workers`
//! (the threads serving their connections).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use super::checker::{Checker, place};
use crate::config::gateway::{ListenerLimits, WorkerCount};
use crate::config::raw::{RawConfig, RawLimits, RawListener};
use crate::config::tls::ListenerConfig;

/// Most worker threads accepted: more than any machine this runs on has cores for.
const MAX_WORKERS: usize = 1024;

/// The checked listeners; entries with an unusable value are left out.
pub(super) struct Listeners {
    /// `listeners`, in file order.
    pub(super) public: Vec<ListenerConfig>,
    /// `admin.address`.
    pub(super) admin: Option<SocketAddr>,
}

/// `listeners` and `admin`: names and addresses are unique (port 0, "any free port", may repeat),
/// and the admin server takes none of the public addresses.
pub(super) fn listeners(c: &mut Checker<'_>, base: &Path, raw: &RawConfig) -> Listeners {
    let mut public = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut addresses: HashMap<SocketAddr, String> = HashMap::new();
    for (i, entry) in raw.listeners.entries().iter().enumerate() {
        let key = raw.listeners.key(i);
        if let Some(first) = names.insert(entry.name.value.clone(), key.clone()) {
            let reason = format!("`{}` is also the name of {first}", entry.name.value);
            c.error(place(&entry.name), format!("{key}.name"), reason);
        }
        let keys = (key.as_str(), raw.listeners.tls_key(i));
        let Some(listener) = listener(c, base, entry, keys) else {
            continue;
        };
        let first = addresses
            .entry(listener.address)
            .or_insert_with(|| key.clone());
        if *first != key && listener.address.port() != 0 {
            let reason = format!("{} is also the address of {first}", listener.address);
            c.error(place(&entry.address), format!("{key}.address"), reason);
        }
        public.push(listener);
    }
    let admin = raw
        .admin
        .as_ref()
        .and_then(|a| c.socket_addr(&a.address, "admin.address"));
    if let (Some(admin_addr), Some(at)) = (admin, raw.admin.as_ref())
        && admin_addr.port() != 0
        && let Some(taken) = addresses.get(&admin_addr)
    {
        c.error(
            place(&at.address),
            "admin.address",
            format!("must differ from {taken}.address"),
        );
    }
    Listeners { public, admin }
}

/// One `listeners[]` entry at `key` (its `tls:` at `tls_key`); `None` when a value is unusable.
fn listener(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &RawListener,
    (key, tls_key): (&str, String),
) -> Option<ListenerConfig> {
    if raw.name.value.trim().is_empty() {
        c.error(place(&raw.name), format!("{key}.name"), "must not be empty");
    }
    let address = c.socket_addr(&raw.address, &format!("{key}.address"));
    let tls = match &raw.tls {
        Some(tls) => Some(super::tls::tls_listener(
            c,
            base,
            tls,
            (&tls_key, &raw.address),
        )?),
        None => None,
    };
    let routes = raw
        .routes
        .as_ref()
        .map(|names| names.iter().map(|n| n.value.clone()).collect());
    Some(ListenerConfig {
        name: raw.name.value.clone(),
        address: address?,
        tls,
        routes,
    })
}

/// Each `listeners[].routes` entry names a route (`routes[].name`, as written or defaulted).
pub(super) fn listener_routes(c: &mut Checker<'_>, raw: &RawConfig) {
    let known: HashSet<String> = raw
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| super::route::route_name(i, r))
        .collect();
    for (i, entry) in raw.listeners.entries().iter().enumerate() {
        for (j, name) in entry.routes.iter().flatten().enumerate() {
            if !known.contains(name.value.as_str()) {
                let key = format!("{}.routes[{j}]", raw.listeners.key(i));
                let reason = format!("`{}` is not the name of any route", name.value);
                c.error(place(name), key, reason);
            }
        }
    }
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
pub(super) fn workers(
    c: &mut Checker<'_>,
    raw: Option<&crate::config::raw::At<String>>,
) -> WorkerCount {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{ClientAuthMode, Config, ConfigErrors};

    const REST: &str = "descriptors:\n  proto_dirs: [proto]\nupstreams:\n  u:\n    address: 127.0.0.1:1\n\
                        routes:\n  - service: s.S\n    upstream: u\n  - name: second\n    service: s.T\n    upstream: u\n";

    fn parse(listeners: &str) -> Result<Config, ConfigErrors> {
        Config::parse(
            Path::new("conf/gateway.yaml"),
            &format!("{listeners}{REST}"),
        )
    }

    /// `line:column key: reason` of each error.
    fn errors(listeners: &str) -> Vec<String> {
        let errors = parse(listeners).expect_err("invalid").0;
        let show = |e: &crate::config::ConfigError| {
            format!(
                "{}:{} {}: {}",
                e.place.line, e.place.column, e.key, e.reason
            )
        };
        errors.iter().map(show).collect()
    }

    #[test]
    fn a_list_of_cleartext_and_tls_listeners_with_their_routes() {
        let config = parse(
            "listeners:\n  - name: plain\n    address: 127.0.0.1:8080\n\
             \x20 - name: partner\n    address: 127.0.0.1:9443\n    routes: [second]\n    tls:\n\
             \x20     certificates: [{ cert: c.pem, key: k.pem }]\n\
             \x20     client_auth: { ca: ca.pem, mode: optional }\n\
             \x20 - name: open\n    address: 127.0.0.1:9444\n    tls:\n\
             \x20     certificates: [{ cert: c.pem, key: k.pem }]\n      client_auth: { mode: none }\n",
        )
        .expect("valid");
        let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["plain", "partner", "open"]);
        assert_eq!(config.listeners[0].tls, None);
        assert_eq!(config.listeners[0].routes, None);
        let partner = &config.listeners[1];
        assert_eq!(partner.address.port(), 9443);
        assert_eq!(partner.routes.as_deref(), Some(&["second".to_owned()][..]));
        let auth = partner.tls.as_ref().and_then(|t| t.client_auth.as_ref());
        assert_eq!(auth.map(|a| a.mode), Some(ClientAuthMode::Optional));
        assert_eq!(
            auth.map(|a| a.ca.value.clone()),
            Some(Path::new("conf/ca.pem").to_owned())
        );
        let open = config.listeners[2].tls.as_ref().expect("tls");
        assert_eq!(open.client_auth, None);
    }

    #[test]
    fn the_map_shape_becomes_the_listeners_http_and_https() {
        let config = parse(
            "listeners:\n  http:\n    address: 127.0.0.1:8080\n  tls:\n    address: 127.0.0.1:8443\n\
             \x20   certificates: [{ cert: c.pem, key: k.pem }]\n",
        )
        .expect("valid");
        let names: Vec<(&str, u16, bool)> = config
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.address.port(), l.tls.is_some()))
            .collect();
        assert_eq!(names, [("http", 8080, false), ("https", 8443, true)]);
        let errors =
            errors("listeners:\n  http:\n    address: 127.0.0.1:8080\n  h2:\n    address: x\n");
        assert!(errors[0].contains("h2"), "{errors:?}");
    }

    #[test]
    fn duplicate_names_and_addresses_and_unknown_routes_are_refused_at_their_place() {
        let listeners = "listeners:\n  - name: a\n    address: 127.0.0.1:8080\n\
                         \x20 - name: a\n    address: 127.0.0.1:8080\n    routes: [second, third]\n\
                         \x20 - name: b\n    address: 127.0.0.1:0\n  - name: c\n    address: 127.0.0.1:0\n\
                         admin:\n  address: 127.0.0.1:8080\n";
        assert_eq!(
            errors(listeners),
            [
                "4:11 listeners[1].name: `a` is also the name of listeners[0]",
                "5:14 listeners[1].address: 127.0.0.1:8080 is also the address of listeners[0]",
                "6:22 listeners[1].routes[1]: `third` is not the name of any route",
                "12:12 admin.address: must differ from listeners[0].address",
            ]
        );
    }

    #[test]
    fn client_auth_needs_a_ca_unless_its_mode_is_none() {
        let tls = |auth: &str| {
            format!(
                "listeners:\n  - name: p\n    address: 127.0.0.1:9443\n    tls:\n\
                 \x20     certificates: [{{ cert: c.pem, key: k.pem }}]\n      client_auth: {auth}\n"
            )
        };
        assert_eq!(
            errors(&tls("{ mode: required }")),
            [
                "6:28 listeners[0].tls.client_auth.ca: a CA bundle is needed to verify client \
                 certificates (or set mode: none)"
            ]
        );
        assert_eq!(
            errors(&tls("{ ca: ca.pem, mode: sometimes }")),
            ["6:40 listeners[0].tls.client_auth.mode: `sometimes`: use none, optional or required"]
        );
    }
}
