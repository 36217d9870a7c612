//! The running gateway: binds the listeners a runtime's config names (any number of public
//! HTTP/1.1 + h2c and HTTPS listeners, each serving all routes or its own, and the admin server), wires them to the pipeline, the admin server, hot reload and the maintenance
//! task, the event drain, and stops them in order (public listeners drain first, then the event
//! drain publishes what it can within the drain timeout, then the admin server stops).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::access_log::AccessLog;
use crate::admin::{Admin, Lifecycle};
use crate::config::{Config, ListenerConfig, ListenerLimits};
use crate::events::Events;
use crate::listener::budget::Budget;
use crate::listener::table::Table;
use crate::listener::tls::TlsTerminator;
use crate::listener::{Handler, https, plain};
use crate::metrics::Metrics;
use crate::pipeline::{Gateway, Served};
use crate::reload::{ReloadStatus, Reloader};
use crate::runtime::Runtime;
use crate::state::Shared;
use crate::trace::{Exporter, Tracer, settings};
use crate::workers::Workers;

/// Shutdown signal: `Some(drain timeout)` once shutdown has started.
type Stop = watch::Receiver<Option<Duration>>;

/// One public listener as started.
#[derive(Debug, Clone)]
pub struct BoundListener {
    /// Its name (`listeners[].name`).
    pub name: String,
    /// The address it is bound to.
    pub addr: SocketAddr,
    /// Its TLS state (current certificates, reload counters); `None`: cleartext.
    pub tls: Option<Arc<TlsTerminator>>,
}

/// A running gateway: its bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    /// Every public listener, in config order.
    pub listeners: Vec<BoundListener>,
    /// The first cleartext listener's bound address.
    pub http_addr: Option<SocketAddr>,
    /// The admin listener's bound address.
    pub admin_addr: Option<SocketAddr>,
    /// The first HTTPS listener's bound address.
    pub tls_addr: Option<SocketAddr>,
    /// The first HTTPS listener's TLS state.
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
    /// Stops the event drain, once no request can add events any more.
    shutdown_events: watch::Sender<Option<Duration>>,
    event_tasks: JoinSet<()>,
}

impl ServerHandle {
    /// Binds the listeners named in the runtime's config (port 0 allowed) and starts serving.
    /// A TLS certificate, key or CA file that is missing or broken fails the start, naming the file.
    pub async fn start(runtime: Runtime) -> std::io::Result<ServerHandle> {
        let runtime = crate::reflection::refresh::first(runtime).await;
        let tls = load_tls(&runtime.config.listeners)?;
        let threads = runtime.config.workers.threads(crate::workers::available());
        let workers = Arc::new(Workers::start(threads)?);
        let config = runtime.config.clone();
        let metrics = Arc::new(Metrics::new());
        let gateway = gateway(runtime, &metrics)?;
        let gateway = Arc::new(gateway);
        let reloader = Reloader::new(gateway.clone());
        let lifecycle = Arc::new(Lifecycle::default());
        let (shutdown, watch_shutdown) = watch::channel(None);
        let (shutdown_admin, watch_admin) = watch::channel(None);
        let (shutdown_events, watch_events) = watch::channel(None);
        let mut started = Started {
            limits: config.limits.clone(),
            table: public_table(&config.limits),
            metrics,
            stop: watch_shutdown,
            tasks: JoinSet::new(),
        };
        started
            .tasks
            .spawn(reloader.clone().watch(started.stop.clone()));
        let refresh = crate::reflection::refresh::run(
            gateway.clone(),
            reloader.clone(),
            started.stop.clone(),
        );
        started.tasks.spawn(refresh);
        let listeners = started
            .listeners(&config.listeners, tls, &gateway, &workers)
            .await?;
        let first_tls = listeners.iter().find(|l| l.tls.is_some());
        let (tls_addr, tls) = (
            first_tls.map(|l| l.addr),
            first_tls.and_then(|l| l.tls.clone()),
        );
        let http_addr = listeners.iter().find(|l| l.tls.is_none()).map(|l| l.addr);
        let admin = Admin {
            gateway: gateway.clone(),
            reloader: reloader.clone(),
            lifecycle: lifecycle.clone(),
        };
        // The admin server has tasks of its own: it stops after the public listeners drained.
        let mut admin_tasks = JoinSet::new();
        let admin_addr = match config.admin {
            Some(addr) => Some(
                started
                    .admin(addr, admin, watch_admin, &mut admin_tasks)
                    .await?,
            ),
            None => None,
        };
        started.maintain(&gateway);
        started.share(&gateway);
        let event_tasks = started.drain_events(&gateway, watch_events);
        lifecycle.set_ready();
        Ok(ServerHandle {
            listeners,
            http_addr,
            admin_addr,
            tls_addr,
            tls,
            gateway,
            reloader,
            lifecycle,
            shutdown,
            shutdown_admin,
            tasks: started.tasks,
            admin_tasks,
            shutdown_events,
            event_tasks,
        })
    }

