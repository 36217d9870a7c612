//! The verified client identity of a mutual-TLS connection, and the request headers that carry it
//! to backends (through the routes' `request_to_metadata` allowlist, like any other header).
//!
//! The headers are the gateway's to set: [`apply`] removes any a client sent itself before adding
//! the verified values, and the plain-HTTP listener calls it with no identity, so a client can
//! never forge them.

use http::{HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Request header holding the client certificate's subject (`CN=alice, O=Example`).
pub const SUBJECT_HEADER: &str = "x-client-cert-subject";
/// Request header holding the client certificate's subjectAltNames (`DNS:a.example, URI:spiffe://…`).
pub const SAN_HEADER: &str = "x-client-cert-san";

/// Who the client proved to be with a certificate the configured CA signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject distinguished name, RFC 4514 style.
    pub subject: String,
    /// subjectAltName entries as `DNS:…`, `URI:…`, `email:…`, `IP:…`.
    pub san: Vec<String>,
}

impl ClientIdentity {
    /// Reads the identity from a (verified) end-entity certificate; `None` if it cannot be parsed.
    pub fn from_certificate(der: &CertificateDer<'_>) -> Option<ClientIdentity> {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
        let subject = cert.subject().to_string();
        let mut san = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(n) => san.push(format!("DNS:{n}")),
                    GeneralName::URI(u) => san.push(format!("URI:{u}")),
                    GeneralName::RFC822Name(e) => san.push(format!("email:{e}")),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_text(bytes) {
                            san.push(format!("IP:{ip}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(ClientIdentity { subject, san })
    }
}

fn ip_text(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Removes client-sent identity headers, then sets the verified identity's, if any. Values that
/// are not valid header text are left out rather than mangled.
pub fn apply(headers: &mut HeaderMap, identity: Option<&ClientIdentity>) {
    let subject = HeaderName::from_static(SUBJECT_HEADER);
    let san = HeaderName::from_static(SAN_HEADER);
    headers.remove(&subject);
    headers.remove(&san);
    let Some(identity) = identity else { return };
    if let Ok(value) = HeaderValue::from_str(&identity.subject) {
        headers.insert(subject, value);
    }
    if !identity.san.is_empty()
        && let Ok(value) = HeaderValue::from_str(&identity.san.join(", "))
    {
        headers.insert(san, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_sent_identity_headers_are_removed_without_an_identity() {
        let mut headers = HeaderMap::new();
        headers.insert(SUBJECT_HEADER, HeaderValue::from_static("CN=admin"));
        headers.append(SAN_HEADER, HeaderValue::from_static("DNS:evil"));
        headers.insert("x-tenant-id", HeaderValue::from_static("t1"));
        apply(&mut headers, None);
        assert!(headers.get(SUBJECT_HEADER).is_none());
        assert!(headers.get(SAN_HEADER).is_none());
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn verified_identity_replaces_client_sent_headers() {
        let mut headers = HeaderMap::new();
        headers.append(SUBJECT_HEADER, HeaderValue::from_static("CN=admin"));
        headers.append(SUBJECT_HEADER, HeaderValue::from_static("CN=root"));
        let identity = ClientIdentity {
            subject: "CN=alice".to_owned(),
            san: vec!["DNS:alice.test".to_owned(), "IP:10.0.0.1".to_owned()],
        };
        apply(&mut headers, Some(&identity));
        let subjects: Vec<_> = headers.get_all(SUBJECT_HEADER).iter().collect();
        assert_eq!(subjects, vec!["CN=alice"]);
        assert_eq!(
            headers.get(SAN_HEADER).and_then(|v| v.to_str().ok()),
            Some("DNS:alice.test, IP:10.0.0.1")
        );
    }

    #[test]
    fn identity_is_read_from_a_certificate() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["alice.test".to_owned(), "10.1.2.3".to_owned()])
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let cert = params.self_signed(&key).expect("cert");
        let identity = ClientIdentity::from_certificate(cert.der()).expect("identity");
        assert_eq!(identity.subject, "CN=alice");
        assert_eq!(identity.san, vec!["DNS:alice.test", "IP:10.1.2.3"]);
    }
}
