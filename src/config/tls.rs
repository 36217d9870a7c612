//! `listeners.tls`: the TLS listener's YAML shape and its validated form.
//!
//! Only the shape and the values are checked here (addresses, durations, that every certificate has
//! a cert and a key, that the default names a certificate). Reading the PEM files happens when the
//! listener starts (`crate::tls`), so a missing or broken file is a startup error naming that file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{At, RawTlsListener};
use super::validate::{Checker, place};
use super::{Located, Place};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The validated TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListenerConfig {
    /// Where it listens.
    pub address: SocketAddr,
    /// Certificates in file order; SNI picks one by its server names.
    pub certificates: Vec<CertificateConfig>,
    /// The server name whose certificate is served to clients that send no SNI or an unknown
    /// name; `None` = the first certificate.
    pub default_certificate: Option<String>,
    /// Mutual TLS, when configured.
    pub client_auth: Option<ClientAuthConfig>,
    /// Time a client gets to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// How often the certificate, key and CA files are checked for changes.
    pub reload_interval: Duration,
}

/// One certificate chain with its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Located<PathBuf>,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key: Located<PathBuf>,
    /// Lower-case SNI names (`*.example.com` matches one label); empty = the DNS names of the
    /// certificate's subjectAltName, read when it is loaded.
    pub server_names: Vec<String>,
}

/// Whether a client certificate is demanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// Handshakes without a valid client certificate fail.
    Required,
    /// A client certificate is verified when sent; clients without one are served anonymously.
    Optional,
}

/// Mutual TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthConfig {
    /// PEM bundle of the CAs client certificates must chain to.
    pub ca: Located<PathBuf>,
    /// Required or optional.
    pub mode: ClientAuthMode,
}

fn path(base: &Path, value: &At<String>, key: String) -> Located<PathBuf> {
    Located {
        value: base.join(&value.value),
        place: place(value),
        key,
    }
}

/// Checks `listeners.tls`; `None` when a value is unusable (the problem is recorded in `c`).
pub(crate) fn validate(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &RawTlsListener,
) -> Option<TlsListenerConfig> {
    let address = c.socket_addr(&raw.address, "listeners.tls.address");
    if raw.certificates.is_empty() {
        c.error(
            place(&raw.address),
            "listeners.tls.certificates",
            "at least one certificate is required",
        );
    }
    let certificates: Vec<CertificateConfig> = raw
        .certificates
        .iter()
        .enumerate()
        .map(|(i, cert)| {
            let key = format!("listeners.tls.certificates[{i}]");
            let server_names = cert
                .server_names
                .iter()
                .enumerate()
                .filter_map(|(j, name)| server_name(c, name, &format!("{key}.server_names[{j}]")))
                .collect();
            CertificateConfig {
                cert: path(base, &cert.cert, format!("{key}.cert")),
                key: path(base, &cert.key, format!("{key}.key")),
                server_names,
            }
        })
        .collect();
    // Names of certificates without `server_names` come from the certificate files, so a default
    // naming none of the written names can only be refused here when every certificate lists some.
    let default_certificate = raw.default_certificate.as_ref().map(|name| {
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
                "listeners.tls.default_certificate",
                format!(
                    "`{}` is not a server_names entry of any certificate",
                    name.value
                ),
            );
        }
        wanted
    });
    let client_auth = raw.client_auth.as_ref().and_then(|auth| {
        let mode = match auth.mode.as_ref().map(|m| m.value.as_str()) {
            None | Some("required") => ClientAuthMode::Required,
            Some("optional") => ClientAuthMode::Optional,
            Some(other) => {
                let at = auth.mode.as_ref().map_or(Place::default(), place);
                c.error(
                    at,
                    "listeners.tls.client_auth.mode",
                    format!("`{other}`: use required or optional"),
                );
                return None;
            }
        };
        Some(ClientAuthConfig {
            ca: path(base, &auth.ca, "listeners.tls.client_auth.ca".to_owned()),
            mode,
        })
    });
    let handshake_timeout = raw
        .handshake_timeout
        .as_ref()
        .and_then(|v| c.duration(v, "listeners.tls.handshake_timeout"))
        .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
    let reload_interval = raw
        .reload_interval
        .as_ref()
        .and_then(|v| c.duration(v, "listeners.tls.reload_interval"))
        .unwrap_or(DEFAULT_RELOAD_INTERVAL);
    if certificates.is_empty() {
        return None;
    }
    Some(TlsListenerConfig {
        address: address?,
        certificates,
        default_certificate,
        client_auth,
        handshake_timeout,
        reload_interval,
    })
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
    use crate::config::Config;

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
        let tls = config.tls_listener.expect("tls");
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
