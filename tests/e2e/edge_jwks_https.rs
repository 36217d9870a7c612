//! Issue 18, item 13: a remote JWKS over HTTPS, as every real identity provider serves it. A local
//! TLS server on 127.0.0.1 with a certificate from a test CA (rcgen, through the dev-certificate
//! generator); the provider trusts that CA with `jwks_ca`, besides the web PKI roots.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use crate::auth::{assert_invalid, claims, config, echo, jwks, kid_token};
use crate::harness::{TempDir, TestEnv, start_stubs};

/// A JWKS server speaking HTTPS on 127.0.0.1:0, whose answer the test changes; counts the
/// requests that got through the TLS handshake.
struct HttpsJwks {
    url: String,
    /// The PEM of the CA that signed its certificate.
    ca_pem: String,
    answer: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicU64>,
}

impl HttpsJwks {
    async fn start(body: String) -> HttpsJwks {
        let certs = tai_gateway::listener::tls::dev::generate().expect("test CA and certificate");
        let chain = CertificateDer::pem_slice_iter(certs.server_cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(certs.server_key.as_bytes()).expect("key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("https://{}/jwks.json", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new((200, body)));
        let hits = Arc::new(AtomicU64::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (a, h, acceptor) = (a.clone(), h.clone(), acceptor.clone());
                tokio::spawn(async move {
                    // A client that does not trust the CA ends here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |_req| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = a.lock().expect("lock").clone();
                        let mut rsp = Response::new(Full::new(Bytes::from(body)));
                        *rsp.status_mut() = StatusCode::from_u16(status).expect("status");
                        async move { Ok::<_, Infallible>(rsp) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HttpsJwks {
            url,
            ca_pem: certs.ca_cert,
            answer,
            hits,
        }
    }

    fn set(&self, status: u16, body: String) {
        *self.answer.lock().expect("lock") = (status, body);
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The auth test config plus provider `remote` on `server`'s URL, with `extra` keys.
async fn start_with_remote(server: &HttpsJwks, extra: &str) -> TestEnv {
    let stubs = start_stubs().await;
    let remote = format!(
        "    remote:\n      issuer: remote-issuer\n      algorithms: [EdDSA]\n      jwks_url: {}\n      jwks_timeout: 2s\n{extra}",
        server.url
    );
    let config = config(&stubs, &remote);
    TestEnv::start_on(stubs, &config).await
}

/// A token of the remote issuer under `kid`, with its own subject (so no verified-token cache
/// entry of an earlier request answers for it).
fn fresh_token(kid: &str, sub: &str) -> String {
    let mut c = claims();
    c["iss"] = json!("remote-issuer");
    c["sub"] = json!(sub);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let pem = std::fs::read(crate::auth::key_path("ed_private.pem")).expect("key");
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&pem).expect("ed key");
    jsonwebtoken::encode(&header, &c, &key).expect("sign")
}

/// Polls `done` every 100 ms for at most 10 s.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Before the fix there was no way to trust a private CA (`jwks_ca` was an unknown key) and no
/// test of the HTTPS path at all. Keys are fetched over TLS, the periodic refresh picks up a
/// rotation, and a failed refresh keeps the keys held.
#[tokio::test]
async fn an_https_jwks_signed_by_the_configured_ca_is_fetched_rotated_and_kept_on_failure() {
    let server = HttpsJwks::start(jwks(&["k1"])).await;
    let dir = TempDir::new();
    let ca = dir.write("jwks-ca.pem", &server.ca_pem);
    // Refresh every second; an unknown kid may refetch at most once a second too.
    let extra = format!(
        "      jwks_ca: \"{}\"\n      jwks_refresh_interval: 1s\n      jwks_min_refetch_interval: 1s\n",
        ca.display()
    );
    let env = start_with_remote(&server, &extra).await;
    let reply = echo(&env, Some(&kid_token("k1")), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(server.hits() >= 1);

    // The issuer rotates k1 out and k2 in; the next periodic refresh over HTTPS (no request
    // asks for k2 before it) brings k2.
    server.set(200, jwks(&["k2"]));
    let before = server.hits();
    eventually("a periodic refresh", async || server.hits() > before).await;
    eventually("k2 accepted after the refresh", async || {
        echo(&env, Some(&fresh_token("k2", "bob")), &[])
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert_invalid(
        &echo(&env, Some(&fresh_token("k1", "carol")), &[]).await,
        "unknown key id",
    );

    // The server fails; refreshes keep failing; the keys held stay in use.
    server.set(500, "down".to_owned());
    let before = server.hits();
    eventually("two more refresh attempts", async || {
        server.hits() >= before + 2
    })
    .await;
    let kept = echo(&env, Some(&fresh_token("k2", "dave")), &[]).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
}

/// The same server without `jwks_ca`: its certificate does not chain to the web PKI roots, so
/// no request reaches it and tokens of its keys are refused; the failure is a refresh failure,
/// never a fallback to plain HTTP or an unchecked certificate.
#[tokio::test]
async fn without_jwks_ca_a_private_ca_is_not_trusted() {
    let server = HttpsJwks::start(jwks(&["k1"])).await;
    let env = start_with_remote(&server, "").await;
    assert_invalid(
        &echo(&env, Some(&kid_token("k1")), &[]).await,
        "unknown key id",
    );
    assert_eq!(
        server.hits(),
        0,
        "the TLS handshake failed before any request"
    );
}

#[test]
fn jwks_ca_needs_an_https_jwks_url_and_a_readable_pem_certificate() {
    let dir = TempDir::new();
    let garbage = dir.write("not-a-ca.pem", "no certificate here\n");
    let text = |url: &str, ca: &str| {
        format!(
            "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: governor\nauth:\n  providers:\n    remote:\n      issuer: r\n      algorithms: [EdDSA]\n      jwks_url: {url}\n      jwks_ca: \"{ca}\"\n",
            crate::harness::proto_dir().display()
        )
    };
    let path = dir.path().join("gateway.yaml");
    let plain = tai_gateway::config::Config::parse(&path, &text("http://idp.test/jwks", "ca.pem"))
        .expect_err("http with a CA");
    let lines: Vec<String> = plain
        .0
        .iter()
        .map(|e| format!("{}: {}: {}", e.place.line, e.key, e.reason))
        .collect();
    assert_eq!(
        lines,
        ["18: auth.providers.remote.jwks_ca: needs an https:// jwks_url"]
    );
    let https = text("https://idp.test/jwks", &garbage.display().to_string());
    let config = tai_gateway::config::Config::parse(&path, &https).expect("valid config");
    let errors = tai_gateway::runtime::Runtime::build(config).expect_err("no certificate");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains(&format!("{}: no PEM certificate", garbage.display())),
        "{text:?}"
    );
}
