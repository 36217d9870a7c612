//! Listeners: the public HTTP/1.1 + h2c server, the HTTPS server (`crate::tls`) and the admin
//! server, bound from a runtime's config, each an accept loop that serves connections until
//! shutdown, then drains them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::access_log::AccessLog;
use crate::admin::{Admin, Lifecycle};
use crate::config::ListenerLimits;
use crate::idle::{Activity, IdleIo};
use crate::metrics::Metrics;
use crate::pipeline::{Gateway, ResponseBody};
use crate::reload::{ReloadStatus, Reloader};
use crate::runtime::Runtime;
use crate::tls::TlsTerminator;
use crate::workers::Workers;

/// Shutdown signal: `Some(drain timeout)` once shutdown has started.
type Stop = watch::Receiver<Option<Duration>>;

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
    /// Rebuilds the runtime on file changes, `SIGHUP` and `POST /reload`.
    pub reloader: Arc<Reloader>,
    lifecycle: Arc<Lifecycle>,
    /// Stops the public listener (and the file watcher).
    shutdown: watch::Sender<Option<Duration>>,
    /// Stops the admin listener, after the public one has drained.
    shutdown_admin: watch::Sender<Option<Duration>>,
    tasks: JoinSet<()>,
    admin_tasks: JoinSet<()>,
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
        let access_log = match &runtime.config.ops.access_log {
            Some(target) => Some(AccessLog::start(target)?),
            None => None,
        };
        let threads = runtime.config.workers.threads(crate::workers::available());
        let workers = Arc::new(Workers::start(threads)?);
        let metrics = Arc::new(Metrics::new());
        let gateway = Arc::new(Gateway::with_ops(runtime, metrics.clone(), access_log));
        let reloader = Reloader::new(gateway.clone());
        let lifecycle = Arc::new(Lifecycle::default());
        let (shutdown, watch_shutdown) = watch::channel(None);
        let (shutdown_admin, watch_admin) = watch::channel(None);
        let mut tasks = JoinSet::new();
        let mut admin_tasks = JoinSet::new();
        tasks.spawn(reloader.clone().watch(watch_shutdown.clone()));
        let mut http_addr = None;
        if let Some(addr) = http_bind {
            let listener = bind(addr).await?;
            http_addr = Some(listener.local_addr()?);
            let gateway = gateway.clone();
            let stop = wait_for(watch_shutdown.clone());
            let counted = (metrics.clone(), "http");
            tasks.spawn(serve(
                listener,
                limits.clone(),
                stop,
                counted,
                Some(workers.clone()),
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
            let stop = wait_for(watch_shutdown.clone());
            tasks.spawn(crate::tls::accept::serve_tls(
                listener,
                tls.clone(),
                limits.clone(),
                stop,
                (metrics.clone(), "https"),
                workers.clone(),
                move |req, peer| {
                    let gateway = gateway.clone();
                    async move { gateway.handle(req, peer).await }
                },
            ));
            let stop = wait_for(watch_shutdown.clone());
            tasks.spawn(tls.clone().watch_files(async move {
                stop.await;
            }));
        }
        let mut admin_addr = None;
        if let Some(addr) = admin_bind {
            let listener = bind(addr).await?;
            admin_addr = Some(listener.local_addr()?);
            let admin = Admin {
                gateway: gateway.clone(),
                reloader: reloader.clone(),
                lifecycle: lifecycle.clone(),
            };
            let stop = wait_for(watch_admin);
            let counted = (metrics.clone(), "admin");
            // The admin server stays on the control runtime (no workers): it answers while the
            // workers are busy.
            admin_tasks.spawn(serve(
                listener,
                limits,
                stop,
                counted,
                None,
                move |req, _| {
                    let admin = admin.clone();
                    async move { admin.handle(req).await }
                },
            ));
        }
        let stop = wait_for(watch_shutdown.clone());
        tasks.spawn(maintain(gateway.clone(), async move {
            stop.await;
        }));
        lifecycle.set_ready();
        Ok(ServerHandle {
            http_addr,
            admin_addr,
            tls_addr,
            tls,
            gateway,
            reloader,
            lifecycle,
            shutdown,
            shutdown_admin,
            tasks,
            admin_tasks,
        })
    }

    /// Reloads the config now (what `SIGHUP` does) and returns the result.
    pub async fn reload(&self, trigger: &'static str) -> ReloadStatus {
        self.reloader.reload(trigger).await
    }

    /// Graceful stop: `/ready` turns 503, the public listener stops accepting, requests in flight
    /// finish within the config's `shutdown.drain_timeout`; then the admin server stops.
    pub async fn shutdown(mut self) {
        self.lifecycle.set_draining();
        let drain = self.gateway.runtime().config.ops.drain_timeout;
        let _ = self.shutdown.send(Some(drain));
        while self.tasks.join_next().await.is_some() {}
        let _ = self.shutdown_admin.send(Some(Duration::from_secs(1)));
        while self.admin_tasks.join_next().await.is_some() {}
        // The last requests' lines reach the file before the process ends.
        self.gateway.flush_access_log(Duration::from_secs(5)).await;
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Resolves to the drain timeout once shutdown starts.
async fn wait_for(mut flag: Stop) -> Duration {
    match flag.wait_for(Option::is_some).await {
        Ok(drain) => drain.unwrap_or_default(),
        // The handle was dropped without a shutdown: stop at once.
        Err(_) => Duration::ZERO,
    }
}

/// The accept loop of the plain and admin listeners; connections run on `workers` when given,
/// otherwise on the accepting runtime.
async fn serve<H, F>(
    listener: TcpListener,
    limits: ListenerLimits,
    stop: impl Future<Output = Duration>,
    (metrics, name): (Arc<Metrics>, &'static str),
    workers: Option<Arc<Workers>>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let builder = http_builder(&limits);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    let drain = loop {
        let (stream, peer) = tokio::select! {
            pair = accept(&listener) => pair,
            drain = &mut stop => break drain,
        };
        let (stream, place) = match &workers {
            Some(workers) => match workers.adopt(stream, peer) {
                Some(adopted) => adopted,
                None => continue,
            },
            None => (stream, tokio::runtime::Handle::current()),
        };
        // The idle timer belongs to the runtime that serves the connection.
        let _entered = place.enter();
        let handler = handler.clone();
        let activity = Activity::new();
        let io = IdleIo::new(stream, activity.clone(), limits.idle_timeout);
        let service = service_fn(move |req| activity.serve(handler(req, peer)));
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let open = metrics.connection_opened(name);
        place.spawn(async move {
            let _open = open;
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    };
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout passed with connections still open");
    }
}

/// The next connection, with Nagle off. Accept errors (out of file descriptors and similar) are
/// logged and retried after a pause instead of spinning or ending the listener.
pub(crate) async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP/1.1 + HTTP/2 connection settings every listener shares.
pub(crate) fn http_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
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

/// The one maintenance task: rate-limit key pruning and remote JWKS refresh, once a second,
/// each doing work only when its own interval is due.
async fn maintain(gateway: Arc<Gateway>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        // The round itself is cancelled by shutdown too (a JWKS fetch can take its timeout).
        tokio::select! {
            () = async { tick.tick().await; gateway.maintain().await } => {}
            () = &mut stop => break,
        }
    }
}
