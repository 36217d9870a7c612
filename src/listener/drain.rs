//! Draining on shutdown: the accept loop's [`Drain`] tells every open connection to finish what
//! it is doing and close, then waits until all of them have. A connection holds a [`Draining`]
//! for as long as it is open; an idle one closes at once, a busy one after its current answer.
//! (hyper-util's graceful watcher only accepts hyper's own connection types; a connection here
//! moves between an idle wait outside hyper and hyper's HTTP/1.1 connection, so it needs this.)

use tokio::sync::watch;

/// The signal side, owned by an accept loop.
#[derive(Debug)]
pub(crate) struct Drain {
    signal: watch::Sender<bool>,
}

/// One connection's view of the signal; the connection counts as open until it is dropped.
#[derive(Debug)]
pub(crate) struct Draining {
    signal: watch::Receiver<bool>,
}

impl Drain {
    /// No connection open, no shutdown yet.
    pub(crate) fn new() -> Drain {
        Drain {
            signal: watch::Sender::new(false),
        }
    }

    /// The signal for a new connection.
    pub(crate) fn watcher(&self) -> Draining {
        Draining {
            signal: self.signal.subscribe(),
        }
    }

    /// Tells every connection to close and waits until all of them have.
    pub(crate) async fn shutdown(self) {
        self.signal.send_replace(true);
        self.signal.closed().await;
    }
}

impl Draining {
    /// Completes once the accept loop drains (at once if it already does).
    pub(crate) async fn signalled(&mut self) {
        // An error means the accept loop is gone: nothing is left to wait for either.
        let _ = self.signal.wait_for(|draining| *draining).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_signals_every_connection_and_waits_until_they_are_gone() {
        let drain = Drain::new();
        let mut first = drain.watcher();
        let mut second = drain.watcher();
        let shutdown = tokio::spawn(drain.shutdown());
        first.signalled().await;
        second.signalled().await;
        drop(first);
        tokio::task::yield_now().await;
        assert!(!shutdown.is_finished(), "one connection is still open");
        drop(second);
        shutdown.await.expect("shutdown");
    }
}
