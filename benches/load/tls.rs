//! The HTTPS phase of the load benchmark: the same requests over TLS (HTTP/1.1 by ALPN,
//! keep-alive, one handshake per connection), against the dev CA the benchmark wrote.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{Budget, Phase, Settings, collect, propose_until_spent};

/// A TLS client trusting the CA in `ca_pem`, offering only `http/1.1`.
pub(super) fn client(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(ca_pem).expect("read ca.pem") {
        roots.add(der.expect("ca certificate")).expect("add root");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Keep-alive HTTPS load on `path`, with `authorization` sent on every request when given.
pub(super) async fn run_https(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    settings: &Settings,
    path: &'static str,
    authorization: Option<http::HeaderValue>,
) -> Phase {
    let budget = Arc::new(Budget::new(settings));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..settings.connections {
        let budget = budget.clone();
        let tls = tls.clone();
        let authorization = authorization.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = TcpStream::connect(addr).await else {
                return (Vec::new(), 1);
            };
            let _ = stream.set_nodelay(true);
            let name = ServerName::try_from("localhost").expect("name");
            let Ok(stream) = TlsConnector::from(tls).connect(name, stream).await else {
                return (Vec::new(), 1);
            };
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                return (Vec::new(), 1);
            };
            tokio::spawn(conn);
            propose_until_spent(&mut sender, &budget, path, authorization.as_ref()).await
        }));
    }
    collect(tasks, started).await
}
