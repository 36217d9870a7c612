//! The cleartext accept loop: public HTTP/1.1 + h2c (on the worker threads) and the admin
//! server (on the control runtime, so it answers while the workers are busy).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::serve::{HttpServer, Speaks, serve_connection};
use super::table::Table;
use super::{Handler, accept_loop, timeouts};
use crate::config::ListenerLimits;
use crate::metrics::Metrics;
use crate::workers::Workers;

/// Serves `listener` until `stop` completes with the drain timeout, then drains open connections
/// for at most that long. Connections are seated in `table` under `limits`, run on `workers`
/// when given (else on the accepting runtime), and are counted in `metrics` under `name`.
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    (limits, table): (ListenerLimits, Arc<Table>),
    stop: impl Future<Output = Duration>,
    (metrics, name): (Arc<Metrics>, Arc<str>),
    workers: Option<Arc<Workers>>,
    handler: H,
) {
    let server = Arc::new(HttpServer::new(&limits));
    let seating = (table, timeouts(&limits));
    accept_loop(
        listener,
        stop,
        &name,
        seating,
        |stream, connection, seat, watcher| {
            let peer = connection.peer();
            let (stream, place) = match &workers {
                Some(workers) => match workers.adopt(stream, peer) {
                    Some(adopted) => adopted,
                    None => return,
                },
                None => (stream, tokio::runtime::Handle::current()),
            };
            let (server, handler) = (server.clone(), handler.clone());
            let open = metrics.connection_opened(&name);
            // Only the TLS listener may set the client-certificate headers: no identity here.
            place.spawn(async move {
                let (_open, _seat) = (open, seat);
                let io = (stream, Speaks::Any);
                serve_connection(&server, io, connection, None, handler, watcher).await;
            });
        },
    )
    .await;
}
