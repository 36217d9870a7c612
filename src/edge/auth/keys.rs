//! A provider's verification keys: from a PEM file, a local JWKS, or a remote JWKS that is fetched
//! with a timeout, cached, refreshed periodically and refetched (rate-limited) on an unknown `kid`.
//! A failed refresh keeps the keys already held. Keys never come from the token itself: embedded
//! `jwk`/`jku`/`x5u` headers are ignored and cause no connection.
//!
//! An `https://` JWKS server must chain to the web PKI roots or to a CA of the provider's
//! `jwks_ca`. The URL is only ever logged through [`redact_url`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::redact_url;

/// Largest JWKS document accepted from a remote server.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One public key and what it may verify.
#[derive(Debug, Clone)]
pub(crate) struct VerifyKey {
    /// `kid` the key is published under.
    pub(crate) kid: Option<String>,
    /// The one algorithm it is for, when the key says (JWK `alg`, or the EC curve / Ed25519).
    pub(crate) alg: Option<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl VerifyKey {
    /// True when a token signed with `alg` may be checked with this key: the key's family must
    /// match, and a key pinned to one algorithm accepts only that one.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|own| own == alg)
    }
}

/// A PEM public key (RSA, EC or Ed25519) under an optional `kid`.
pub(crate) fn from_pem(pem: &[u8], kid: Option<String>) -> Result<VerifyKey, String> {
    let key = DecodingKey::from_ed_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_rsa_pem(pem))
        .map_err(|_| "not a PEM RSA, EC or Ed25519 public key".to_owned())?;
    let alg = (key.family() == AlgorithmFamily::Ed).then_some(Algorithm::EdDSA);
    Ok(VerifyKey { kid, alg, key })
}

