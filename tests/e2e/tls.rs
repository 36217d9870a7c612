//! TLS termination over real sockets: ALPN, protocol versions, SNI, mutual TLS and the identity
//! headers, certificate reload, handshake and body-read timeouts, the `certs dev` command.
//! Certificates are made in each test with rcgen; clients are rustls (tokio-rustls) + hyper.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tai_gateway::config::Config;
use tai_gateway::runtime::Runtime;
use tai_gateway::server::ServerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::harness::{TempDir, TestEnv, default_config, start_stubs};

/// Every wait in this module is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

// ---- certificates ----

/// A test CA that signs server and client certificates.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A signed certificate with its key, as PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).expect("ca cert"),
        }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A certificate for `names` (DNS names or IPs) with common name `cn`.
    fn leaf(&self, cn: &str, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("add root");
        roots
    }
}

/// Writes a leaf's cert and key as `<name>.pem` / `<name>-key.pem`; returns both paths.
fn write_leaf(dir: &TempDir, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    (
        dir.write(&format!("{name}.pem"), &leaf.cert_pem),
        dir.write(&format!("{name}-key.pem"), &leaf.key_pem),
    )
}

/// The DNS names in a certificate's subjectAltName.
fn dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).expect("parse certificate");
    let ext = cert
        .subject_alternative_name()
        .expect("san")
        .expect("has san");
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect()
}

// ---- gateway ----

/// The default test config with a `listeners.tls` section (`tls_yaml` is its body, indented by 4).
fn with_tls(config: String, tls_yaml: &str) -> String {
    config.replacen(
        "admin:\n",
        &format!("  tls:\n    address: 127.0.0.1:0\n{tls_yaml}admin:\n"),
        1,
    )
}

/// One certificate entry as YAML list item (indented for `certificates:`).
fn cert_entry(cert: &Path, key: &Path, names: &[&str]) -> String {
    let mut text = format!(
        "      - cert: {}\n        key: {}\n",
        cert.display(),
        key.display()
    );
    if !names.is_empty() {
        text.push_str(&format!("        server_names: [{}]\n", names.join(", ")));
    }
    text
}

/// Stubs + gateway with one server certificate for `localhost` / 127.0.0.1 and `extra` TLS keys.
async fn start_simple(pki: &Pki, dir: &TempDir, extra: &str) -> TestEnv {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"]);
    let (cert, key) = write_leaf(dir, "server", &leaf);
    let tls = format!("    certificates:\n{}{extra}", cert_entry(&cert, &key, &[]));
    TestEnv::start_with(|config| with_tls(config, &tls)).await
}

fn tls_addr(env: &TestEnv) -> SocketAddr {
    env.gateway.tls_addr.expect("tls listener")
}

// ---- clients ----

fn client_config(
    roots: RootCertStore,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&Leaf>,
) -> Arc<ClientConfig> {
    tai_gateway::tls::install_default_provider();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => {
            let chain = vec![leaf.der.clone()];
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn default_client(pki: &Pki, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    client_config(pki.roots(), alpn, rustls::ALL_VERSIONS, None)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}

/// An IP server name: rustls sends no SNI for it.
fn no_sni() -> ServerName<'static> {
    ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into())
}

async fn connect(
    addr: SocketAddr,
    name: ServerName<'static>,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    tokio::time::timeout(BOUND, async {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(config).connect(name, tcp).await
    })
    .await
    .expect("handshake within bound")
}

/// An HTTP/1.1 or HTTP/2 connection (by the negotiated ALPN) over a TLS stream.
enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    async fn open(stream: TlsStream<TcpStream>) -> hyper::Result<Conn> {
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        if h2 {
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Ok(Conn::H2(sender))
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Ok(Conn::H1(sender))
        }
    }

    /// GET `path` with extra headers; the status, version and body text.
    async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> hyper::Result<(StatusCode, Version, String)> {
        let uri = match self {
            Conn::H1(_) => path.to_owned(),
            Conn::H2(_) => format!("https://localhost{path}"),
        };
        let mut request = Request::get(uri).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::new())).expect("request");
        let response = tokio::time::timeout(BOUND, async {
            match self {
                Conn::H1(sender) => {
                    sender.ready().await?;
                    sender.send_request(request).await
                }
                Conn::H2(sender) => {
                    sender.ready().await?;
                    sender.send_request(request).await
                }
            }
        })
        .await
        .expect("response within bound")?;
        let status = response.status();
        let version = response.version();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, version, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Connects, then GETs `path` on a fresh connection.
