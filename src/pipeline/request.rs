//! The request message of a transcoded call with a whole body (unary and server-streaming
//! methods): the body's media type checked, the body read within its size and time limits, and
//! path variables, query and body turned into one protobuf message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Limited};

use super::answer::HttpCall;
use super::outcome::Outcome;
use crate::body::RequestBody;
use crate::compression::{self, ContentEncoding};
use crate::edge::Admitted;
use crate::error::GatewayError;
use crate::runtime::{Binding, Runtime};
use crate::trace::RequestTrace;
use crate::transcode::request::{RequestParts, encode_request};
use crate::upstream::{CallOptions, Caller, ClientId};

/// A transcoded call's request, read: the message and what its backend call needs.
pub(crate) struct Message {
    /// The HTTP rule the call came through.
    pub(crate) binding: Arc<Binding>,
    /// The encoded request message.
    pub(crate) payload: Bytes,
    /// Deadline, metadata and query from the edge.
    pub(crate) admitted: Admitted,
    /// Who the call is for.
    pub(crate) client: ClientId,
}

/// Deadline and retries of `client`'s call through `binding`, as its route sets them, each
/// attempt a span of `trace`.
pub(crate) fn call_options<'a>(
    binding: &'a Binding,
    deadline: Duration,
    client: ClientId,
    trace: &'a RequestTrace,
) -> CallOptions<'a> {
    let options = &binding.method.options;
    let caller = Caller::new(client, deadline, options.timeout);
    CallOptions::for_route(&options.retry, &binding.http_method, deadline, caller)
        .traced(trace, binding.method.grpc_path.as_str())
}

/// Reads the call's body and encodes its request message from the path variables, the query the
/// edge left (without the token), and the body. The body's size is noted in the outcome as soon
/// as it is read.
pub(crate) async fn read_message<B: RequestBody>(
    call: HttpCall<'_, B>,
    outcome: &mut Outcome,
) -> Result<Message, GatewayError> {
    let HttpCall {
        runtime,
        binding,
        vars,
        request,
        admitted,
        client,
        trace: _,
    } = call;
    let payload = encode(runtime, &binding, &vars, &admitted, request, outcome).await?;
    Ok(Message {
        binding,
        payload,
        admitted,
        client,
    })
}

async fn encode<B: RequestBody>(
    runtime: &Runtime,
    binding: &Binding,
    vars: &[(&str, String)],
    admitted: &Admitted,
    request: Request<B>,
    outcome: &mut Outcome,
) -> Result<Bytes, GatewayError> {
    let query = admitted.query.as_deref();
    let body_read_timeout = runtime.config.limits.body_read_timeout;
    let route = &binding.method;
    // A content type describes a body; clients that send one on a bodiless GET or DELETE must
    // not be refused for it.
    let content_type = if has_no_body(request.body()) && !binding.raw_body {
        None
    } else {
        check_content_type(binding, request.headers())?
    };
    let limit = route.options.max_request_bytes;
    let encoding = compression::request::content_encoding(request.headers())?;
    let body = read_body(request.into_body(), limit, body_read_timeout).await?;
    outcome.request_bytes = body.len() as u64;
    let body = match encoding {
        ContentEncoding::Identity => body,
        ContentEncoding::Gzip => compression::gzip::inflate(&body, limit)
            .map_err(compression::RequestEncodingError::from)?,
    };
    let parts = RequestParts {
        path_bindings: vars,
        query,
        body: &body,
        content_type: content_type.as_deref(),
    };
    let options = &route.options;
    let message = encode_request(
        &route.input,
        &binding.body,
        &parts,
        &options.decode,
        &options.query,
    )?;
    Ok(Bytes::from(message))
}

/// JSON bodies must be `application/json` (or `+json`) in UTF-8; raw `HttpBody` bodies take any type.
/// Returns the content type for HttpBody bindings.
fn check_content_type(
    binding: &Binding,
    headers: &http::HeaderMap,
) -> Result<Option<String>, GatewayError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    if binding.raw_body {
        return Ok(value);
    }
    let Some(text) = value else { return Ok(None) };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let utf8 = parts.all(|param| match param.trim().split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    if json && utf8 {
        Ok(None)
    } else {
        Err(GatewayError::UnsupportedMediaType(text))
    }
}

/// True when the request is known to carry no body bytes (no body, or `Content-Length: 0`).
fn has_no_body<B: http_body::Body>(body: &B) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

/// Reads the whole body, refusing it early when its declared or actual size passes `limit`, and
/// giving up when it has not all arrived within `timeout` (hyper bounds only the head's reading).
async fn read_body<B: RequestBody>(
    body: B,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, GatewayError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| GatewayError::BodyReadTimeout { after: timeout })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BodyRead(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::time::Duration;

    /// A body that sends one chunk and then never ends.
    struct Stalled(bool);

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if self.0 {
                std::task::Poll::Pending
            } else {
                self.0 = true;
                std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"{")))))
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_after_the_configured_time() {
        let started = tokio::time::Instant::now();
        let result = read_body(Stalled(false), 1024, Duration::from_secs(30)).await;
        assert!(matches!(
            result,
            Err(GatewayError::BodyReadTimeout { after }) if after == Duration::from_secs(30)
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_body_is_read_before_the_timeout() {
        let body = Full::new(Bytes::from_static(b"{}"));
        let result = read_body(body, 1024, Duration::from_secs(30)).await;
        assert_eq!(result.ok(), Some(Bytes::from_static(b"{}")));
    }
}
