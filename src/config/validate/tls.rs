//! Checks of a listener's `tls:`: its certificates, default certificate, mutual TLS and
//! timeouts.
//!
//! Only the shape and the values are checked here (durations, that every certificate has a cert
//! and a key, that the default names a certificate); `validate` also opens the files
//! (`crate::certs::check_files`), and the listener reads them again when it starts.

use std::path::Path;
use std::time::Duration;

use super::checker::{Checker, located_path, place};
use crate::config::error::Place;
use crate::config::raw::{At, RawCertificate, RawClientAuth, RawListenerTls};
use crate::config::tls::{CertificateConfig, ClientAuthConfig, ClientAuthMode, TlsListenerConfig};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `reload_interval` when absent, here and for `upstreams.<name>.tls`.
pub(super) const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Checks the `tls:` of the listener at `key` (errors without a place of their own point at
/// `at`, its address); `None` when a value is unusable (the problem is recorded in `c`).
pub(super) fn tls_listener(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &RawListenerTls,
    (key, at): (&str, &At<String>),
) -> Option<TlsListenerConfig> {
    if raw.certificates.is_empty() {
        c.error(
            place(at),
            format!("{key}.certificates"),
            "at least one certificate is required",
        );
    }
    let certificates: Vec<CertificateConfig> = raw
        .certificates
        .iter()
        .enumerate()
        .map(|(i, cert)| certificate(c, base, cert, &format!("{key}.certificates[{i}]")))
        .collect();
    let default_certificate = raw
        .default_certificate
        .as_ref()
        .map(|name| default_certificate(c, &certificates, name, key));
    let client_auth = match &raw.client_auth {
        Some(auth) => client_auth(c, base, auth, (key, at))?,
        None => None,
    };
    let handshake_timeout = raw
        .handshake_timeout
        .as_ref()
        .and_then(|v| c.duration(v, &format!("{key}.handshake_timeout")))
        .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
    let reload_interval = raw
        .reload_interval
        .as_ref()
        .and_then(|v| c.duration(v, &format!("{key}.reload_interval")))
        .unwrap_or(DEFAULT_RELOAD_INTERVAL);
    if certificates.is_empty() {
        return None;
    }
    Some(TlsListenerConfig {
        certificates,
        default_certificate,
        client_auth,
        handshake_timeout,
        reload_interval,
    })
}

/// `<listener>.tls.certificates[i]`: paths resolved, server names checked.
fn certificate(
    c: &mut Checker<'_>,
    base: &Path,
    cert: &RawCertificate,
    key: &str,
) -> CertificateConfig {
    let server_names = cert
        .server_names
        .iter()
        .enumerate()
        .filter_map(|(j, name)| server_name(c, name, &format!("{key}.server_names[{j}]")))
        .collect();
    CertificateConfig {
        cert: located_path(base, &cert.cert, format!("{key}.cert")),
        key: located_path(base, &cert.key, format!("{key}.key")),
        server_names,
    }
}

/// `<listener>.tls.default_certificate`, lower-cased.
///
/// Names of certificates without `server_names` come from the certificate files, so a default
/// naming none of the written names can only be refused here when every certificate lists some.
fn default_certificate(
    c: &mut Checker<'_>,
    certificates: &[CertificateConfig],
    name: &At<String>,
    key: &str,
) -> String {
    let wanted = name.value.to_ascii_lowercase();
    let listed = certificates
        .iter()
        .any(|cert| cert.server_names.contains(&wanted));
    let all_listed = certificates
        .iter()
        .all(|cert| !cert.server_names.is_empty());
    if !listed && all_listed {
        c.error(
            place(name),
            format!("{key}.default_certificate"),
            format!(
                "`{}` is not a server_names entry of any certificate",
                name.value
            ),
        );
    }
    wanted
}

/// `<listener>.tls.client_auth`: mutual TLS; `Some(None)` for mode `none`, `None` when the
/// mode is unknown or the CA it needs is missing.
fn client_auth(
    c: &mut Checker<'_>,
    base: &Path,
    auth: &RawClientAuth,
    (key, at): (&str, &At<String>),
) -> Option<Option<ClientAuthConfig>> {
    let mode = match auth.mode.as_ref().map(|m| m.value.as_str()) {
        None | Some("required") => ClientAuthMode::Required,
        Some("optional") => ClientAuthMode::Optional,
        Some("none") => return Some(None),
        Some(other) => {
            let at = auth.mode.as_ref().map_or(Place::default(), place);
            c.error(
                at,
                format!("{key}.client_auth.mode"),
                format!("`{other}`: use none, optional or required"),
            );
            return None;
        }
    };
    let Some(ca) = &auth.ca else {
        let at = auth.mode.as_ref().map_or_else(|| place(at), place);
        c.error(
            at,
            format!("{key}.client_auth.ca"),
            "a CA bundle is needed to verify client certificates (or set mode: none)",
        );
        return None;
    };
    Some(Some(ClientAuthConfig {
        ca: located_path(base, ca, format!("{key}.client_auth.ca")),
        mode,
    }))
}

/// A server name as SNI carries it: a DNS name, optionally with one leading `*.` label.
fn server_name(c: &mut Checker<'_>, value: &At<String>, key: &str) -> Option<String> {
    let name = value.value.trim().to_ascii_lowercase();
    let bare = name.strip_prefix("*.").unwrap_or(&name);
    let valid = !bare.is_empty()
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Some(name)
    } else {
        c.error(
            place(value),
            key,
            format!("`{}` is not a DNS name (or *.name)", value.value),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ClientAuthMode, Config};

    fn parse(tls: &str) -> Result<Config, crate::config::ConfigErrors> {
        let text = format!(
            "listeners:\n  tls:\n    address: 127.0.0.1:8443\n{tls}descriptors:\n  proto_dirs: [proto]\n\
             upstreams:\n  u:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.S\n    upstream: u\n"
        );
        Config::parse(Path::new("conf/gateway.yaml"), &text)
    }

    #[test]
    fn defaults_and_paths_relative_to_the_config_folder() {
        let config = parse(
            "    certificates:\n      - cert: c.pem\n        key: k.pem\n        server_names: [A.Example, '*.b.example']\n    client_auth:\n      ca: ca.pem\n",
        )
        .expect("valid");
        let tls = config.listeners[0].tls.clone().expect("tls");
        assert_eq!(tls.certificates[0].cert.value, Path::new("conf/c.pem"));
        assert_eq!(
            tls.certificates[0].server_names,
            ["a.example", "*.b.example"]
        );
        assert_eq!(tls.default_certificate, None);
        let auth = tls.client_auth.expect("client auth");
        assert_eq!(auth.mode, ClientAuthMode::Required);
        assert_eq!(auth.ca.value, Path::new("conf/ca.pem"));
        assert_eq!(tls.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(tls.reload_interval, DEFAULT_RELOAD_INTERVAL);
    }

    #[test]
    fn rejects_bad_names_empty_lists_and_zero_timeouts() {
        let errors = parse(
            "    certificates:\n      - cert: c.pem\n        key: k.pem\n        server_names: ['a..b', 'x_y.test']\n    handshake_timeout: 0s\n",
        )
        .expect_err("invalid")
        .0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listeners.tls.certificates[0].server_names[0]",
                "listeners.tls.certificates[0].server_names[1]",
                "listeners.tls.handshake_timeout"
            ]
        );
        let errors = parse("    certificates: []\n").expect_err("invalid").0;
        assert_eq!(errors[0].key, "listeners.tls.certificates");
        let errors = parse("    certificates: []\n    verify: none\n")
            .expect_err("unknown key")
            .0;
        assert!(errors[0].reason.contains("verify"), "{}", errors[0].reason);
    }
}