    /// Reloads the config now (what `SIGHUP` does) and returns the result.
    pub async fn reload(&self, trigger: &'static str) -> ReloadStatus {
        self.reloader.reload(trigger).await
    }

    /// Graceful stop: `/ready` turns 503, the public listener stops accepting, requests in flight
    /// finish within the config's `shutdown.drain_timeout`; the event drain then publishes what
    /// the spool holds within what is left of that timeout (the rest stays spooled for the next
    /// start); then the admin server stops.
    pub async fn shutdown(mut self) {
        self.lifecycle.set_draining();
        let drain = self.gateway.runtime().config.ops.drain_timeout;
        let started = tokio::time::Instant::now();
        let _ = self.shutdown.send(Some(drain));
        while self.tasks.join_next().await.is_some() {}
        if let Some(events) = self.gateway.events() {
            events.flush().await;
        }
        let left = drain.saturating_sub(started.elapsed());
        let _ = self.shutdown_events.send(Some(left));
        while self.event_tasks.join_next().await.is_some() {}
        let _ = self.shutdown_admin.send(Some(Duration::from_secs(1)));
        while self.admin_tasks.join_next().await.is_some() {}
        // The last requests' lines reach the file before the process ends.
        self.gateway.flush_access_log(Duration::from_secs(5)).await;
        // And the last spans reach the collector (bounded: a collector that is down is not
        // waited for).
        self.gateway.flush_spans(Duration::from_secs(5)).await;
    }
}

/// The gateway of a starting server, with its operations parts: the access log, the shared
/// store, the event spool (opened before any listener: a folder held by another process fails
/// the start) and the tracer.
fn gateway(runtime: Runtime, metrics: &Arc<Metrics>) -> std::io::Result<Gateway> {
    let access_log = match &runtime.config.ops.access_log {
        Some(target) => Some(AccessLog::start(target)?),
        None => None,
    };
    let shared = Shared::connect(runtime.config.redis.as_ref())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let events = match Events::wanted(&runtime.config) {
        true => Some(Events::open(&runtime.config.events)?),
        false => None,
    };
    let tracer = tracer(&runtime.config, metrics)?;
    let gateway = Gateway::with_ops(runtime, metrics.clone(), access_log)
        .sharing(shared)
        .tracing(tracer);
    Ok(match events {
        Some(events) => gateway.recording(events),
        None => gateway,
    })
}

/// The tracer of the `tracing:` section and the `OTEL_*` environment variables: sampling,
/// and the span export thread when a collector is named. A bad variable fails the start.
fn tracer(config: &Config, metrics: &Arc<Metrics>) -> std::io::Result<Tracer> {
    let env = |name: &str| std::env::var(name).ok();
    let (sampler, destination) = settings::resolve(&config.ops.tracing, &env)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let exporter = match destination {
        Some(destination) => {
            tracing::info!(uri = %destination.uri, "exporting trace spans");
            Some(Exporter::start(destination, metrics.clone())?)
        }
        None => None,
    };
    Ok(Tracer { sampler, exporter })
}

/// The table of the public listeners' connections (cleartext and HTTPS share its caps and
/// its budget of held answer bytes).
fn public_table(limits: &ListenerLimits) -> Arc<Table> {
    let budget = Budget {
        total: limits.max_buffered_response_bytes,
        per_connection: limits.max_buffered_response_bytes_per_connection,
    };
    let table = Table::new(
        limits.max_connections,
        limits.max_connections_per_ip,
        budget,
    );
    tracing::debug!(
        max_connections = table.max_connections(),
        "public connection cap"
    );
    Arc::new(table)
}

/// The admin listener's own small table: operators' connections never compete with the
/// public ones, and the public cap keeps descriptors in reserve for them.
fn admin_table() -> Arc<Table> {
    let budget = Budget {
        total: 64 << 20,
        per_connection: 16 << 20,
    };
    Arc::new(Table::new(ADMIN_CONNECTIONS, 0, budget))
}

/// Open admin connections at most.
const ADMIN_CONNECTIONS: usize = 32;

/// Each HTTPS listener's certificates (`None` for a cleartext one), loaded now so a broken file
/// fails the start.
fn load_tls(listeners: &[ListenerConfig]) -> std::io::Result<Vec<Option<Arc<TlsTerminator>>>> {
    let load = |listener: &ListenerConfig| {
        let Some(settings) = listener.tls.clone() else {
            return Ok(None);
        };
        let tls = TlsTerminator::load(&listener.name, settings).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("TLS listener {}: {e}", listener.name),
            )
        })?;
        Ok(Some(Arc::new(tls)))
    };
    listeners.iter().map(load).collect()
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

/// What the listeners being started share: their limits, the public connection table, metrics,
/// shutdown signal and tasks.
struct Started {
    limits: ListenerLimits,
    table: Arc<Table>,
    metrics: Arc<Metrics>,
    stop: Stop,
    tasks: JoinSet<()>,
}

