//! Unary calls from HTTP/JSON clients: the whole request body becomes one message, the backend's
//! one answer becomes the JSON (or `HttpBody`) response.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body_util::Full;

use super::answer::{Answer, Failure, HttpCall};
use super::outcome::{Outcome, UpstreamCall};
use super::request::{call_options, read_message};
use crate::body::RequestBody;
use crate::edge::metadata::response_headers;
use crate::error::GatewayError;
use crate::runtime::Binding;
use crate::transcode::response::decode_and_encode;

/// Reads and transcodes the request, calls the backend (with the route's retries), and
/// transcodes its answer.
pub(crate) async fn call<B: RequestBody>(call: HttpCall<'_, B>, outcome: &mut Outcome) -> Answer {
    let exchange = exchange(call, outcome).await?;
    respond(&exchange.binding, &exchange.reply, exchange.headers)
}

/// A unary call that got its one response message: what the event step reads besides the answer.
pub(crate) struct Exchange {
    /// The HTTP rule the call came through.
    pub(crate) binding: Arc<Binding>,
    /// The encoded request message sent.
    pub(crate) request: Bytes,
    /// The encoded response message received.
    pub(crate) reply: Bytes,
    /// Response headers earned (allowed backend metadata, the attempt count).
    pub(crate) headers: HeaderMap,
}

/// Reads and transcodes the request and calls the backend (with the route's retries), up to
/// its response message.
pub(crate) async fn exchange<B: RequestBody>(
    call: HttpCall<'_, B>,
    outcome: &mut Outcome,
) -> Result<Exchange, Failure> {
    let trace = call.trace;
    let message = read_message(call, outcome).await?;
    let request = message.payload.clone();
    let (binding, route) = (&message.binding, &message.binding.method);
    let options = call_options(binding, message.admitted.deadline, message.client, trace);
    let started = tokio::time::Instant::now();
    let called = route
        .upstream
        .call(
            &route.grpc_path,
            message.payload,
            message.admitted.metadata,
            &options,
        )
        .await;
    outcome.call = Some(UpstreamCall {
        endpoint: called.endpoint.as_ref().map(|e| e.authority.clone()),
        ..UpstreamCall::new(&route.upstream, started, called.attempts)
    });
    let attempts = called.attempts_header();
    let reply = called.result.map_err(|e| Failure::with(e, &attempts))?;
    let mut headers = response_headers(&reply.metadata, &route.options.headers);
    headers.extend(attempts);
    let Some(reply_message) = reply.message else {
        return Err(Failure {
            error: GatewayError::Backend(reply.status),
            headers,
        });
    };
    Ok(Exchange {
        binding: message.binding.clone(),
        request,
        reply: reply_message,
        headers,
    })
}

/// The answer to a call whose one response message arrived: transcoded, with `headers`.
#[allow(clippy::result_large_err)] // the error path is cold; `Failure` is the pipeline's one shape
pub(crate) fn respond(binding: &Binding, message: &[u8], headers: HeaderMap) -> Answer {
    let route = &binding.method;
    let response_body = binding.response_body.as_ref();
    let encoded =
        decode_and_encode(&route.output, message, response_body, &route.options.encode)
            .map_err(|e| Failure::with(GatewayError::ResponseTranscode(e.to_string()), &headers))?;
    let mut response = Response::new(Full::new(Bytes::from(encoded.body)).into());
    let content_type = HeaderValue::from_str(&encoded.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response.headers_mut().extend(headers);
    Ok(response)
}
