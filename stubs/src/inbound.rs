//! The Governor's client-streaming and bidirectional RPCs: `ProposePolicies` (every policy
//! sent is proposed; one answer at the end) and `EchoStream` (every message answered as it
//! arrives, with the request metadata the stub saw).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::fault::{Backend, start_stream};
use crate::proto::google::api::HttpBody;
use crate::proto::tai::{
    EchoMessage, Policy, PolicyEventKind, ProposePoliciesResponse, UploadSummary,
};
use crate::store::Store;
use crate::watch::Stream;

/// `ProposePolicies`: proposes each policy as it arrives; the first invalid one fails the call.
pub(crate) async fn propose_all(
    store: Arc<Store>,
    backend: Backend,
    request: Request<Streaming<Policy>>,
) -> Result<Response<ProposePoliciesResponse>, Status> {
    let (metadata, _, mut policies) = request.into_parts();
    let faults = start_stream(&store, backend, "ProposePolicies", &metadata).await?;
    let mut receipts = Vec::new();
    while let Some(policy) = policies.message().await? {
        if let Some((after, status)) = &faults.fail_after
            && receipts.len() as u64 >= *after
        {
            return Err(status.clone());
        }
        let mut registry = store.registry();
        let receipt = registry.propose(policy)?;
        let policy = registry.get(&receipt.policy_id)?;
        drop(registry);
        crate::governor::publish(&store, PolicyEventKind::Proposed, policy);
        receipts.push(receipt);
    }
    let mut response = Response::new(ProposePoliciesResponse { receipts });
    faults.decorate(&mut response, backend);
    Ok(response)
}

/// `EchoStream`: each message back as it arrives, `received_metadata` filled in.
pub(crate) async fn echo_stream(
    store: Arc<Store>,
    backend: Backend,
    request: Request<Streaming<EchoMessage>>,
) -> Result<Response<Stream<EchoMessage>>, Status> {
    let (metadata, _, mut messages) = request.into_parts();
    let faults = start_stream(&store, backend, "EchoStream", &metadata).await?;
    let seen = crate::governor::ascii_metadata(&metadata);
    let (sender, receiver) = mpsc::channel(1);
    let mut response = Response::new(ReceiverStream::new(receiver));
    faults.decorate(&mut response, backend);
    tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            if let Some((after, status)) = &faults.fail_after
                && sent >= *after
            {
                let _ = sender.send(Err(status.clone())).await;
                return;
            }
            let next = tokio::select! {
                () = sender.closed() => {
                    store.events().note_cancelled();
                    return;
                }
                next = messages.message() => next,
            };
            let reply = match next {
                Ok(Some(mut message)) => {
                    message.received_metadata = seen.clone();
                    Ok(message)
                }
                Ok(None) => return,
                Err(status) => Err(status),
            };
            let failed = reply.is_err();
            if sender.send(reply).await.is_err() {
                store.events().note_cancelled();
                return;
            }
            if failed {
                return;
            }
            sent += 1;
        }
    });
    Ok(response)
}

/// `UploadPolicyBundle`: counts the chunks and bytes of a raw upload.
pub(crate) async fn upload(
    store: Arc<Store>,
    backend: Backend,
    request: Request<Streaming<HttpBody>>,
) -> Result<Response<UploadSummary>, Status> {
    let (metadata, _, mut chunks) = request.into_parts();
    let faults = start_stream(&store, backend, "UploadPolicyBundle", &metadata).await?;
    let mut summary = UploadSummary::default();
    let mut data = Vec::new();
    while let Some(chunk) = chunks.message().await? {
        if summary.chunks == 0 {
            summary.content_type = chunk.content_type;
        }
        summary.chunks += 1;
        data.extend_from_slice(&chunk.data);
    }
    summary.bytes = data.len() as i64;
    summary.text = String::from_utf8(data).unwrap_or_default();
    let mut response = Response::new(summary);
    faults.decorate(&mut response, backend);
    Ok(response)
}
