//! A consumer process' own scrape endpoint: `GET /metrics` with its counters, the group's lag and
//! pending entries (the gateway's admin listener is in another process).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::consume::ConsumerStats;

/// Serves `GET /metrics` for consumer group `group` on `listener` until the task is dropped.
pub async fn serve_consumer_metrics(
    listener: TcpListener,
    group: String,
    stats: Arc<ConsumerStats>,
) {
    let group: Arc<str> = group.into();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (group, stats) = (group.clone(), stats.clone());
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let answer = answer(&request, &group, &stats);
            async move { Ok::<_, Infallible>(answer) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The exposition for `GET /metrics`, 404 for any other path, 405 for any other method.
fn answer(
    request: &Request<Incoming>,
    group: &str,
    stats: &ConsumerStats,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => {
            let mut text = String::new();
            crate::metrics::render_consumer(&mut text, group, stats);
            (StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            r#"{"code":12,"message":"only GET /metrics"}"#.to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"code":5,"message":"only GET /metrics is served here"}"#.to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
