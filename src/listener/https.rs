//! The HTTPS accept loop: TCP accept → TLS handshake (bounded by `handshake_timeout`) → the same
//! HTTP/1.1 + HTTP/2 server as the cleartext listener, with the client identity set on each
//! request. The protocol ALPN negotiated is the only one spoken on the connection (a client that
//! agreed on `h2` and sends HTTP/1.1, or on `http/1.1` and sends the HTTP/2 preface, is closed);
//! without ALPN the server goes by what the client sends, as on the cleartext listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::serve::{HttpServer, Speaks, serve_connection};
use super::table::Table;
use super::tls::TlsTerminator;
use super::tls::identity::ClientIdentity;
use super::{Handler, accept_loop, timeouts};
use crate::config::ListenerLimits;
use crate::metrics::Metrics;
use crate::workers::Workers;

/// Serves HTTPS on `listener` until `stop` completes with the drain timeout, then drains open
/// connections for at most that long. Each connection's handshake uses the config current when it
/// was accepted; open connections are counted in `metrics` under `name`.
pub(crate) async fn serve_tls<H: Handler>(
    listener: TcpListener,
    tls: Arc<TlsTerminator>,
    (limits, table): (ListenerLimits, Arc<Table>),
    stop: impl Future<Output = Duration>,
    (metrics, name): (Arc<Metrics>, Arc<str>),
    workers: Arc<Workers>,
    handler: H,
) {
    let server = Arc::new(HttpServer::new(&limits));
    let handshake_timeout = tls.settings().handshake_timeout;
    let seating = (table, timeouts(&limits));
    accept_loop(
        listener,
        stop,
        &name,
        seating,
        |stream, connection, seat, watcher| {
            let peer = connection.peer();
            // The handshake and the connection run on one worker, start to end.
            let Some((stream, worker)) = workers.adopt(stream, peer) else {
                return;
            };
            let acceptor = TlsAcceptor::from(tls.server_config());
            let (server, handler) = (server.clone(), handler.clone());
            let open = metrics.connection_opened(&name);
            let (metrics, name) = (metrics.clone(), name.clone());
            worker.spawn(async move {
                let (_open, _seat) = (open, seat);
                let shake = handshake(acceptor, stream, peer, handshake_timeout, (&metrics, &name));
                let Some((stream, identity)) = shake.await else {
                    return;
                };
                let speaks = Speaks::from_alpn(stream.get_ref().1.alpn_protocol());
                let io = (stream, speaks);
                serve_connection(&server, io, connection, identity, handler, watcher).await;
            });
        },
    )
    .await;
}

/// The TLS handshake of one connection, bounded by `timeout` and counted in `metrics` under
/// `name`: the encrypted stream and the client certificate's identity, or `None` when it failed.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    (metrics, name): (&Metrics, &str),
) -> Option<(TlsStream<TcpStream>, Option<Arc<ClientIdentity>>)> {
    let handshake = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
    // The one place handshakes are counted.
    metrics.record_tls_handshake(
        name,
        match &handshake {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "failed",
            Err(_) => "timeout",
        },
    );
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            return None;
        }
    };
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(ClientIdentity::from_certificate)
        .map(Arc::new);
    Some((stream, identity))
}