async fn https_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, String), String> {
    let stream = connect(addr, localhost(), config)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut conn = Conn::open(stream).await.map_err(|e| e.to_string())?;
    let (status, _, body) = conn.get(path, headers).await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

// ---- ALPN and protocol versions ----

#[tokio::test]
async fn serves_http1_and_http2_chosen_by_alpn() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let addr = tls_addr(&env);
    for (alpn, version) in [
        (&b"http/1.1"[..], Version::HTTP_11),
        (&b"h2"[..], Version::HTTP_2),
    ] {
        let stream = connect(addr, localhost(), default_client(&pki, &[alpn]))
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
        let mut conn = Conn::open(stream).await.expect("http connection");
        let (status, seen, body) = conn
            .get("/v1/policies?policy_type=access", &[])
            .await
            .expect("response");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(seen, version);
        assert!(body.starts_with('{'), "{body}");
    }
    // Both offered: the server prefers h2.
    let stream = connect(
        addr,
        localhost(),
        default_client(&pki, &[b"http/1.1", b"h2"]),
    )
    .await
    .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn refuses_a_client_offering_only_unknown_alpn_protocols() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    let result = connect(
        tls_addr(&env),
        localhost(),
        default_client(&pki, &[b"spdy/3", b"imap"]),
    )
    .await;
    let error = result.expect_err("handshake must fail");
    assert!(
        error.to_string().contains("NoApplicationProtocol"),
        "unexpected error: {error}"
    );
    // A client offering no ALPN at all is served (HTTP/1.1).
    let stream = connect(tls_addr(&env), localhost(), default_client(&pki, &[]))
        .await
        .expect("handshake without ALPN");
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let mut conn = Conn::open(stream).await.expect("http connection");
    let (status, _, _) = conn.get("/v1/policies", &[]).await.expect("response");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn speaks_tls12_and_tls13() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    for (versions, expected) in [
        (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
        (rustls::ALL_VERSIONS, ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(pki.roots(), &[b"http/1.1"], versions, None);
        let stream = connect(tls_addr(&env), localhost(), config)
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let mut conn = Conn::open(stream).await.expect("http connection");
        let (status, _, _) = conn.get("/v1/policies", &[]).await.expect("response");
        assert_eq!(status, StatusCode::OK);
    }
}

/// A ClientHello offering only `version` (no supported_versions extension), with ECDHE-ECDSA
/// suites, groups and signature schemes a TLS 1.2 server can use with the test certificate.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    // ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend_from_slice(&[0x00, 0x08, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups: x25519, P-256
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats: uncompressed
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08,
        0x04, // ecdsa_p256_sha256, rsa_pss
        0x00, 0x17, 0x00, 0x00, // extended master secret
    ];
    body.extend_from_slice(&[0x00, u8::try_from(extensions.len()).expect("len")]);
    body.extend_from_slice(extensions);
    let mut handshake = vec![0x01, 0x00, 0x00, u8::try_from(body.len()).expect("len")];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, version[0], version[1], 0x00];
    record.push(u8::try_from(handshake.len()).expect("len"));
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn refuses_tls10_and_tls11_client_hellos() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "").await;
    // The control: the same hello saying TLS 1.2 gets a ServerHello (a handshake record).
    let mut tcp = TcpStream::connect(tls_addr(&env)).await.expect("connect");
    tcp.write_all(&legacy_client_hello([3, 3]))
        .await
        .expect("send hello");
    let mut first = [0u8; 1];
    tokio::time::timeout(BOUND, tcp.read_exact(&mut first))
        .await
        .expect("server answers within bound")
        .expect("read");
    assert_eq!(
        first[0], 0x16,
        "TLS 1.2 hello answered with a handshake record"
    );
    for (name, version) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        let mut tcp = TcpStream::connect(tls_addr(&env)).await.expect("connect");
        tcp.write_all(&legacy_client_hello(version))
            .await
            .expect("send hello");
        let mut answer = Vec::new();
        tokio::time::timeout(BOUND, tcp.read_to_end(&mut answer))
            .await
            .expect("server answers within bound")
            .ok();
        // Either an alert record (content type 21) or a plain close; never a handshake record.
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "{name}: server answered {answer:02x?}"
        );
        if let [0x15, _, _, _, _, level, description, ..] = answer[..] {
            assert_eq!(level, 2, "{name}: fatal alert");
            assert_eq!(description, 70, "{name}: protocol_version alert");
        }
    }
}

