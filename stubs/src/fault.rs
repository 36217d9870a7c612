//! Fault injection: reads the `x-stub-*` request metadata and runs every TAI RPC through the
//! same sequence — count the call, sleep, maybe fail, run the handler, add response headers.
//!
//! The keys are listed in the crate documentation.

use std::time::Duration;

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::{Code, Request, Response, Status};

use crate::status::parse_code;
use crate::store::Store;

/// Metadata key: sleep this many milliseconds before answering.
pub const DELAY_MS: &str = "x-stub-delay-ms";
/// Metadata key: fail with this gRPC status code (number or name).
pub const FAIL_CODE: &str = "x-stub-fail-code";
/// Metadata key: the message of an injected failure.
pub const FAIL_MESSAGE: &str = "x-stub-fail-message";
/// Metadata key: fail only the first N calls that carry the same [`FAIL_KEY`].
pub const FAIL_FIRST: &str = "x-stub-fail-first";
/// Metadata key: the counter [`FAIL_FIRST`] counts against.
pub const FAIL_KEY: &str = "x-stub-fail-key";
/// Metadata key: `name=value` pairs to add to the response headers.
pub const REPLY_HEADER: &str = "x-stub-reply-header";
/// Metadata key: streaming RPCs only — after N messages (sent; received for client streams), fail with [`FAIL_CODE`] (default
/// `UNAVAILABLE`) and [`FAIL_MESSAGE`], instead of failing before the first message.
pub const FAIL_AFTER: &str = "x-stub-fail-after";
/// Response header naming the stub service that answered (`governor` or `coordinator`).
pub const SERVICE_HEADER: &str = "x-stub-service";
/// Response header of unary calls: the caller's address (`ip:port`), which tells apart the
/// HTTP/2 connections a client spreads its calls over.
pub const PEER_HEADER: &str = "x-stub-peer";

/// Response header of unary calls: the `traceparent` the call carried (W3C trace context), so
/// tests see what the gateway sent on.
pub const TRACEPARENT_HEADER: &str = "x-stub-traceparent";

/// The message of an injected failure when the request names none.
const DEFAULT_FAIL_MESSAGE: &str = "injected failure";

/// Which stub service a call reached.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backend {
    /// The value of the `x-stub-service` response header.
    pub(crate) label: &'static str,
    /// The fully qualified gRPC service name, the prefix of [`Store::calls`] keys.
    pub(crate) service: &'static str,
}

/// Runs one unary TAI call: counts it, applies the faults its metadata asks for, then calls
/// `handler` with the request metadata and message.
///
/// The `x-stub-service` and requested reply headers go on the answer, failed or not. The
/// injected delay is an ordinary `await`: when the client goes away tonic drops this future,
/// so the sleep and the handler never run to completion for nobody.
pub(crate) async fn unary<T, R>(
    store: &Store,
    backend: Backend,
    method: &str,
    request: Request<T>,
    handler: impl FnOnce(&MetadataMap, T) -> Result<R, Status>,
) -> Result<Response<R>, Status> {
    store.record_call(&format!("{}/{method}", backend.service));
    let peer = request
        .remote_addr()
        .and_then(|addr| AsciiMetadataValue::try_from(addr.to_string()).ok());
    let traceparent = request.metadata().get("traceparent").cloned();
    let (metadata, _, message) = request.into_parts();
    let (result, reply_headers) = match FaultPlan::parse(&metadata) {
        Ok(plan) => match plan.inject(store).await {
            Ok(()) => (handler(&metadata, message), plan.reply_headers),
            Err(status) => (Err(status), plan.reply_headers),
        },
        Err(status) => (Err(status), Vec::new()),
    };
    let metadata = |map: &mut MetadataMap| {
        decorate(map, backend, &reply_headers);
        if let Some(peer) = peer {
            map.insert(PEER_HEADER, peer);
        }
        if let Some(traceparent) = traceparent.clone() {
            map.insert(TRACEPARENT_HEADER, traceparent);
        }
    };
    match result {
        Ok(reply) => {
            let mut response = Response::new(reply);
            metadata(response.metadata_mut());
            Ok(response)
        }
        Err(mut status) => {
            metadata(status.metadata_mut());
            Err(status)
        }
    }
}

