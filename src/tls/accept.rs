//! The HTTPS accept loop: TCP accept → TLS handshake (bounded by `handshake_timeout`) → the same
//! HTTP/1.1 + HTTP/2 server as the plain listener, with the client identity set on each request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::TlsTerminator;
use super::identity::{self, ClientIdentity};
use crate::config::ListenerLimits;
use crate::idle::{Activity, IdleIo};
use crate::metrics::Metrics;
use crate::pipeline::ResponseBody;
use crate::workers::Workers;

/// Serves HTTPS on `listener` until `stop` completes with the drain timeout, then drains open
/// connections for at most that long. Each connection's handshake uses the config current when it
/// was accepted; open connections are counted in `metrics` under `name`.
pub(crate) async fn serve_tls<H, F>(
    listener: TcpListener,
    tls: Arc<TlsTerminator>,
    limits: ListenerLimits,
    stop: impl Future<Output = Duration>,
    (metrics, name): (Arc<Metrics>, &'static str),
    workers: Arc<Workers>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let builder = Arc::new(crate::server::http_builder(&limits));
    let idle_timeout = limits.idle_timeout;
    let handshake_timeout = tls.settings().handshake_timeout;
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    let drain = loop {
        let (stream, peer) = tokio::select! {
            pair = crate::server::accept(&listener) => pair,
            drain = &mut stop => break drain,
        };
        // The handshake and the connection run on one worker, start to end.
        let Some((stream, worker)) = workers.adopt(stream, peer) else {
            continue;
        };
        let acceptor = TlsAcceptor::from(tls.server_config());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let handler = handler.clone();
        let open = metrics.connection_opened(name);
        let metrics = metrics.clone();
        worker.spawn(async move {
            let _open = open;
            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await;
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
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %peer, "TLS handshake timed out");
                    return;
                }
            };
            let identity: Option<Arc<ClientIdentity>> = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(ClientIdentity::from_certificate)
                .map(Arc::new);
            let activity = Activity::new();
            let io = IdleIo::new(stream, activity.clone(), idle_timeout);
            let service = service_fn(move |mut request: Request<Incoming>| {
                identity::apply(request.headers_mut(), identity.as_deref());
                activity.serve(handler(request, peer))
            });
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    };
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout passed with TLS connections still open");
    }
}