// ---- SNI ----

#[tokio::test]
async fn sni_selects_the_certificate_and_no_sni_gets_the_declared_default() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let a = pki.leaf("a", &["a.test", "127.0.0.1"]);
    let b = pki.leaf("b", &["b.test", "*.b.test", "127.0.0.1"]);
    let (a_cert, a_key) = write_leaf(&dir, "a", &a);
    let (b_cert, b_key) = write_leaf(&dir, "b", &b);
    let tls = format!(
        "    certificates:\n{}{}    default_certificate: b.test\n",
        cert_entry(&a_cert, &a_key, &["a.test"]),
        // No server_names: taken from the certificate's DNS names.
        cert_entry(&b_cert, &b_key, &[]),
    );
    let env = TestEnv::start_with(|config| with_tls(config, &tls)).await;
    let config = default_client(&pki, &[b"http/1.1"]);
    for (name, expected) in [
        (ServerName::try_from("a.test").expect("name"), "a.test"),
        (ServerName::try_from("b.test").expect("name"), "b.test"),
        (ServerName::try_from("x.b.test").expect("name"), "b.test"),
        (no_sni(), "b.test"),
    ] {
        let stream = connect(tls_addr(&env), name.clone(), config.clone())
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        let peer = &stream.get_ref().1.peer_certificates().expect("certs")[0];
        assert!(
            dns_names(peer).contains(&expected.to_owned()),
            "{name:?} got {:?}",
            dns_names(peer)
        );
    }
}

// ---- mutual TLS ----

#[tokio::test]
async fn required_mtls_accepts_a_client_certificate_and_refuses_none() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let extra = format!(
        "    client_auth:\n      ca: {}\n      mode: required\n",
        ca.display()
    );
    let env = start_simple(&pki, &dir, &extra).await;
    let alice = pki.leaf("alice", &["alice.test"]);
    let with_cert = client_config(
        pki.roots(),
        &[b"http/1.1"],
        rustls::ALL_VERSIONS,
        Some(&alice),
    );
    let (status, body) = https_get(tls_addr(&env), with_cert, "/v1/policies", &[])
        .await
        .expect("served with a client certificate");
    assert_eq!(status, StatusCode::OK, "{body}");

    let refused = https_get(
        tls_addr(&env),
        default_client(&pki, &[b"http/1.1"]),
        "/v1/policies",
        &[],
    )
    .await;
    assert!(refused.is_err(), "served without a client certificate");

    // A certificate from another CA is refused too.
    let other = Pki::new().leaf("mallory", &["mallory.test"]);
    let foreign = client_config(
        pki.roots(),
        &[b"http/1.1"],
        rustls::ALL_VERSIONS,
        Some(&other),
    );
    let refused = https_get(tls_addr(&env), foreign, "/v1/policies", &[]).await;
    assert!(refused.is_err(), "served with a foreign client certificate");
}

/// A gRPC backend that records each request's headers and answers NOT_FOUND.
async fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    record.lock().expect("lock").push(req.headers().clone());
                    async move {
                        let response = Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", "5")
                            .header("grpc-message", "recorded")
                            .body(Empty::<Bytes>::new())
                            .expect("response");
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn verified_client_identity_reaches_the_backend_and_forged_headers_never_do() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let leaf = pki.leaf("localhost", &["localhost"]);
    let (cert, key) = write_leaf(&dir, "server", &leaf);
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let (backend, seen) = recording_backend().await;
    let stubs = start_stubs().await;
    let config = default_config(&stubs)
        .replace(&stubs.governor_addr.to_string(), &backend.to_string())
        .replace("x-stub-*]", "x-stub-*, x-client-cert-*]");
    let tls = format!(
        "    certificates:\n{}    client_auth:\n      ca: {}\n      mode: optional\n",
        cert_entry(&cert, &key, &[]),
        ca.display()
    );
    let env = TestEnv::start_on(stubs, &with_tls(config, &tls)).await;
    let forged = [
        ("x-client-cert-subject", "CN=admin"),
        ("x-client-cert-san", "DNS:admin.test"),
    ];
    let alice = pki.leaf("alice", &["alice.test", "10.9.8.7"]);
    let with_cert = client_config(pki.roots(), &[b"h2"], rustls::ALL_VERSIONS, Some(&alice));
    let anonymous = default_client(&pki, &[b"http/1.1"]);

    let (status, _) = https_get(tls_addr(&env), with_cert, "/v1/policies/p1", &forged)
        .await
        .expect("mTLS request");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = https_get(tls_addr(&env), anonymous, "/v1/policies/p1", &forged)
        .await
        .expect("anonymous TLS request");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let plain = env
        .send(http::Method::GET, "/v1/policies/p1", &forged, None)
        .await;
    assert_eq!(plain.status, StatusCode::NOT_FOUND);

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3);
    let values = |headers: &HeaderMap, name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("text").to_owned())
            .collect()
    };
    assert_eq!(values(&seen[0], "x-client-cert-subject"), ["CN=alice"]);
    assert_eq!(
        values(&seen[0], "x-client-cert-san"),
        ["DNS:alice.test, IP:10.9.8.7"]
    );
    for headers in &seen[1..] {
        assert!(values(headers, "x-client-cert-subject").is_empty());
        assert!(values(headers, "x-client-cert-san").is_empty());
    }
}

