//! TLS to a backend (`upstreams.<name>.tls`): the rustls client config — the configured CA
//! bundle or the webpki (Mozilla) roots, the client certificate for mutual TLS, ALPN `h2` only —
//! reloaded from disk like the listener's (`crate::certs::Reloading`: same interval default, a
//! broken new file keeps the old config and is logged), and the handshake of one connection,
//! which refuses a backend that did not pick `h2`.
//!
//! Every connection of the upstream, health checks included, is made through [`UpstreamTls::connect`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::certs::{Files, ReloadStats, Reloading, TlsError, certified_key, pem_roots};
use crate::config::UpstreamTlsConfig;

/// The only application protocol offered: gRPC needs HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// The TLS side of one upstream: its client config, kept current, and the name its endpoints
/// are verified against.
#[derive(Debug)]
pub struct UpstreamTls {
    certs: Arc<Reloading<ClientConfig>>,
    /// `tls.server_name`; `None` = each endpoint's configured host.
    server_name: Option<String>,
    /// Set once the reload task runs.
    watching: AtomicBool,
}

impl UpstreamTls {
    /// Reads the CA and client certificate files of `upstream` and builds the client config; the
    /// error names the first bad file.
    pub fn load(upstream: &str, config: &UpstreamTlsConfig) -> Result<UpstreamTls, TlsError> {
        let paths = [&config.ca, &config.client_cert, &config.client_key]
            .into_iter()
            .flatten()
            .map(|p| p.value.clone())
            .collect();
        let settings = config.clone();
        let certs = Reloading::load(
            format!("upstream {upstream}"),
            paths,
            config.reload_interval,
            move |files| build(&settings, files),
        )?;
        Ok(UpstreamTls {
            certs: Arc::new(certs),
            server_name: config.server_name.clone(),
            watching: AtomicBool::new(false),
        })
    }

    /// Reload counters; `changed()` on the receiver wakes after each reload attempt.
    pub fn reload_stats(&self) -> watch::Receiver<ReloadStats> {
        self.certs.reload_stats()
    }

    /// Starts re-reading the files (once); the task ends when the upstream is dropped. Outside a
    /// tokio runtime (a gateway built before its runtime starts) nothing starts yet: the next
    /// call inside one does.
    pub(super) fn watch(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.watching.swap(true, Ordering::SeqCst) {
            let certs = Arc::downgrade(&self.certs);
            runtime.spawn(Reloading::watch(certs, std::future::pending()));
        }
    }

    /// The name the endpoint configured as `target` (`host:port`) is verified against.
    pub(super) fn server_name(&self, target: &str) -> Result<ServerName<'static>, String> {
        let host = match &self.server_name {
            Some(name) => name.as_str(),
            None => target.rsplit_once(':').map_or(target, |(host, _)| host),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|e| {
            format!("`{host}` is not a valid TLS server name ({e}); set tls.server_name")
        })
    }

    /// The TLS handshake on `tcp` as `name` (at most `wait`), then the backend's first bytes
    /// (see [`first_bytes`], waited for at most `wait` too); `Err` says why it failed, or that
    /// the backend did not choose HTTP/2. A TLS error breaking the connection later goes to
    /// `alert`.
    pub(super) async fn connect(
        &self,
        tcp: TcpStream,
        name: ServerName<'static>,
        (alert, wait): (&Arc<TlsAlert>, Duration),
    ) -> Result<Watched, String> {
        let connector = TlsConnector::from(self.certs.current());
        let mut stream = tokio::time::timeout(wait, connector.connect(name, tcp))
            .await
            .map_err(|_| format!("TLS handshake timed out after {wait:?}"))?
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        match stream.get_ref().1.alpn_protocol() {
            Some(ALPN_H2) => {}
            Some(other) => {
                return Err(format!(
                    "the backend chose ALPN `{}`; gRPC needs HTTP/2 (`h2`)",
                    String::from_utf8_lossy(other)
                ));
            }
            None => return Err("the backend did not negotiate HTTP/2 (no ALPN `h2`)".to_owned()),
        }
        let first = first_bytes(&mut stream, wait).await?;
        Ok(Watched {
            stream,
            first,
            alert: alert.clone(),
        })
    }
}

