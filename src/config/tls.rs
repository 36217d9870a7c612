//! The validated `listeners[]` entries: where each listens, the routes it serves, and for HTTPS
//! its certificates and mutual TLS.
//!
//! Paths are only resolved here; the PEM files are read when the listener starts, so a missing or
//! broken file is a startup error naming that file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Located;

/// One public listener: cleartext (HTTP/1.1 + h2c) or, with `tls`, HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Unique name, the `listener` label of its metrics.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// HTTPS settings; `None`: cleartext.
    pub tls: Option<TlsListenerConfig>,
    /// Names of the routes it serves; `None`: every route. A request for another route is a 404
    /// as for an unknown path.
    pub routes: Option<Vec<String>>,
}

/// The TLS settings of an HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListenerConfig {
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