// ---- reload ----

#[tokio::test]
async fn reloads_changed_certificates_without_dropping_open_connections() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let v1 = pki.leaf("v1", &["localhost"]);
    let (cert, key) = write_leaf(&dir, "server", &v1);
    let tls = format!(
        "    certificates:\n{}    reload_interval: 20ms\n",
        cert_entry(&cert, &key, &[])
    );
    let env = TestEnv::start_with(|config| with_tls(config, &tls)).await;
    let tls_state = env.gateway.tls.clone().expect("tls state");
    let mut stats = tls_state.reload_stats();
    let client = default_client(&pki, &[b"http/1.1"]);

    let stream = connect(tls_addr(&env), localhost(), client.clone())
        .await
        .expect("handshake");
    assert_eq!(
        stream.get_ref().1.peer_certificates().expect("certs")[0],
        v1.der
    );
    let mut open = Conn::open(stream).await.expect("connection");
    let (status, _, _) = open.get("/v1/policies", &[]).await.expect("response");
    assert_eq!(status, StatusCode::OK);

    let v2 = pki.leaf("v2", &["localhost"]);
    write_leaf(&dir, "server", &v2);
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.applied >= 1))
        .await
        .expect("reload within bound")
        .expect("stats");
    let stream = connect(tls_addr(&env), localhost(), client.clone())
        .await
        .expect("handshake");
    assert_eq!(
        stream.get_ref().1.peer_certificates().expect("certs")[0],
        v2.der
    );
    let (status, _, _) = open.get("/v1/policies", &[]).await.expect("old connection");
    assert_eq!(status, StatusCode::OK);

    // A broken key: the reload is refused and v2 stays in service.
    let failed = stats.borrow().failed;
    dir.write("server-key.pem", "-----BEGIN PRIVATE KEY-----\nbroken\n");
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.failed > failed))
        .await
        .expect("reload attempt within bound")
        .expect("stats");
    let stream = connect(tls_addr(&env), localhost(), client)
        .await
        .expect("handshake after a failed reload");
    assert_eq!(
        stream.get_ref().1.peer_certificates().expect("certs")[0],
        v2.der
    );
    let (status, _, _) = open.get("/v1/policies", &[]).await.expect("old connection");
    assert_eq!(status, StatusCode::OK);
}

// ---- startup errors ----

async fn start_error(tls: &str) -> String {
    let stubs = start_stubs().await;
    let dir = TempDir::new();
    let text = with_tls(default_config(&stubs), tls);
    let path = dir.write("gateway.yaml", &text);
    let config = Config::parse(&path, &text).expect("config");
    let runtime = Runtime::build(config).expect("runtime");
    match ServerHandle::start(runtime).await {
        Ok(_) => panic!("started with {tls}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_missing_or_broken_certificate_file_is_a_startup_error_naming_it() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let (cert, key) = write_leaf(&dir, "server", &pki.leaf("s", &["localhost"]));
    let missing = dir.path().join("nope.pem");
    let error = start_error(&format!(
        "    certificates:\n{}",
        cert_entry(&missing, &key, &[])
    ))
    .await;
    assert!(error.contains(&missing.display().to_string()), "{error}");

    let garbage = dir.write("garbage.pem", "not PEM at all\n");
    let error = start_error(&format!(
        "    certificates:\n{}",
        cert_entry(&cert, &garbage, &[])
    ))
    .await;
    assert!(error.contains(&garbage.display().to_string()), "{error}");

    let (_, other_key) = write_leaf(&dir, "other", &pki.leaf("o", &["other"]));
    let error = start_error(&format!(
        "    certificates:\n{}",
        cert_entry(&cert, &other_key, &[])
    ))
    .await;
    assert!(error.contains("does not fit"), "{error}");
}

#[test]
fn tls_config_errors_carry_their_line() {
    let text = "listeners:\n  tls:\n    address: 127.0.0.1:0\n    certificates:\n      - cert: a.pem\n        key: a-key.pem\n        server_names: [a.test]\n    default_certificate: b.test\n    client_auth:\n      ca: ca.pem\n      mode: sometimes\ndescriptors:\n  proto_dirs: [proto]\nupstreams:\n  u:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: u\n";
    let errors = Config::parse(Path::new("gateway.yaml"), text)
        .expect_err("invalid")
        .0;
    let found: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e.place.line, e.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (8, "listeners.tls.default_certificate"),
            (11, "listeners.tls.client_auth.mode")
        ]
    );
}

