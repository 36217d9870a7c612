//! The gateway's own gRPC server reflection service (`grpc.reflection.v1` and `v1alpha`
//! `ServerReflectionInfo`), for native gRPC clients on the public listeners, after the same
//! edge rules as any gRPC call. The method is a bidi stream: a client asks, waits for the
//! answer, asks again; so each request message is answered as soon as it has arrived, by a task
//! that reads the request body while the response streams. Answers come from the snapshot the
//! call started on ([`Exposed`]: the routed services and their files only).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use prost::Message;
use tokio::sync::mpsc;

use crate::body::{BodyError, RequestBody, ResponseBody};
use crate::reflection::serve::Exposed;
use crate::reflection::wire::ReflectionRequest;
use crate::upstream::codec;

/// Largest reflection request message taken (questions are a name or two).
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Answers written ahead of a slow reader.
const QUEUE: usize = 4;

/// Starts answering the reflection stream of `request` from `exposed`.
pub(crate) fn answer<B: RequestBody>(
    exposed: Exposed,
    request: http::Request<B>,
) -> Response<ResponseBody> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(converse(exposed, request.into_body(), sender));
    let mut response = Response::new(ResponseBody::stream(Answers(receiver)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// Reads request messages and answers each, then ends the stream with its status trailers.
async fn converse<B: RequestBody>(
    exposed: Exposed,
    mut body: B,
    sender: mpsc::Sender<Frame<Bytes>>,
) {
    let mut buffer = BytesMut::new();
    let status = loop {
        match answer_buffered(&exposed, &mut buffer, &sender).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(status) => break status,
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => return,
            None if buffer.is_empty() => break (0, String::new()),
            None => break (13, "the request ended inside a message".to_owned()),
        }
    };
    let _ = sender.send(Frame::trailers(trailers(status))).await;
}

/// Answers every whole message in `buffer`; `Ok(false)` when the client has gone, `Err` with
/// the gRPC status that ends the call for a message that cannot be taken.
async fn answer_buffered(
    exposed: &Exposed,
    buffer: &mut BytesMut,
    sender: &mpsc::Sender<Frame<Bytes>>,
) -> Result<bool, (i32, String)> {
    while buffer.len() >= 5 {
        let compressed = buffer[0] != 0;
        let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        if compressed {
            return Err((
                12,
                "compressed reflection requests are not supported".to_owned(),
            ));
        }
        if length > MAX_REQUEST_BYTES {
            return Err((8, format!("request message over {MAX_REQUEST_BYTES} bytes")));
        }
        if buffer.len() < 5 + length {
            break;
        }
        buffer.advance(5);
        let message = buffer.split_to(length).freeze();
        let request = ReflectionRequest::decode(message)
            .map_err(|e| (3, format!("not a reflection request: {e}")))?;
        let response = exposed.answer(request).encode_to_vec();
        if sender
            .send(Frame::data(codec::frame(&response)))
            .await
            .is_err()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `grpc-status` (and `grpc-message`) trailers; messages here are plain ASCII.
fn trailers((code, message): (i32, String)) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(value) = HeaderValue::from_str(&message)
        && !message.is_empty()
    {
        trailers.insert("grpc-message", value);
    }
    trailers
}

/// The response body: the frames the conversation task sends.
struct Answers(mpsc::Receiver<Frame<Bytes>>);

impl Body for Answers {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}