/// Waits (at most `wait`) for the backend's first bytes after the handshake, before anything is
/// sent: an HTTP/2 server sends its SETTINGS frame first (h2, grpc-go, Netty, nghttp2 and nginx
/// do so at once). Why: in TLS 1.3 a backend verifies the client certificate after the client has
/// finished its handshake, and says no with an alert. Read now, the alert fails the dial with its
/// reason; sent into, the backend resets the connection and the alert may be lost with it. A
/// backend that sends nothing first is used once `wait` has passed.
async fn first_bytes(stream: &mut TlsStream<TcpStream>, wait: Duration) -> Result<Vec<u8>, String> {
    let mut first = vec![0; 1024];
    match tokio::time::timeout(wait, stream.read(&mut first)).await {
        Err(_) => Ok(Vec::new()),
        Ok(Ok(0)) => Err("the backend closed the connection after the TLS handshake".to_owned()),
        Ok(Ok(n)) => {
            first.truncate(n);
            Ok(first)
        }
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
    }
}

/// The client config from the files' contents.
fn build(config: &UpstreamTlsConfig, files: &Files) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = match &config.ca {
        Some(ca) => pem_roots(&ca.value, files.get(&ca.value)?)?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            roots
        }
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rejected {
            path: config
                .ca
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let mut client = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let (key, _) = certified_key(
                &cert.value,
                files.get(&cert.value)?,
                &key.value,
                files.get(&key.value)?,
                &provider,
            )?;
            builder.with_client_cert_resolver(Arc::new(ClientIdentity(Arc::new(key))))
        }
        _ => builder.with_no_client_auth(),
    };
    client.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(client)
}

/// The one client certificate offered to every backend that asks.
#[derive(Debug)]
struct ClientIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientIdentity {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The TLS error that last broke one of an endpoint's connections after its handshake, until a
/// request on the endpoint gets an answer again: a backend that refuses the client certificate
/// after a TLS 1.3 handshake (which the client sees as complete) says so with an alert that the
/// connection reads while requests are already on it; hyper's HTTP/2 error keeps only the
/// alert's text, and retries on new connections may see only the closed socket.
#[derive(Debug, Default)]
pub(super) struct TlsAlert {
    /// Whether `reason` holds one (read without the lock on every answer).
    set: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl TlsAlert {
    fn record(&self, error: &io::Error) {
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(tls.to_string());
            self.set.store(true, Ordering::Release);
        }
    }

    /// The TLS error recorded since the endpoint last answered, if any.
    pub(super) fn get(&self) -> Option<String> {
        if !self.set.load(Ordering::Acquire) {
            return None;
        }
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The endpoint answered: TLS works again.
    pub(super) fn clear(&self) {
        if self.set.swap(false, Ordering::AcqRel) {
            *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

/// A TLS connection to a backend that records the TLS error breaking it in its [`TlsAlert`], and
/// first gives what [`first_bytes`] read.
#[derive(Debug)]
pub(super) struct Watched {
    stream: TlsStream<TcpStream>,
    /// Bytes read before hyper took the connection, not yet handed to it.
    first: Vec<u8>,
    alert: Arc<TlsAlert>,
}

impl Watched {
    fn seen<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &poll {
            self.alert.record(e);
        }
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.first.is_empty() {
            let n = this.first.len().min(buf.remaining());
            buf.put_slice(&this.first[..n]);
            this.first.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.seen(poll)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.seen(poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.seen(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.seen(poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(server_name: Option<&str>) -> UpstreamTls {
        let config = UpstreamTlsConfig {
            ca: None,
            client_cert: None,
            client_key: None,
            server_name: server_name.map(str::to_owned),
            reload_interval: Duration::from_secs(5),
        };
        UpstreamTls::load("u", &config).expect("system roots need no files")
    }

    #[test]
    fn endpoints_are_verified_as_their_host_unless_a_server_name_is_set() {
        let name =
            |tls: &UpstreamTls, target| tls.server_name(target).map(|n| n.to_str().into_owned());
        let by_host = tls(None);
        assert_eq!(
            name(&by_host, "governor.internal:443").as_deref(),
            Ok("governor.internal")
        );
        assert_eq!(name(&by_host, "10.0.0.7:443").as_deref(), Ok("10.0.0.7"));
        assert_eq!(name(&by_host, "[::1]:443").as_deref(), Ok("::1"));
        let named = tls(Some("backend.test"));
        assert_eq!(name(&named, "10.0.0.7:443").as_deref(), Ok("backend.test"));
        let error = name(&by_host, "bad_host!:443").expect_err("not a name");
        assert!(error.contains("set tls.server_name"), "{error}");
    }
}
