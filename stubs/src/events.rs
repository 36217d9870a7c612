//! Policy events for `WatchPolicies`: a broadcast of what the Governor changes, and a count of
//! the streams whose client went away before the stream ended (so tests can see that a client
//! disconnect reached the backend as a cancellation).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use crate::proto::tai::PolicyEvent;

/// Live events kept for a slow watcher before it starts missing some.
const BACKLOG: usize = 256;

/// The event broadcast and the cancellation counter of one store.
#[derive(Debug)]
pub(crate) struct Events {
    sender: broadcast::Sender<PolicyEvent>,
    cancelled: AtomicU64,
    sent: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            sender: broadcast::channel(BACKLOG).0,
            cancelled: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }
}

impl Events {
    /// Sends `event` to every open watch stream (none listening is fine).
    pub(crate) fn publish(&self, event: PolicyEvent) {
        let _ = self.sender.send(event);
    }

    /// A receiver of the events published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<PolicyEvent> {
        self.sender.subscribe()
    }

    /// Counts one stream cancelled by its client.
    pub(crate) fn note_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one server-stream message handed to tonic for sending.
    pub(crate) fn note_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Server-stream messages handed to tonic so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Streams cancelled by their client so far.
    pub(crate) fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::Relaxed)
    }
}