impl Started {
    /// Every public listener, with its TLS state (`tls`, in the same order).
    async fn listeners(
        &mut self,
        configs: &[ListenerConfig],
        tls: Vec<Option<Arc<TlsTerminator>>>,
        gateway: &Arc<Gateway>,
        workers: &Arc<Workers>,
    ) -> std::io::Result<Vec<BoundListener>> {
        let mut listeners = Vec::with_capacity(configs.len());
        for (config, tls) in configs.iter().zip(tls) {
            let addr = match &tls {
                None => self.public(config, gateway, workers).await?,
                Some(tls) => self.https(config, tls, gateway, workers).await?,
            };
            let name = config.name.clone();
            listeners.push(BoundListener { name, addr, tls });
        }
        Ok(listeners)
    }

    /// A public cleartext listener (HTTP/1.1 + h2c), served on the workers.
    async fn public(
        &mut self,
        config: &ListenerConfig,
        gateway: &Arc<Gateway>,
        workers: &Arc<Workers>,
    ) -> std::io::Result<SocketAddr> {
        let listener = bind(config.address).await?;
        let bound = listener.local_addr()?;
        self.tasks.spawn(plain::serve(
            listener,
            (self.limits.clone(), self.table.clone()),
            wait_for(self.stop.clone()),
            (self.metrics.clone(), config.name.as_str().into()),
            Some(workers.clone()),
            pipeline_handler(gateway, config),
        ));
        Ok(bound)
    }

    /// A public HTTPS listener, served on the workers, and its certificate watcher.
    async fn https(
        &mut self,
        config: &ListenerConfig,
        tls: &Arc<TlsTerminator>,
        gateway: &Arc<Gateway>,
        workers: &Arc<Workers>,
    ) -> std::io::Result<SocketAddr> {
        let listener = bind(config.address).await?;
        let bound = listener.local_addr()?;
        self.tasks.spawn(https::serve_tls(
            listener,
            tls.clone(),
            (self.limits.clone(), self.table.clone()),
            wait_for(self.stop.clone()),
            (self.metrics.clone(), config.name.as_str().into()),
            workers.clone(),
            pipeline_handler(gateway, config),
        ));
        let stop = wait_for(self.stop.clone());
        self.tasks.spawn(tls.clone().watch_files(async move {
            stop.await;
        }));
        Ok(bound)
    }

    /// The admin listener. It stays on the control runtime (no workers), so it answers while the
    /// workers are busy, and stops only after the public listeners have drained.
    async fn admin(
        &mut self,
        addr: SocketAddr,
        admin: Admin,
        stop: Stop,
        tasks: &mut JoinSet<()>,
    ) -> std::io::Result<SocketAddr> {
        let listener = bind(addr).await?;
        let bound = listener.local_addr()?;
        tasks.spawn(plain::serve(
            listener,
            (self.limits.clone(), admin_table()),
            wait_for(stop),
            (self.metrics.clone(), "admin".into()),
            None,
            move |req, _| {
                let admin = admin.clone();
                async move { admin.handle(req).await }
            },
        ));
        Ok(bound)
    }
}

impl Started {
    /// Announces this replica to the fleet and follows the other replicas' cache events
    /// (through Redis, when configured) until shutdown.
    fn share(&mut self, gateway: &Arc<Gateway>) {
        let (stop, shared) = (wait_for(self.stop.clone()), gateway.shared().clone());
        self.tasks.spawn(async move {
            tokio::select! {
                () = shared.announce() => {}
                _ = stop => {}
            }
        });
        let (stop, gateway) = (wait_for(self.stop.clone()), gateway.clone());
        self.tasks.spawn(async move {
            tokio::select! {
                () = gateway.follow_cache_events() => {}
                _ = stop => {}
            }
        });
    }

    /// The event drain: publishes the spool (to the Redis stream with a `redis:` section, else
    /// to the local file) until `stop`, which comes after the public listeners have drained.
    fn drain_events(&self, gateway: &Arc<Gateway>, stop: Stop) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        let Some(events) = gateway.events().cloned() else {
            return tasks;
        };
        let config = &gateway.runtime().config.events;
        let publisher = Events::publisher(config, gateway.shared().redis.as_ref());
        tasks.spawn(async move {
            events.drain(&*publisher, wait_for(stop)).await;
        });
        tasks
    }

    /// The maintenance task, until shutdown.
    fn maintain(&mut self, gateway: &Arc<Gateway>) {
        let stop = wait_for(self.stop.clone());
        self.tasks.spawn(maintain(gateway.clone(), async move {
            stop.await;
        }));
    }
}

/// The request handler of public listener `config`: the gateway's pipeline, told which
/// listener the request came in on (and so which routes it may reach).
fn pipeline_handler(gateway: &Arc<Gateway>, config: &ListenerConfig) -> impl Handler {
    let gateway = gateway.clone();
    let served = Arc::new(Served::new(&config.name, config.routes.as_deref()));
    move |mut request: http::Request<hyper::body::Incoming>, peer| {
        let gateway = gateway.clone();
        request.extensions_mut().insert(served.clone());
        async move { gateway.handle(request, peer).await }
    }
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