/// The usable signing keys of a JWKS document. Symmetric (`oct`) keys are refused: HMAC secrets
/// are only ever configured, so a published key can never turn into an HS secret.
pub(crate) fn from_jwks(text: &[u8]) -> Result<Vec<VerifyKey>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let Some(entries) = doc.get("keys").and_then(|k| k.as_array()) else {
        return Err("not a JWKS document: no `keys` list".to_owned());
    };
    let mut keys = Vec::new();
    for entry in entries {
        match jwk_key(entry) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::warn!(%reason, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

fn jwk_key(entry: &serde_json::Value) -> Result<VerifyKey, String> {
    if entry.get("use").is_some_and(|u| u != "sig") {
        return Err("not a signature key".to_owned());
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| format!("bad JWK: {e}"))?;
    let declared = match entry.get("alg").and_then(|a| a.as_str()) {
        Some(name) => Some(
            name.parse::<Algorithm>()
                .map_err(|_| format!("unsupported alg `{name}`"))?,
        ),
        None => None,
    };
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => return Err("unsupported EC curve".to_owned()),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        AlgorithmParameters::RSA(_) => None,
        _ => return Err("unsupported key type".to_owned()),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("bad JWK: {e}"))?;
    let alg = declared.or(implied);
    if declared.is_some() && implied.is_some() && declared != implied {
        return Err("JWK alg does not match its curve".to_owned());
    }
    if let Some(alg) = alg
        && alg.family() != key.family()
    {
        return Err("JWK alg does not match its key type".to_owned());
    }
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// A JWKS URL, its cached keys, and when it was last fetched. `Debug` shows the URL redacted.
pub(crate) struct RemoteJwks {
    url: Uri,
    /// The URL as logs show it ([`redact_url`]): no user info, no query.
    shown: String,
    /// TLS for `https://`: the web PKI roots and the `jwks_ca` certificates.
    tls: Arc<ClientConfig>,
    timeout: Duration,
    refresh_interval: Duration,
    min_refetch_interval: Duration,
    /// Held for the whole fetch, so concurrent misses wait for one fetch instead of each starting
    /// one. Holds when the last fetch was attempted.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// When the keys were last fetched successfully.
    fetched: Mutex<Option<Instant>>,
    /// Number of fetch attempts (tests and logs).
    pub(crate) attempts: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.shown)
            .field("timeout", &self.timeout)
            .field("refresh_interval", &self.refresh_interval)
            .field("min_refetch_interval", &self.min_refetch_interval)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    pub(crate) fn new(
        url: Uri,
        tls: Arc<ClientConfig>,
        timeout: Duration,
        refresh: Duration,
        min_refetch: Duration,
    ) -> Self {
        RemoteJwks {
            shown: redact_url(&url.to_string()),
            url,
            tls,
            timeout,
            refresh_interval: refresh,
            min_refetch_interval: min_refetch,
            fetching: tokio::sync::Mutex::new(None),
            fetched: Mutex::new(None),
            attempts: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Fetches when the cache is older than the refresh interval (periodic refresh); a failure is
    /// retried no sooner than the minimum refetch interval.
    pub(crate) async fn refresh_if_due(&self, keys: &ArcSwap<Vec<VerifyKey>>) {
        let fetched = self.fetched.lock().map(|f| *f).unwrap_or(None);
        if fetched.is_some_and(|at| at.elapsed() < self.refresh_interval) {
            return;
        }
        self.fetch_rate_limited(keys).await;
    }

    /// Fetches because a token named a `kid` not in the cache, unless a fetch was attempted less
    /// than the minimum refetch interval ago. Returns after any fetch in progress finished.
    pub(crate) async fn fetch_rate_limited(&self, keys: &ArcSwap<Vec<VerifyKey>>) {
        let mut last = self.fetching.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = &self.shown;
        // The fetch's future (an HTTP client over TLS) is KiBs: boxed, so that every request's
        // future, which may come here for an unknown `kid`, does not carry it.
        let fetch = Box::pin(get(&self.url, &self.tls));
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(Ok(body)) => match from_jwks(&body) {
                Ok(fresh) => {
                    tracing::info!(%url, keys = fresh.len(), "JWKS fetched");
                    keys.store(Arc::new(fresh));
                    if let Ok(mut f) = self.fetched.lock() {
                        *f = Some(Instant::now());
                    }
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, "JWKS refresh failed; keeping the old keys")
                }
            },
            Ok(Err(e)) => {
                tracing::warn!(%url, error = %e, "JWKS refresh failed; keeping the old keys")
            }
            Err(_) => {
                tracing::warn!(%url, "JWKS refresh timed out; keeping the old keys")
            }
        }
    }
}

/// The TLS settings of JWKS fetches: the web PKI roots, and the CA certificates of the PEM file
/// `ca` (a provider's `jwks_ca`) when given.
pub(crate) fn tls_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{}: no PEM certificate", path.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// GET over HTTP/1.1 (plain, or TLS with `tls`); the body of a 2xx answer.
async fn get(url: &Uri, tls: &Arc<ClientConfig>) -> Result<Bytes, String> {
    let host = url.host().ok_or("URL has no host")?.to_owned();
    let https = url.scheme_str() == Some("https");
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = url
        .authority()
        .map(|a| a.as_str())
        .unwrap_or(&host)
        .to_owned();
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let host_only = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host_only, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if !https {
        return send(TokioIo::new(tcp), request).await;
    }
    let name =
        rustls_pki_types::ServerName::try_from(host_only.to_owned()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    send(TokioIo::new(tls), request).await
}

async fn send<I>(io: I, request: Request<Empty<Bytes>>) -> Result<Bytes, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    // Drives the connection; ends when `sender` is dropped.
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_X: &str = "8bTeBXXUkTOCnCFOC3TfgGLi7CQb9gRAvq72_VZa5tc";

    #[test]
    fn jwks_keeps_signature_keys_and_skips_symmetric_and_mismatched_ones() {
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "ed"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "lies", "alg": "ES256"},
            {"kty": "XYZ", "kid": "odd"}
        ]});
        let keys = from_jwks(doc.to_string().as_bytes()).expect("a JWKS");
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("ed")]);
        assert!(keys[0].accepts(Algorithm::EdDSA));
        assert!(!keys[0].accepts(Algorithm::HS256));
        assert!(from_jwks(b"{}").is_err());
    }

    #[test]
    fn pem_keys_know_their_family() {
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA8bTeBXXUkTOCnCFOC3TfgGLi7CQb9gRAvq72/VZa5tc=\n-----END PUBLIC KEY-----\n";
        let key = from_pem(ed.as_bytes(), None).expect("ed25519 key");
        assert!(key.accepts(Algorithm::EdDSA));
        assert!(!key.accepts(Algorithm::RS256));
        assert!(from_pem(b"not a key", None).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refreshes_keep_the_keys_and_retry_no_sooner_than_the_refetch_interval() {
        // A port nobody listens on: every fetch fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let url = format!("http://127.0.0.1:{port}/jwks.json")
            .parse()
            .expect("url");
        let remote = RemoteJwks::new(
            url,
            tls_config(None).expect("web PKI roots"),
            Duration::from_secs(1),
            Duration::from_secs(600),
            Duration::from_secs(30),
        );
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA8bTeBXXUkTOCnCFOC3TfgGLi7CQb9gRAvq72/VZa5tc=\n-----END PUBLIC KEY-----\n";
        let old = from_pem(ed.as_bytes(), Some("old".to_owned())).expect("key");
        let keys = ArcSwap::from_pointee(vec![old]);
        let attempts = || remote.attempts.load(std::sync::atomic::Ordering::Relaxed);
        remote.refresh_if_due(&keys).await;
        assert_eq!(attempts(), 1, "never fetched: due at once");
        remote.refresh_if_due(&keys).await;
        remote.fetch_rate_limited(&keys).await;
        assert_eq!(attempts(), 1, "no retry within the refetch interval");
        tokio::time::advance(Duration::from_secs(31)).await;
        remote.refresh_if_due(&keys).await;
        assert_eq!(attempts(), 2);
        assert_eq!(keys.load()[0].kid.as_deref(), Some("old"), "old keys kept");
    }
}
