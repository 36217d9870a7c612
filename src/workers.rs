//! Worker threads, the way Envoy and nginx scale: each worker runs its own single-threaded tokio
//! runtime, the accept loops hand every new connection to one worker (round robin), and that
//! connection is served on that worker from its first byte to its last, together with the
//! upstream HTTP/2 connections its requests use (one per endpoint per worker, see
//! [`slot`]).
//!
//! Why: with one work-stealing runtime, a request read on one thread and the upstream connection
//! polled on another wake each other across threads and contend for h2's stream lock on every
//! call, which costs more CPU than the transcoding (benches/RESULTS.md). Within one worker nothing
//! crosses threads.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// 1 + this thread's worker index on worker threads; 0 on every other thread.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// How often a worker hands the memory it freed back to the system.
const RETURN_MEMORY_EVERY: Duration = Duration::from_secs(1);

/// Most upstream connection slots any worker set of this process has asked for.
static SLOTS: AtomicUsize = AtomicUsize::new(1);

/// This thread's upstream connection slot: 0 off the workers, 1 + the worker index on them.
pub fn slot() -> usize {
    SLOT.with(Cell::get)
}

/// How many upstream connection slots an endpoint keeps: one per worker plus one for other
/// threads (health checks, tests calling the pipeline directly).
pub fn slots() -> usize {
    SLOTS.load(Ordering::Relaxed)
}

/// The worker count `auto` stands for: one per CPU this process may use.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A running set of worker threads.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping these stops the workers (their runtimes cancel what is still running).
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `count` worker threads (at least one).
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let count = count.max(1);
        SLOTS.fetch_max(count + 1, Ordering::Relaxed);
        let mut handles = Vec::with_capacity(count);
        let mut stop = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            stop.push(stop_tx);
            std::thread::Builder::new()
                .name(format!("tai-worker-{index}"))
                .spawn(move || {
                    SLOT.with(|slot| slot.set(index + 1));
                    runtime.spawn(return_memory_periodically());
                    // Either a stop or the sender's drop ends the worker.
                    let _ = runtime.block_on(stop_rx);
                })?;
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            _stop: stop,
        })
    }

    /// Number of workers.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.handles.len()
    }

    /// Moves an accepted connection to the next worker: its socket is registered with that
    /// worker's I/O driver, and the returned handle is where its tasks must run (enter it while
    /// building timers for the connection, spawn the connection on it). `None` (logged) when the
    /// socket cannot be moved; the connection (from `peer`) is then closed.
    pub fn adopt(&self, stream: TcpStream, peer: SocketAddr) -> Option<(TcpStream, Handle)> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        let handle = self.handles[index].clone();
        let moved = stream.into_std().and_then(|socket| {
            let _entered = handle.enter();
            TcpStream::from_std(socket)
        });
        match moved {
            Ok(stream) => Some((stream, handle)),
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "cannot hand the connection to a worker");
                None
            }
        }
    }
}

/// Calls [`return_freed_memory`] on this worker every [`RETURN_MEMORY_EVERY`].
async fn return_memory_periodically() {
    let mut ticks = tokio::time::interval(RETURN_MEMORY_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        return_freed_memory();
    }
}

/// Hands this thread's freed allocator pages back to the system once mimalloc's purge delay has
/// passed for them. mimalloc does that only inside its own calls on the thread that owns the
/// pages, and a worker whose connections have all gone idle makes none: 10,000 idle HTTP/1.1
/// connections kept ~100 MB that way (benches/RESULTS.md, issue 14). A few microseconds a second
/// on a busy worker; `MIMALLOC_PURGE_DELAY=0` would instead purge on every free, which costs
/// 6–10 µs per request under load.
fn return_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers and touches only the calling thread's own heap (an
    // empty one when mimalloc is not the global allocator, as in tests).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn adopted_connections_are_served_on_worker_threads_in_turn() {
        let workers = Workers::start(2).expect("workers");
        assert_eq!(workers.len(), 2);
        assert!(slots() >= 3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let _client = TcpStream::connect(addr).await.expect("connect");
            let (stream, peer) = listener.accept().await.expect("accept");
            let (stream, handle) = workers.adopt(stream, peer).expect("adopted");
            let served = handle
                .spawn(async move {
                    // The socket works on the worker's own driver.
                    stream.peer_addr().expect("peer");
                    (slot(), std::thread::current().name().map(str::to_owned))
                })
                .await
                .expect("worker task");
            seen.push(served);
        }
        assert_eq!(seen[0], (1, Some("tai-worker-0".to_owned())));
        assert_eq!(seen[1], (2, Some("tai-worker-1".to_owned())));
        assert_eq!(seen[2], (1, Some("tai-worker-0".to_owned())));
        assert_eq!(slot(), 0, "the test's own thread is not a worker");
    }
}
