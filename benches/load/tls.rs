//! The HTTPS phase of the load benchmark: the same requests over TLS (HTTP/1.1 by ALPN,
//! keep-alive, one handshake per connection), against the dev CA the benchmark wrote.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{Budget, POLICY_JSON, Phase, Settings, collect};

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
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let Ok(stream) = TcpStream::connect(addr).await else {
                return (latencies, 1);
            };
            let _ = stream.set_nodelay(true);
            let name = ServerName::try_from("localhost").expect("name");
            let Ok(stream) = TlsConnector::from(tls).connect(name, stream).await else {
                return (latencies, 1);
            };
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                return (latencies, 1);
            };
            tokio::spawn(conn);
            while budget.take() {
                let mut request = Request::post(path)
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(POLICY_JSON.as_bytes())))
                    .expect("request");
                if let Some(value) = &authorization {
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, value.clone());
                }
                let t0 = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        response.into_body().collect().await.is_ok() && status == StatusCode::OK
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t0.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                    break;
                }
            }
            (latencies, errors)
        }));
    }
    collect(tasks, started).await
}
