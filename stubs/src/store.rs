//! The in-memory state one stub process shares between its Governor, Coordinator and Health
//! services: policies, receipt numbering, call counters, fault counters and health statuses.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::events::Events;
use crate::health::HealthControl;
use crate::registry::PolicyRegistry;

/// Shared in-memory state of one stub process.
///
/// The Governor and Coordinator of one [`crate::StubServers`] share one `Store`, so a policy
/// proposed through the Governor is visible to `Coordinator.RequestAction`, and receipt ids
/// (`rec-N`) count across both services.
#[derive(Debug, Default)]
pub struct Store {
    /// Policies and id counters; one lock because every policy RPC touches both.
    registry: Mutex<PolicyRegistry>,
    /// Calls per full method name, and calls per `x-stub-fail-key`.
    counters: Mutex<Counters>,
    /// Serving statuses reported by `grpc.health.v1.Health`.
    health: HealthControl,
    /// Policy events for `WatchPolicies`, and its cancellation count.
    events: Events,
}

/// Per-method and per-fault-key call counts.
#[derive(Debug, Default)]
struct Counters {
    calls: HashMap<String, u64>,
    fail_keys: HashMap<String, u64>,
}

impl Store {
    /// An empty store: no policies, counters at zero, every known service `SERVING`.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many calls reached `method` (e.g. `"tai.Governor/ProposePolicy"`).
    ///
    /// Every call is counted on arrival, before any injected delay or failure, so a test can
    /// see how often a client retried.
    pub fn calls(&self, method: &str) -> u64 {
        self.counters().calls.get(method).copied().unwrap_or(0)
    }

    /// The handle that sets the serving statuses reported by the health service.
    pub fn health(&self) -> HealthControl {
        self.health.clone()
    }

    /// How many server streams (`WatchPolicies`, `ExportPolicies`) ended because their client
    /// went away (cancelled the call or closed the connection) before the stream was done.
    pub fn cancelled_streams(&self) -> u64 {
        self.events.cancelled()
    }

    /// How many server-stream messages (`WatchPolicies`, `ExportPolicies`) the stub has handed
    /// to its transport so far; a stream to a client that stops reading stops growing this.
    pub fn stream_messages_sent(&self) -> u64 {
        self.events.sent()
    }

    /// The policy event broadcast.
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// Counts one call of `method`.
    pub(crate) fn record_call(&self, method: &str) {
        *self.counters().calls.entry(method.to_owned()).or_default() += 1;
    }

    /// Counts one call carrying fault key `key` and returns how many there have been, this one
    /// included.
    pub(crate) fn next_fail_key_call(&self, key: &str) -> u64 {
        let mut counters = self.counters();
        let count = counters.fail_keys.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }

    /// Locks the policy registry.
    pub(crate) fn registry(&self) -> MutexGuard<'_, PolicyRegistry> {
        // No code panics while holding the lock half-way through an update, so the state
        // behind a poisoned lock is still consistent.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