/// What a server stream must do after its start: fail after N messages, and the reply headers.
#[derive(Debug)]
pub(crate) struct StreamFaults {
    /// Messages to send before failing with the status.
    pub(crate) fail_after: Option<(u64, Status)>,
    reply_headers: Vec<ReplyHeader>,
}

impl StreamFaults {
    /// Adds the service label and requested reply headers to the stream's response.
    pub(crate) fn decorate<T>(&self, response: &mut Response<T>, backend: Backend) {
        decorate(response.metadata_mut(), backend, &self.reply_headers);
    }
}

/// Starts a server-streaming TAI call: counts it, sleeps and fails as its metadata asks — except
/// that with [`FAIL_AFTER`] the failure is handed back for after the Nth message.
pub(crate) async fn start_stream(
    store: &Store,
    backend: Backend,
    method: &str,
    metadata: &MetadataMap,
) -> Result<StreamFaults, Status> {
    store.record_call(&format!("{}/{method}", backend.service));
    let started = async {
        let mut plan = FaultPlan::parse(metadata)?;
        let fail_after = match number(metadata, FAIL_AFTER)? {
            Some(n) => {
                let code = plan.code.take().unwrap_or(Code::Unavailable);
                let message = plan.message.as_deref().unwrap_or(DEFAULT_FAIL_MESSAGE);
                Some((n, Status::new(code, message)))
            }
            None => None,
        };
        plan.inject(store).await?;
        Ok(StreamFaults {
            fail_after,
            reply_headers: std::mem::take(&mut plan.reply_headers),
        })
    };
    started.await.map_err(|mut status: Status| {
        decorate(status.metadata_mut(), backend, &[]);
        status
    })
}

/// A response header pair asked for with `x-stub-reply-header`.
type ReplyHeader = (AsciiMetadataKey, AsciiMetadataValue);

/// Adds the service label and the requested reply headers to response metadata.
fn decorate(metadata: &mut MetadataMap, backend: Backend, reply_headers: &[ReplyHeader]) {
    metadata.insert(
        SERVICE_HEADER,
        AsciiMetadataValue::from_static(backend.label),
    );
    for (name, value) in reply_headers {
        metadata.append(name.clone(), value.clone());
    }
}

/// The faults one request asked for, parsed and checked before anything runs.
#[derive(Debug, Default)]
struct FaultPlan {
    delay: Option<Duration>,
    code: Option<Code>,
    message: Option<String>,
    /// How many calls with this key fail, and the key.
    fail_first: Option<(u64, String)>,
    reply_headers: Vec<ReplyHeader>,
}

