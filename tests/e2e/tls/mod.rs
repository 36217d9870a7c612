//! TLS termination over real sockets: ALPN, protocol versions, SNI, mutual TLS and the identity
//! headers, certificate reload, handshake and body-read timeouts, the `certs dev` command.
//! Certificates are made in each test with rcgen; clients are rustls (tokio-rustls) + hyper.
//! This file holds the shared helpers; the tests are in the submodules.

mod alpn;
mod dev_certs;
mod listeners;
mod metrics;
mod mtls;
mod protocol;
mod reload;

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
    tai_gateway::listener::tls::install_default_provider();
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
