//! Serving the stubs: one tonic server per listener (h2c, or TLS: [`StubListener`]), and
//! [`StubServers`], which runs the Governor and Coordinator of one [`Store`] side by side.
//! Every server also serves gRPC server reflection (v1 and v1alpha) of the compiled protos.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::{Router, TcpIncoming};

use crate::coordinator::CoordinatorStub;
use crate::governor::GovernorStub;
use crate::health::{HealthControl, HealthService};
use crate::proto::DESCRIPTORS;
use crate::proto::grpc::health::v1::health_server::HealthServer;
use crate::proto::tai::coordinator_server::CoordinatorServer;
use crate::proto::tai::governor_server::GovernorServer;
use crate::store::Store;
use crate::tls::{self, StubTls};
use crate::trailer::WithTrailer;

/// Where a stub server takes connections: h2c, or TLS in front of the same tonic server.
#[derive(Debug)]
pub enum StubListener {
    /// Cleartext HTTP/2.
    Plain(TcpListener),
    /// TLS with this rustls config ([`StubTls`]).
    Tls(TcpListener, Arc<rustls::ServerConfig>),
}

impl From<TcpListener> for StubListener {
    fn from(listener: TcpListener) -> StubListener {
        StubListener::Plain(listener)
    }
}

impl StubListener {
    /// `listener` speaking TLS as `tls` says.
    pub fn tls(listener: TcpListener, tls: &StubTls) -> std::io::Result<StubListener> {
        Ok(StubListener::Tls(listener, tls.server_config()?))
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            StubListener::Plain(l) | StubListener::Tls(l, _) => l.local_addr(),
        }
    }

    async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        match self {
            StubListener::Plain(listener) => {
                router
                    .serve_with_incoming_shutdown(incoming(listener), shutdown)
                    .await
            }
            StubListener::Tls(listener, config) => {
                router
                    .serve_with_incoming_shutdown(tls::incoming(listener, config), shutdown)
                    .await
            }
        }
    }
}

/// Serves `tai.Governor` and `grpc.health.v1.Health` on `listener` until `shutdown` resolves.
///
/// Shutdown is graceful: calls in flight finish; open health `Watch` streams end.
pub async fn serve_governor(
    listener: impl Into<StubListener>,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health, shutdown) = health(&store, shutdown);
    let governor =
        GovernorServer::new(GovernorStub::new(store)).accept_compressed(CompressionEncoding::Gzip);
    let governor = WithTrailer::new(governor);
    let router = Server::builder().add_service(governor).add_service(health);
    listener
        .into()
        .serve(with_reflection(router, DESCRIPTORS), shutdown)
        .await
}

/// Serves `tai.Coordinator` and `grpc.health.v1.Health` on `listener` until `shutdown`
/// resolves.
pub async fn serve_coordinator(
    listener: impl Into<StubListener>,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health, shutdown) = health(&store, shutdown);
    let coordinator = CoordinatorServer::new(CoordinatorStub::new(store))
        .accept_compressed(CompressionEncoding::Gzip);
    let coordinator = WithTrailer::new(coordinator);
    let router = Server::builder()
        .add_service(coordinator)
        .add_service(health);
    listener
        .into()
        .serve(with_reflection(router, DESCRIPTORS), shutdown)
        .await
}

/// Serves only gRPC server reflection (v1 and v1alpha) describing `descriptors` (an encoded
/// `FileDescriptorSet`) on `listener` until `shutdown` resolves: a backend whose schema a test
/// chooses (and changes by serving another set on the same port). Every other method is
/// answered UNIMPLEMENTED.
pub async fn serve_reflection(
    listener: TcpListener,
    descriptors: &[u8],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (v1, v1alpha) = reflection(descriptors);
    let router = Server::builder().add_service(v1).add_service(v1alpha);
    router
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
}

/// `router` also serving gRPC server reflection of `descriptors`.
fn with_reflection(router: Router, descriptors: &[u8]) -> Router {
    let (v1, v1alpha) = reflection(descriptors);
    router.add_service(v1).add_service(v1alpha)
}

