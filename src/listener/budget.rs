//! The process-wide count of answer bytes held for clients that have not taken them, and the
//! bounds on it: what lets one connection's answer be refused because all connections together
//! hold too much.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bounds on answer bytes held for clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Over all connections.
    pub(crate) total: usize,
    /// Per connection.
    pub(crate) per_connection: usize,
}

/// Answer bytes held now, over all connections, against a [`Budget`].
#[derive(Debug)]
pub(crate) struct Held {
    budget: Budget,
    bytes: AtomicUsize,
}

impl Held {
    /// Nothing held yet, within `budget`.
    pub(crate) fn new(budget: Budget) -> Held {
        Held {
            budget,
            bytes: AtomicUsize::new(0),
        }
    }

    /// The bounds.
    pub(crate) fn budget(&self) -> Budget {
        self.budget
    }

    /// True when `bytes` more fit the process-wide bound now.
    pub(crate) fn fits(&self, bytes: usize) -> bool {
        self.bytes.load(Ordering::Relaxed) + bytes <= self.budget.total
    }

    /// Counts `bytes` more held.
    pub(crate) fn hold(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer held.
    pub(crate) fn release(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn now(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}
