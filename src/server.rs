//! Listeners: the public HTTP/1.1 + h2c server, the HTTPS server (`crate::tls`) and the admin
//! server, bound from a runtime's config, each an accept loop that serves connections until
//! shutdown, then drains them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::ListenerLimits;
use crate::pipeline::{Gateway, ResponseBody, plain_json};
use crate::runtime::Runtime;
use crate::tls::TlsTerminator;

/// How long open connections get to finish their requests after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running gateway: its bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    /// The public listener's bound address.
    pub http_addr: Option<SocketAddr>,
    /// The admin listener's bound address.
    pub admin_addr: Option<SocketAddr>,
    /// The HTTPS listener's bound address.
    pub tls_addr: Option<SocketAddr>,
    /// The HTTPS listener's TLS state (current certificates, reload counters).
    pub tls: Option<Arc<TlsTerminator>>,
    /// The gateway (for reloads).
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl ServerHandle {
    /// Binds the listeners named in the runtime's config (port 0 allowed) and starts serving.
    /// A TLS certificate, key or CA file that is missing or broken fails the start, naming the file.
    pub async fn start(runtime: Runtime) -> std::io::Result<ServerHandle> {
        let tls = match runtime.config.tls_listener.clone() {
            Some(settings) => Some(Arc::new(TlsTerminator::load(settings).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("TLS listener: {e}"),
                )
            })?)),
            None => None,
        };
        let http_bind = runtime.config.http_listener;
        let admin_bind = runtime.config.admin;
        let limits = runtime.config.limits.clone();
        let gateway = Arc::new(Gateway::new(runtime));
        let (shutdown, watch_shutdown) = watch::channel(false);
        let ready = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        let mut http_addr = None;
        if let Some(addr) = http_bind {
            let listener = bind(addr).await?;
            http_addr = Some(listener.local_addr()?);
            let gateway = gateway.clone();
            let stop = wait_for(watch_shutdown.clone());
            tasks.spawn(serve(
                listener,
                limits.clone(),
                stop,
                move |mut req, peer| {
                    // Only the TLS listener may set the client-certificate headers.
                    crate::tls::identity::apply(req.headers_mut(), None);
                    let gateway = gateway.clone();
                    async move { gateway.handle(req, peer).await }
                },
            ));
        }
        let mut tls_addr = None;
        if let Some(tls) = &tls {
            let listener = bind(tls.settings().address).await?;
            tls_addr = Some(listener.local_addr()?);
            let gateway = gateway.clone();
            let builder = http_builder(&limits);
            let stop = wait_for(watch_shutdown.clone());
            tasks.spawn(crate::tls::accept::serve_tls(
                listener,
                tls.clone(),
                builder,
                DRAIN_TIMEOUT,
                stop,
                move |req, peer| {
                    let gateway = gateway.clone();
                    async move { gateway.handle(req, peer).await }
                },
            ));
            tasks.spawn(tls.clone().watch_files(wait_for(watch_shutdown.clone())));
        }
        let mut admin_addr = None;
        if let Some(addr) = admin_bind {
            let listener = bind(addr).await?;
            admin_addr = Some(listener.local_addr()?);
            let ready = ready.clone();
            let stop = wait_for(watch_shutdown.clone());
            tasks.spawn(serve(listener, limits, stop, move |req, _| {
                let ready = ready.clone();
                async move { admin(&req, &ready) }
            }));
        }
        ready.store(true, Ordering::SeqCst);
        Ok(ServerHandle {
            http_addr,
            admin_addr,
            tls_addr,
            tls,
            gateway,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting, lets open requests finish (bounded), and returns when all listeners are done.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

async fn wait_for(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// The accept loop shared by both listeners.
async fn serve<H, F>(
    listener: TcpListener,
    limits: ListenerLimits,
    stop: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let builder = http_builder(&limits);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req, peer);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout passed with connections still open");
    }
}

/// The HTTP/1.1 + HTTP/2 connection settings every listener shares.
fn http_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(1024);
    builder
}

/// The admin endpoints.
fn admin(request: &Request<Incoming>, ready: &AtomicBool) -> Response<ResponseBody> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => plain_json(StatusCode::OK, r#"{"status":"ok"}"#),
        (&Method::GET, "/ready") if ready.load(Ordering::SeqCst) => {
            plain_json(StatusCode::OK, r#"{"status":"ready"}"#)
        }
        (&Method::GET, "/ready") => {
            plain_json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not ready"}"#)
        }
        _ => plain_json(
            StatusCode::NOT_FOUND,
            r#"{"code":5,"message":"no such admin endpoint","details":[]}"#,
        ),
    }
}