/// The v1 and v1alpha reflection services of `descriptors`, served as the bytes are (the
/// google.api.http options included). Panics on a set that does not decode: the stubs' own set
/// is compiled in, and a test's set is the test's mistake.
fn reflection(
    descriptors: &[u8],
) -> (
    tonic_reflection::pb::v1::server_reflection_server::ServerReflectionServer<
        impl tonic_reflection::pb::v1::server_reflection_server::ServerReflection,
    >,
    tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflectionServer<
        impl tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflection,
    >,
) {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptors)
    };
    let v1 = builder().build_v1().expect("a valid descriptor set");
    let v1alpha = builder().build_v1alpha().expect("a valid descriptor set");
    (v1, v1alpha)
}

/// The health service of one server, and a shutdown future that also ends its `Watch`
/// streams, since a graceful shutdown would otherwise wait for them forever.
fn health(
    store: &Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (
    HealthServer<HealthService>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopping) = watch::channel(false);
    let service = HealthServer::new(HealthService::new(store.health(), stopping));
    let shutdown = async move {
        shutdown.await;
        stop.send_replace(true);
    };
    (service, shutdown)
}

fn incoming(listener: TcpListener) -> TcpIncoming {
    // Stub replies are tiny; Nagle would only add latency to timing-sensitive tests.
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// A Governor and a Coordinator sharing one [`Store`], each on its own listener.
///
/// Dropping it stops both servers too (the shutdown channel closes), without waiting for
/// them; [`StubServers::shutdown`] waits.
#[derive(Debug)]
pub struct StubServers {
    /// Where the Governor listens (the bound port when 0 was asked for).
    pub governor_addr: SocketAddr,
    /// Where the Coordinator listens (the bound port when 0 was asked for).
    pub coordinator_addr: SocketAddr,
    store: Arc<Store>,
    /// Sending `true` (or dropping this) tells both servers to stop.
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl StubServers {
    /// Binds both listeners (port 0 picks a free port) and serves on them in background tasks
    /// until [`StubServers::shutdown`] or drop.
    pub async fn start(governor: SocketAddr, coordinator: SocketAddr) -> std::io::Result<Self> {
        let governor = TcpListener::bind(governor).await?;
        let coordinator = TcpListener::bind(coordinator).await?;
        StubServers::start_on(governor.into(), coordinator.into())
    }

    /// Like [`StubServers::start`], both servers speaking TLS as `tls` says.
    pub async fn start_tls(
        governor: SocketAddr,
        coordinator: SocketAddr,
        tls: &StubTls,
    ) -> std::io::Result<Self> {
        let governor = StubListener::tls(TcpListener::bind(governor).await?, tls)?;
        let coordinator = StubListener::tls(TcpListener::bind(coordinator).await?, tls)?;
        StubServers::start_on(governor, coordinator)
    }

    /// Serves on listeners already bound. Must be called inside a tokio runtime.
    pub fn start_on(governor: StubListener, coordinator: StubListener) -> std::io::Result<Self> {
        let governor_addr = governor.local_addr()?;
        let coordinator_addr = coordinator.local_addr()?;
        let store = Arc::new(Store::new());
        let (shutdown, signal) = watch::channel(false);
        let stop = |mut signal: watch::Receiver<bool>| async move {
            // An error means the sender was dropped: stop then as well.
            let _ = signal.wait_for(|stop| *stop).await;
        };
        let tasks = vec![
            tokio::spawn(serve_governor(
                governor,
                Arc::clone(&store),
                stop(signal.clone()),
            )),
            tokio::spawn(serve_coordinator(
                coordinator,
                Arc::clone(&store),
                stop(signal),
            )),
        ];
        tracing::info!(%governor_addr, %coordinator_addr, "stub servers listening");
        Ok(Self {
            governor_addr,
            coordinator_addr,
            store,
            shutdown,
            tasks,
        })
    }

    /// The state both servers share: policies and call counters.
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// The handle that sets what the health services report.
    pub fn health(&self) -> HealthControl {
        self.store.health()
    }

    /// Stops both servers and waits for them to finish; server errors are logged.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "stub server failed"),
                Err(error) => tracing::warn!(%error, "stub server task failed"),
            }
        }
    }
}