// ---- timeouts ----

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_disconnected() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let env = start_simple(&pki, &dir, "    handshake_timeout: 100ms\n").await;
    let mut tcp = TcpStream::connect(tls_addr(&env)).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(BOUND, tcp.read(&mut buf))
        .await
        .expect("closed within bound");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let env = TestEnv::start_with(|config| config + "limits:\n  body_read_timeout: 100ms\n").await;
    let mut tcp = TcpStream::connect(env.gateway.http_addr.expect("http"))
        .await
        .expect("connect");
    tcp.write_all(
        b"POST /v1/policies/propose HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"policyName\"",
    )
    .await
    .expect("send");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, tcp.read(&mut answer))
        .await
        .expect("answered within bound")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("\"code\":4"), "{text}");
    assert!(text.contains("request body not received within"), "{text}");
}

// ---- certs dev ----

#[test]
fn certs_dev_writes_a_ca_and_certificates_that_parse() {
    let dir = TempDir::new();
    let out = dir.path().join("dev");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
            .args(["certs", "dev", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .expect("run tai-gateway")
    };
    let first = run(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for name in tai_gateway::tls::dev::FILES {
        let path = out.join(name);
        let text = std::fs::read(&path).expect("file written");
        if name.ends_with("-key.pem") {
            PrivateKeyDer::from_pem_slice(&text).expect("key parses");
        } else {
            let certs = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .expect("certificates parse");
            assert!(!certs.is_empty(), "{name}");
        }
    }
    let server = std::fs::read(out.join("server.pem")).expect("server.pem");
    let leaf = CertificateDer::pem_slice_iter(&server)
        .next()
        .expect("one")
        .expect("parses");
    assert_eq!(dns_names(&leaf), ["localhost"]);

    // Not overwritten without --force.
    let again = run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(out.join("server.pem")).expect("kept"), server);
    assert!(run(&["--force"]).status.success());
}

#[tokio::test]
async fn dev_certificates_serve_https_for_localhost_with_client_auth() {
    let dir = TempDir::new();
    let written = tai_gateway::tls::dev::write(dir.path()).expect("write dev certs");
    assert_eq!(written.len(), 6);
    let p = |name: &str| dir.path().join(name);
    let tls = format!(
        "    certificates:\n{}    client_auth:\n      ca: {}\n      mode: required\n",
        cert_entry(&p("server.pem"), &p("server-key.pem"), &[]),
        p("ca.pem").display()
    );
    let env = TestEnv::start_with(|config| with_tls(config, &tls)).await;
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(p("ca.pem")).expect("ca") {
        roots.add(der.expect("der")).expect("root");
    }
    let client_pem = std::fs::read_to_string(p("client.pem")).expect("client.pem");
    let client = Leaf {
        der: CertificateDer::from_pem_slice(client_pem.as_bytes()).expect("client cert"),
        cert_pem: client_pem,
        key_pem: std::fs::read_to_string(p("client-key.pem")).expect("client key"),
    };
    let config = client_config(roots, &[b"h2"], rustls::ALL_VERSIONS, Some(&client));
    let stream = connect(tls_addr(&env), no_sni(), config.clone())
        .await
        .expect("127.0.0.1 is in the dev certificate");
    drop(stream);
    let (status, _) = https_get(tls_addr(&env), config, "/v1/policies", &[])
        .await
        .expect("served");
    assert_eq!(status, StatusCode::OK);
}
