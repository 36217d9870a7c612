//! `listeners:` and `admin:` the YAML shape of the sockets the gateway listens on.
//!
//! `listeners:` is a list of named listeners. The earlier shape, a map with the keys `http` and
//! `tls`, is still read: [`RawListeners::entries`] turns it into the list entries `http` and
//! `https`, so every later check sees one shape.

use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

use super::At;

/// `listeners:` the public sockets, as a list or in the earlier `http:`/`tls:` map shape.
#[derive(Debug)]
pub(crate) enum RawListeners {
    /// `listeners: [ { name, address, tls, routes }, … ]`.
    List(Vec<RawListener>),
    /// `listeners: { http: …, tls: … }`.
    Map(Box<RawListenerMap>),
}

impl<'de> Deserialize<'de> for RawListeners {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // By the YAML node's kind rather than `untagged`: each shape keeps its own precise error
        // (unknown key, missing field) and the places of its values.
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = RawListeners;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of listeners (- name: …, address: …)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawListeners, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(RawListeners::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawListeners, A::Error> {
                RawListenerMap::deserialize(MapAccessDeserializer::new(map))
                    .map(|m| RawListeners::Map(Box::new(m)))
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

impl RawListeners {
    /// The listeners as list entries; the map shape's `http` and `tls` become the entries named
    /// `http` and `https` (the names their metrics always had).
    pub(crate) fn entries(&self) -> Vec<RawListener> {
        let map = match self {
            RawListeners::List(list) => return list.clone(),
            RawListeners::Map(map) => map,
        };
        let named = |name: &str, at: &At<String>| At {
            value: name.to_owned(),
            referenced: at.referenced,
            defined: at.defined,
        };
        let mut entries = Vec::new();
        if let Some(http) = &map.http {
            entries.push(RawListener {
                name: named("http", &http.address),
                address: http.address.clone(),
                tls: None,
                routes: None,
            });
        }
        if let Some(tls) = &map.tls {
            entries.push(RawListener {
                name: named("https", &tls.address),
                address: tls.address.clone(),
                tls: Some(RawListenerTls {
                    certificates: tls.certificates.clone(),
                    default_certificate: tls.default_certificate.clone(),
                    client_auth: tls.client_auth.clone(),
                    handshake_timeout: tls.handshake_timeout.clone(),
                    reload_interval: tls.reload_interval.clone(),
                }),
                routes: None,
            });
        }
        entries
    }

    /// The key path of entry `index` of [`RawListeners::entries`], as the operator wrote it.
    pub(crate) fn key(&self, index: usize) -> String {
        match self {
            RawListeners::List(_) => format!("listeners[{index}]"),
            RawListeners::Map(map) if index == 0 && map.http.is_some() => {
                "listeners.http".to_owned()
            }
            RawListeners::Map(_) => "listeners.tls".to_owned(),
        }
    }

    /// The key path of the `tls:` of entry `index` (in the map shape, the entry itself).
    pub(crate) fn tls_key(&self, index: usize) -> String {
        match self {
            RawListeners::List(_) => format!("listeners[{index}].tls"),
            RawListeners::Map(_) => "listeners.tls".to_owned(),
        }
    }
}

/// `listeners[]:` one public listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    pub(crate) name: At<String>,
    pub(crate) address: At<String>,
    #[serde(default)]
    pub(crate) tls: Option<RawListenerTls>,
    #[serde(default)]
    pub(crate) routes: Option<Vec<At<String>>>,
}

/// `listeners[].tls:` HTTPS (HTTP/1.1 and HTTP/2 by ALPN).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListenerTls {
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

/// The earlier `listeners:` map: at most one cleartext and one HTTPS listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListenerMap {
    pub(crate) http: Option<RawHttpListener>,
    #[serde(default)]
    pub(crate) tls: Option<RawTlsListener>,
}

/// `listeners.http:` (map shape) plain HTTP/1.1 + h2c.
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

/// `listeners.tls:` (map shape) HTTPS: the address and the fields of [`RawListenerTls`].
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

/// `tls.certificates[]:` one certificate chain and its key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificate {
    pub(crate) cert: At<String>,
    pub(crate) key: At<String>,
    #[serde(default)]
    pub(crate) server_names: Vec<At<String>>,
}

/// `tls.client_auth:` mutual TLS: `mode` none, optional or required (the default), and the CA
/// bundle client certificates must chain to (needed unless the mode is none).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientAuth {
    #[serde(default)]
    pub(crate) ca: Option<At<String>>,
    #[serde(default)]
    pub(crate) mode: Option<At<String>>,
}
