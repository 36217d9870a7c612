//! The stubs' TLS mode: [`StubTls`] (a server certificate, optionally required client
//! certificates, the ALPN protocols offered) and the accept loop that puts rustls in front of the
//! tonic server.
//!
//! Why a rustls acceptor of our own rather than tonic's `tls-aws-lc` feature: it needs no tonic
//! feature (so no rebuild of tonic with different features for the gateway, which shares the
//! compiled crate), it reuses rustls and tokio-rustls already in the tree with the gateway's
//! provider, and it can offer any ALPN list — which tests need to stand up a backend that does
//! *not* negotiate `h2`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Time a client gets to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a stub server speaks TLS.
#[derive(Debug, Clone)]
pub struct StubTls {
    cert_pem: String,
    key_pem: String,
    client_ca_pem: Option<String>,
    alpn: Vec<Vec<u8>>,
}

impl StubTls {
    /// Serves `cert_pem` (chain, leaf first) with `key_pem`; offers ALPN `h2`; asks for no
    /// client certificate.
    pub fn new(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> StubTls {
        StubTls {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            client_ca_pem: None,
            alpn: vec![b"h2".to_vec()],
        }
    }

    /// Refuses clients without a certificate chaining to a CA of `ca_pem`.
    pub fn require_client_certs(mut self, ca_pem: impl Into<String>) -> StubTls {
        self.client_ca_pem = Some(ca_pem.into());
        self
    }

    /// Offers these ALPN protocols instead of `h2` (empty: none, so nothing is negotiated).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> StubTls {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The rustls server config (aws-lc-rs, TLS 1.2 and 1.3).
    pub(crate) fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("stub TLS {what}: {e}"))
        };
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("certificate", &e))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid("key", &e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("versions", &e))?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for der in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let der = der.map_err(|e| invalid("client CA", &e))?;
                    roots.add(der).map_err(|e| invalid("client CA", &e))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| invalid("client CA", &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid("certificate", &e))?;
        config.alpn_protocols.clone_from(&self.alpn);
        Ok(Arc::new(config))
    }
}

/// One accepted TLS connection, as tonic serves it (the peer address stays the TCP one, so
/// `x-stub-peer` works as over h2c).
#[derive(Debug)]
pub(crate) struct TlsConn(TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Accepts on `listener` and handshakes each connection in a task of its own (a slow client
/// holds up no other); yields the connections whose handshake completed. Failed handshakes are
/// logged and dropped. The accept loop ends when the server drops the stream.
pub(crate) fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let acceptor = TlsAcceptor::from(config);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(TlsConn(stream))).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "stub TLS handshake failed"),
                    Err(_) => tracing::debug!("stub TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
