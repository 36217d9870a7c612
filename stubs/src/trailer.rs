//! Adds the `x-stub-trailer: done` trailer to every response of a wrapped tonic service, and the
//! `x-stub-request-encoding` header: the request's `grpc-encoding` (`identity` without one).
//!
//! tonic writes the trailers of a successful unary call itself (`grpc-status: 0` and nothing
//! else) and offers handlers no way to add to them, so this wrapper edits the trailers frame
//! of the HTTP/2 response body on its way out. Errors sent as trailers-only responses have
//! no trailers frame and are left alone.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::{Bytes, Service};
use tonic::server::NamedService;

/// The trailer added to every response body that ends with trailers.
pub const TRAILER_NAME: &str = "x-stub-trailer";
/// The response header naming the `grpc-encoding` the request came with (`identity` without).
pub const REQUEST_ENCODING_HEADER: &str = "x-stub-request-encoding";
/// The value of [`TRAILER_NAME`].
const TRAILER_VALUE: &str = "done";

/// A tonic service whose responses gain the `x-stub-trailer` trailer.
#[derive(Debug, Clone)]
pub(crate) struct WithTrailer<S> {
    inner: S,
}

impl<S> WithTrailer<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for WithTrailer<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for WithTrailer<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let encoding = request
            .headers()
            .get("grpc-encoding")
            .cloned()
            .unwrap_or(HeaderValue::from_static("identity"));
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            response
                .headers_mut()
                .insert(REQUEST_ENCODING_HEADER, encoding);
            Ok(response.map(|body| Body::new(TrailerBody { inner: body })))
        })
    }
}

/// A response body that adds [`TRAILER_NAME`] to its trailers frame.
struct TrailerBody {
    inner: Body,
}

impl HttpBody for TrailerBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        polled.map(|frame| {
            frame.map(|frame| {
                frame.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        trailers.insert(
                            HeaderName::from_static(TRAILER_NAME),
                            HeaderValue::from_static(TRAILER_VALUE),
                        );
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
