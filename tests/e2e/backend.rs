//! Hand-made backends for cases the tonic stubs cannot play: a gRPC server for a service the
//! gateway was never built with (it echoes each request message back, whatever its type), and
//! servers that answer with something that is not valid gRPC.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// How a [`RawBackend`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// A valid gRPC answer holding the request message unchanged.
    Echo,
    /// HTTP 200 with an HTML body: not gRPC at all.
    Html,
    /// gRPC content type and a message, but no grpc-status anywhere.
    NoStatus,
    /// gRPC OK whose message bytes are not a valid protobuf encoding.
    GarbageMessage,
    /// A trailers-only FAILED_PRECONDITION whose `grpc-message` is percent-encoded UTF-8
    /// ([`ENCODED_MESSAGE`]), as gRPC requires for non-ASCII text.
    EncodedMessage,
}

/// The `grpc-message` sent by [`Behaviour::EncodedMessage`]: `café ✓ 100%` percent-encoded.
pub(crate) const ENCODED_MESSAGE: &str = "caf%C3%A9 %E2%9C%93 100%25";

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Starts a backend on 127.0.0.1:0 and returns its address; it lives until the test runtime ends.
pub(crate) async fn start(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, behaviour));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(
    request: Request<Incoming>,
    behaviour: Behaviour,
) -> Result<Response<BoxBody>, Infallible> {
    let metadata = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let response = match behaviour {
        Behaviour::Html => Response::builder()
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(b"<html>oops</html>")).boxed()),
        Behaviour::NoStatus => Response::builder()
            .header("content-type", "application/grpc")
            .body(Full::new(body).boxed()),
        Behaviour::Echo => grpc_ok(body, &metadata),
        Behaviour::GarbageMessage => {
            grpc_ok(Bytes::from_static(&[0, 0, 0, 0, 2, 0xff, 0xff]), &metadata)
        }
        Behaviour::EncodedMessage => Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "9")
            .header("grpc-message", ENCODED_MESSAGE)
            .body(Full::new(Bytes::new()).boxed()),
    };
    Ok(response.unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::new()).boxed());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    }))
}

/// 200 + the framed message + `grpc-status: 0` in trailers; echoes `x-tenant-id` as a header.
fn grpc_ok(framed: Bytes, metadata: &HeaderMap) -> http::Result<Response<BoxBody>> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut builder = Response::builder().header("content-type", "application/grpc");
    if let Some(tenant) = metadata.get("x-tenant-id") {
        builder = builder.header("x-echo-tenant", tenant.clone());
    }
    builder.body(
        DataThenTrailers {
            data: Some(framed),
            trailers: Some(trailers),
        }
        .boxed(),
    )
}

/// A body of one data frame followed by trailers, as a unary gRPC answer is.
struct DataThenTrailers {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for DataThenTrailers {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}