impl FaultPlan {
    /// Reads the `x-stub-*` keys; a malformed value is `INVALID_ARGUMENT` naming the key,
    /// so a typo in a test fails loudly instead of silently injecting nothing.
    fn parse(metadata: &MetadataMap) -> Result<Self, Status> {
        let mut plan = FaultPlan {
            delay: number(metadata, DELAY_MS)?.map(Duration::from_millis),
            message: text(metadata, FAIL_MESSAGE)?.map(str::to_owned),
            ..Default::default()
        };
        if let Some(code) = text(metadata, FAIL_CODE)? {
            plan.code = Some(parse_code(code).ok_or_else(|| invalid(FAIL_CODE, code))?);
        }
        if let Some(count) = number(metadata, FAIL_FIRST)? {
            let key = text(metadata, FAIL_KEY)?.ok_or_else(|| {
                Status::invalid_argument(format!("{FAIL_FIRST} needs a {FAIL_KEY} header"))
            })?;
            plan.fail_first = Some((count, key.to_owned()));
        }
        for value in metadata.get_all(REPLY_HEADER) {
            let value = value
                .to_str()
                .map_err(|_| invalid(REPLY_HEADER, "non-ASCII"))?;
            for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                plan.reply_headers.push(reply_header(pair)?);
            }
        }
        Ok(plan)
    }

    /// Sleeps, then fails if asked to.
    ///
    /// With `x-stub-fail-first` only the first N calls of its key fail (with
    /// `x-stub-fail-code`, by default `UNAVAILABLE`); without it `x-stub-fail-code` fails
    /// every call.
    async fn inject(&self, store: &Store) -> Result<(), Status> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let fail = match &self.fail_first {
            Some((count, key)) => store.next_fail_key_call(key) <= *count,
            None => self.code.is_some(),
        };
        if fail {
            let message = self.message.as_deref().unwrap_or(DEFAULT_FAIL_MESSAGE);
            return Err(Status::new(self.code.unwrap_or(Code::Unavailable), message));
        }
        Ok(())
    }
}

/// The first value of `key` as text, if present.
fn text<'a>(metadata: &'a MetadataMap, key: &str) -> Result<Option<&'a str>, Status> {
    metadata
        .get(key)
        .map(|v| v.to_str().map_err(|_| invalid(key, "non-ASCII")))
        .transpose()
}

/// The first value of `key` as an unsigned number, if present.
fn number(metadata: &MetadataMap, key: &str) -> Result<Option<u64>, Status> {
    text(metadata, key)?
        .map(|v| v.trim().parse().map_err(|_| invalid(key, v)))
        .transpose()
}

/// Parses one `name=value` reply header.
fn reply_header(pair: &str) -> Result<ReplyHeader, Status> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| invalid(REPLY_HEADER, pair))?;
    let name = AsciiMetadataKey::from_bytes(name.trim().as_bytes())
        .map_err(|_| invalid(REPLY_HEADER, pair))?;
    let value = value
        .trim()
        .parse::<AsciiMetadataValue>()
        .map_err(|_| invalid(REPLY_HEADER, pair))?;
    Ok((name, value))
}

fn invalid(key: &str, value: &str) -> Status {
    Status::invalid_argument(format!("invalid {key} header: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (key, value) in pairs {
            map.append(*key, AsciiMetadataValue::from_static(value));
        }
        map
    }

    #[test]
    fn reply_headers_may_repeat_and_be_comma_separated() {
        let map = metadata(&[(REPLY_HEADER, "a=1, b = 2"), (REPLY_HEADER, "C=3")]);
        let plan = FaultPlan::parse(&map).expect("valid");
        let pairs: Vec<(String, String)> = plan
            .reply_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("ascii").to_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into())
            ]
        );
    }

    #[test]
    fn malformed_fault_headers_are_invalid_argument() {
        for pairs in [
            [(DELAY_MS, "soon")],
            [(FAIL_CODE, "MAYBE")],
            [(FAIL_FIRST, "2")],
            [(REPLY_HEADER, "no-equals-sign")],
            [(REPLY_HEADER, "x-bin=AAAA")],
        ] {
            let err = FaultPlan::parse(&metadata(&pairs)).expect_err("malformed");
            assert_eq!(err.code(), Code::InvalidArgument, "{pairs:?}");
        }
    }

    #[tokio::test]
    async fn fail_first_counts_each_key_separately() {
        let store = Store::new();
        let plan = |key: &'static str| {
            FaultPlan::parse(&metadata(&[(FAIL_FIRST, "1"), (FAIL_KEY, key)])).expect("valid")
        };
        assert_eq!(
            plan("a").inject(&store).await.expect_err("first a").code(),
            Code::Unavailable
        );
        assert_eq!(
            plan("b").inject(&store).await.expect_err("first b").code(),
            Code::Unavailable
        );
        assert!(plan("a").inject(&store).await.is_ok());
    }
}
