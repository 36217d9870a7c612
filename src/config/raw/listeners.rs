//! `listeners:` and `admin:` the YAML shape of the sockets the gateway listens on.

use serde::Deserialize;

use super::At;

/// `listeners:` the public sockets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListeners {
    pub(crate) http: Option<RawHttpListener>,
    #[serde(default)]
    pub(crate) tls: Option<RawTlsListener>,
}

/// `listeners.http:` plain HTTP/1.1 + h2c.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpListener {
    pub(crate) address: At<String>,
}

/// `admin:` the operator-only server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) address: At<String>,
}

/// `listeners.tls:` HTTPS (HTTP/1.1 and HTTP/2 by ALPN).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsListener {
    pub(crate) address: At<String>,
    pub(crate) certificates: Vec<RawCertificate>,
    #[serde(default)]
    pub(crate) default_certificate: Option<At<String>>,
    #[serde(default)]
    pub(crate) client_auth: Option<RawClientAuth>,
    #[serde(default)]
    pub(crate) handshake_timeout: Option<At<String>>,
    #[serde(default)]
    pub(crate) reload_interval: Option<At<String>>,
}

/// `listeners.tls.certificates[]:` one certificate chain and its key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificate {
    pub(crate) cert: At<String>,
    pub(crate) key: At<String>,
    #[serde(default)]
    pub(crate) server_names: Vec<At<String>>,
}

/// `listeners.tls.client_auth:` mutual TLS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientAuth {
    pub(crate) ca: At<String>,
    #[serde(default)]
    pub(crate) mode: Option<At<String>>,
}
