//! The cleartext accept loop: public HTTP/1.1 + h2c (on the worker threads) and the admin
//! server (on the control runtime, so it answers while the workers are busy).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{Handler, accept_loop, http_builder, serve_connection};
use crate::config::ListenerLimits;
use crate::metrics::Metrics;
use crate::workers::Workers;

/// Serves `listener` until `stop` completes with the drain timeout, then drains open connections
/// for at most that long. Connections run on `workers` when given, else on the accepting
/// runtime; open ones are counted in `metrics` under `name`.
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    limits: ListenerLimits,
    stop: impl Future<Output = Duration>,
    (metrics, name): (Arc<Metrics>, &'static str),
    workers: Option<Arc<Workers>>,
    handler: H,
) {
    let builder = Arc::new(http_builder(&limits));
    let idle_timeout = limits.idle_timeout;
    accept_loop(listener, stop, name, |stream, peer, watcher| {
        let (stream, place) = match &workers {
            Some(workers) => match workers.adopt(stream, peer) {
                Some(adopted) => adopted,
                None => return,
            },
            None => (stream, tokio::runtime::Handle::current()),
        };
        let (builder, handler) = (builder.clone(), handler.clone());
        let open = metrics.connection_opened(name);
        // Only the TLS listener may set the client-certificate headers: no identity here.
        place.spawn(async move {
            let _open = open;
            serve_connection(&builder, stream, peer, None, idle_timeout, handler, watcher).await;
        });
    })
    .await;
}
