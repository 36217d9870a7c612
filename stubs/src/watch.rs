//! The Governor's server streams: `WatchPolicies` (policy events, optionally after a replay of
//! the existing policies) and `ExportPolicies` (every policy as a text chunk).
//!
//! Each stream is fed by a task through a one-slot channel, so a slow reader holds the task
//! back instead of growing a queue; when the client goes away the channel closes and the task
//! counts a cancellation in the [`Store`].

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::fault::{Backend, StreamFaults, start_stream};
use crate::proto::google::api::HttpBody;
use crate::proto::tai::{
    ExportPoliciesRequest, ListPoliciesRequest, Policy, PolicyEvent, PolicyEventKind,
    WatchPoliciesRequest,
};
use crate::store::Store;

/// A server stream of `T`.
pub(crate) type Stream<T> = ReceiverStream<Result<T, Status>>;

/// `WatchPolicies`: replayed policies (when asked), then live events, up to `max_events`.
pub(crate) async fn watch(
    store: Arc<Store>,
    backend: Backend,
    request: Request<WatchPoliciesRequest>,
) -> Result<Response<Stream<PolicyEvent>>, Status> {
    let (metadata, _, request) = request.into_parts();
    let faults = start_stream(&store, backend, "WatchPolicies", &metadata).await?;
    // Subscribe before taking the replay, so no event falls between the two.
    let live = store.events().subscribe();
    let replay = if request.replay {
        store.registry().list(&ListPoliciesRequest::default())
    } else {
        Vec::new()
    };
    let limit = u64::try_from(request.max_events).ok().filter(|&n| n > 0);
    let (sender, receiver) = mpsc::channel(1);
    let mut response = Response::new(ReceiverStream::new(receiver));
    faults.decorate(&mut response, backend);
    let synthetic = u64::try_from(request.synthetic_events).unwrap_or(0);
    let events = Events {
        replay: replay.into_iter(),
        live,
        synthetic: (synthetic > 0).then_some((0, synthetic)),
    };
    tokio::spawn(feed(store, sender, events, limit, faults));
    Ok(response)
}

/// `ExportPolicies`: every policy of the type (all when empty) as one `text/plain` chunk.
pub(crate) async fn export(
    store: Arc<Store>,
    backend: Backend,
    request: Request<ExportPoliciesRequest>,
) -> Result<Response<Stream<HttpBody>>, Status> {
    let (metadata, _, request) = request.into_parts();
    let faults = start_stream(&store, backend, "ExportPolicies", &metadata).await?;
    let policies = store.registry().list(&ListPoliciesRequest {
        policy_type: request.policy_type,
        page_size: 0,
    });
    let (sender, receiver) = mpsc::channel(1);
    let mut response = Response::new(ReceiverStream::new(receiver));
    faults.decorate(&mut response, backend);
    let chunks = policies.into_iter().map(|policy| HttpBody {
        content_type: "text/plain; charset=utf-8".to_owned(),
        data: crate::governor::render(&policy).into_bytes(),
        extensions: Vec::new(),
    });
    tokio::spawn(feed(store, sender, chunks, None, faults));
    Ok(response)
}

/// Replayed policies first, then the live broadcast.
struct Events {
    replay: std::vec::IntoIter<Policy>,
    live: broadcast::Receiver<PolicyEvent>,
    /// Generated events: (made so far, how many).
    synthetic: Option<(u64, u64)>,
}

/// A source of stream messages; `None` ends the stream.
trait Source<T>: Send {
    fn next(&mut self) -> impl Future<Output = Option<T>> + Send;
}

impl Source<PolicyEvent> for Events {
    async fn next(&mut self) -> Option<PolicyEvent> {
        if let Some(policy) = Iterator::next(&mut self.replay) {
            return Some(PolicyEvent {
                kind: PolicyEventKind::Existing.into(),
                policy: Some(policy),
            });
        }
        if let Some((made, total)) = &mut self.synthetic {
            if *made == *total {
                return None;
            }
            *made += 1;
            return Some(PolicyEvent {
                kind: PolicyEventKind::Proposed.into(),
                policy: Some(Policy {
                    id: format!("syn-{made}"),
                    policy_name: "x".repeat(1024),
                    ..Default::default()
                }),
            });
        }
        loop {
            match self.live.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl<T: Send, I: Iterator<Item = T> + Send> Source<T> for I {
    async fn next(&mut self) -> Option<T> {
        Iterator::next(self)
    }
}

/// Sends messages from `source` until it ends, `limit` is reached, the injected failure is due,
/// or the client goes away (counted as a cancellation).
async fn feed<T: Send, S: Source<T>>(
    store: Arc<Store>,
    sender: mpsc::Sender<Result<T, Status>>,
    mut source: S,
    limit: Option<u64>,
    faults: StreamFaults,
) {
    let mut sent = 0u64;
    loop {
        if limit.is_some_and(|n| sent >= n) {
            return;
        }
        if let Some((after, status)) = &faults.fail_after
            && sent >= *after
        {
            let _ = sender.send(Err(status.clone())).await;
            return;
        }
        let message = tokio::select! {
            () = sender.closed() => {
                store.events().note_cancelled();
                return;
            }
            message = source.next() => match message {
                Some(message) => message,
                None => return,
            },
        };
        if sender.send(Ok(message)).await.is_err() {
            store.events().note_cancelled();
            return;
        }
        store.events().note_sent();
        sent += 1;
    }
}
