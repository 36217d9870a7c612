//! One client connection's state, shared by its transport watchdog and the
//! requests it carries, so that one slow or hostile client costs bounded memory and time:
//!
//! - **idle**: no request being handled and no answer being delivered for `idle_timeout` closes
//!   the connection. Bytes alone do not count (HTTP/2 PINGs keep nothing open).
//! - **head**: a request head that started arriving must be complete within
//!   `header_read_timeout` (HTTP/1.1 from its first byte; HTTP/2: a half-received frame or an
//!   unfinished header block).
//! - **write**: answer bytes the client has not taken any of for `write_timeout` close the
//!   connection (a zero-window HTTP/2 client, an HTTP/1.1 socket that is never read), which
//!   drops its upstream streams and frees what they hold.
//! - **held answer bytes**: every answer's bytes are held for the client from the moment it is
//!   handed over until they are written to its socket (HTTP/2 and HTTP/1.1 buffer them in
//!   between, out of sight of the answer's body); they count against a per-connection and a
//!   process-wide budget, and a large answer that would pass either is refused (503) instead.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame};
use tokio::time::Instant;

use super::budget::Held;
use crate::body::{BodyError, FrameSource, Frames, Polled, ResponseBody};

/// Sentinel for "no time recorded".
const NEVER: u64 = u64::MAX;

/// Answers up to this size are never refused for the budget nor tracked: they cost little, and
/// the hot path of small JSON answers stays as cheap as before.
pub const SMALL_ANSWER: usize = 64 * 1024;

/// The timeouts a connection's watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// No request and no answer in progress for this long: closed.
    pub(crate) idle: Duration,
    /// A request head half-received for this long: closed.
    pub(crate) head: Duration,
    /// An answer not taken by the client for this long: closed.
    pub(crate) write: Duration,
}

/// What one connection is doing.
#[derive(Debug)]
pub struct Connection {
    epoch: Instant,
    peer: SocketAddr,
    timeouts: Timeouts,
    /// Requests being handled and answers being delivered.
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last request start or end, or answer progress.
    last_active_ms: AtomicU64,
    /// Since when a request head has been half-received (`NEVER`: none is).
    head_since_ms: AtomicU64,
    /// Streamed answers waiting for the client to take their next bytes: (id, since when).
    waiting: Mutex<Vec<(u64, u64)>>,
    next_answer: AtomicU64,
    /// Answer bytes handed over (or reserved) and not yet written to the socket.
    held: AtomicUsize,
    /// Milliseconds since `epoch` of the last socket write, or of `held` becoming non-zero.
    last_write_ms: AtomicU64,
    /// Asked to close, to make room for a new connection.
    evicted: AtomicBool,
    /// The transport's read waker, to act on an eviction at once.
    waker: Mutex<Option<Waker>>,
    /// The process-wide count of held answer bytes.
    all_held: Arc<Held>,
}

/// Why a connection must close now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Nothing in progress for the idle timeout.
    Idle,
    /// A request head was not completed in time.
    Head,
    /// The client took none of an answer's bytes in time.
    Write,
    /// Closed to make room for a new connection.
    Evicted,
}

impl Expired {
    /// How the transport reports it.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Expired::Idle => "connection idle timeout",
            Expired::Head => "request head not received within header_read_timeout",
            Expired::Write => "client took no answer bytes within write_timeout",
            Expired::Evicted => "idle connection closed to make room for a new one",
        }
    }
}

impl Connection {
    /// A new connection from `peer`, its held answer bytes counted in `all_held` too.
    pub(crate) fn new(peer: SocketAddr, timeouts: Timeouts, all_held: Arc<Held>) -> Connection {
        Connection {
            epoch: Instant::now(),
            peer,
            timeouts,
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(NEVER),
            waiting: Mutex::new(Vec::new()),
            next_answer: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            last_write_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
            all_held,
        }
    }

    /// The client's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn touch(&self) {
        self.last_active_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Marks a request as being handled until the returned guard drops; its head is complete.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.head_since_ms.store(NEVER, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    /// Handles one request with the connection busy from now until `handling` is done (the
    /// shape hyper's `service_fn` wants).
    pub(crate) fn serve<F: std::future::Future>(self: &Arc<Self>, handling: F) -> Serving<F> {
        Serving {
            busy: Some(self.begin()),
            // A request's future is several KiB; boxed once here, hyper and the async blocks
            // around it move a pointer instead of copying it at every layer (~8 k instructions a
            // request).
            handling: Box::pin(handling),
        }
    }

    /// True while nothing is being handled or delivered (the next bytes start a request head).
    pub(crate) fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// Notes whether a request head is half-received now.
    pub(crate) fn head_pending(&self, pending: bool) {
        let since = self.head_since_ms.load(Ordering::Relaxed);
        if pending && since == NEVER {
            self.head_since_ms.store(self.now_ms(), Ordering::Relaxed);
        } else if !pending && since != NEVER {
            self.head_since_ms.store(NEVER, Ordering::Relaxed);
        }
    }

    /// True while a request head is half-received (none dispatched since its first byte).
    pub(crate) fn is_head_pending(&self) -> bool {
        self.head_since_ms.load(Ordering::Relaxed) != NEVER
    }

    /// Asks the connection to close as soon as its transport is polled (woken now).
    pub(crate) fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// True once asked to close to make room.
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Where the transport parks: woken on eviction.
    pub(crate) fn park(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// Since when the connection has been idle, if it is (for the table's eviction choice).
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        let quiet = self.is_quiet() && self.held.load(Ordering::Relaxed) == 0;
        quiet.then(|| self.at(self.last_active_ms.load(Ordering::Relaxed)))
    }

    /// When an idle connection has been idle for `after` (its HTTP/1.1 buffers can then be let
    /// go): `None` while anything is in progress, a head half-received included.
    pub(crate) fn idle_for(&self, after: Duration) -> Option<Instant> {
        if self.is_head_pending() {
            return None;
        }
        self.idle_since().map(|since| since + after)
    }

    /// Why the connection must close now, if it must; else the next moment it could have to.
    pub(crate) fn check(&self) -> Result<Instant, Expired> {
        if self.evicted.load(Ordering::Relaxed) {
            return Err(Expired::Evicted);
        }
        let now = Instant::now();
        let mut next = now + self.timeouts.idle;
        let head = self.head_since_ms.load(Ordering::Relaxed);
        if head != NEVER {
            let due = self.at(head) + self.timeouts.head;
            if now >= due {
                return Err(Expired::Head);
            }
            next = next.min(due);
        }
        let stalled = self.oldest_waiting().or_else(|| {
            (self.held.load(Ordering::Relaxed) > 0)
                .then(|| self.last_write_ms.load(Ordering::Relaxed))
        });
        if let Some(since) = stalled {
            let due = self.at(since) + self.timeouts.write;
            if now >= due {
                return Err(Expired::Write);
            }
            next = next.min(due);
        }
        if let Some(idle) = self.idle_since() {
            let due = idle + self.timeouts.idle;
            if now >= due {
                return Err(Expired::Idle);
            }
            next = next.min(due);
        }
        Ok(next)
    }

    fn oldest_waiting(&self) -> Option<u64> {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.iter().map(|(_, since)| *since).min()
    }

    /// Holds `bytes` of answers for the client until they are written.
    fn hold(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.all_held.hold(bytes);
        if self.held.fetch_add(bytes, Ordering::Relaxed) == 0 {
            // The write clock starts when bytes start waiting.
            self.last_write_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// Lets go of up to `bytes` held bytes (written to the socket, or never to be sent).
    fn release(&self, bytes: usize) {
        let update = |held: usize| Some(held - held.min(bytes));
        if let Ok(before) = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, update)
        {
            self.all_held.release(before.min(bytes));
        }
    }

    /// The transport wrote `bytes` to the client's socket.
    pub(crate) fn wrote(&self, bytes: usize) {
        if bytes > 0 && self.held.load(Ordering::Relaxed) > 0 {
            self.release(bytes);
            self.last_write_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// Admits an answer of `size` bytes, refused when it would pass this connection's or the
    /// process' budget of held answer bytes.
    fn admit(&self, size: usize) -> Result<(), Refused> {
        let limits = self.all_held.budget();
        if self.held.load(Ordering::Relaxed) + size > limits.per_connection {
            return Err(Refused::Connection(limits.per_connection));
        }
        if !self.all_held.fits(size) {
            return Err(Refused::Process(limits.total));
        }
        Ok(())
    }

    /// Starts delivering an answer: the connection is busy until it ends.
    fn deliver(self: &Arc<Self>) -> Delivery {
        Delivery {
            connection: self.clone(),
            id: self.next_answer.fetch_add(1, Ordering::Relaxed),
            _busy: self.begin(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Bytes never written leave the process-wide budget with their connection.
        self.all_held.release(*self.held.get_mut());
    }
}

/// An answer refused because too many answer bytes are held already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This connection's budget (the limit in bytes).
    #[error(
        "answer refused: this connection already has more than {0} bytes of answers it has not read; read them first"
    )]
    Connection(usize),
    /// The process-wide budget (the limit in bytes).
    #[error(
        "answer refused: the gateway holds {0} bytes of answers clients have not read; try again shortly"
    )]
    Process(usize),
}

/// Held while a request is being handled; the connection is not idle meanwhile.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Connection>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request being handled ([`Connection::serve`]): the connection is busy until it is done.
/// `Unpin`, so that hyper's HTTP/1.1 connection can be taken apart between requests.
#[derive(Debug)]
pub(crate) struct Serving<F> {
    handling: Pin<Box<F>>,
    busy: Option<Busy>,
}

impl<F: std::future::Future> std::future::Future for Serving<F> {
    type Output = Result<F::Output, std::convert::Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = std::task::ready!(self.handling.as_mut().poll(cx));
        self.busy = None;
        Poll::Ready(Ok(answer))
    }
}

/// One answer being delivered: keeps the connection busy and, for a stream, tracks whether it
/// waits for the client.
#[derive(Debug)]
pub struct Delivery {
    connection: Arc<Connection>,
    id: u64,
    _busy: Busy,
}

impl Delivery {
    /// The stream has bytes ready for the client (`true`) or waits for its source.
    pub(crate) fn waiting(&self, for_client: bool) {
        let now = self.connection.now_ms();
        let mut waiting = self
            .connection
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match waiting.iter().position(|(id, _)| *id == self.id) {
            Some(at) if !for_client => {
                waiting.swap_remove(at);
            }
            Some(at) => waiting[at].1 = now,
            None if for_client => waiting.push((self.id, now)),
            None => {}
        }
        drop(waiting);
        self.connection.touch();
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.waiting(false);
    }
}

/// Bytes a held answer yields per poll: the client's pace, not the answer's size, decides how
/// much the HTTP layer buffers.
pub(crate) const CHUNK: usize = 64 * 1024;

impl Connection {
    /// Hands an answer over for delivery on this connection. Streams and answers larger than
    /// [`SMALL_ANSWER`] are tracked (write timeout, held bytes); a large answer that would pass
    /// a budget is refused. Small whole answers pass untouched.
    pub fn deliver_response(
        self: &Arc<Self>,
        response: Response<ResponseBody>,
    ) -> Result<Response<ResponseBody>, Refused> {
        let (parts, body) = response.into_parts();
        let delivered = if body.is_stream() {
            let delivery = self.deliver();
            // Nothing taken yet: a stream waits for the client from the start.
            delivery.waiting(true);
            Delivered::Stream(body, delivery)
        } else {
            let size = usize::try_from(body.size_hint().exact().unwrap_or(0)).unwrap_or(usize::MAX);
            if size <= SMALL_ANSWER {
                self.hold(size);
                return Ok(Response::from_parts(parts, body));
            }
            self.admit(size)?;
            self.hold(size);
            let bytes = body.into_whole().unwrap_or_default();
            Delivered::Whole(bytes, self.deliver())
        };
        Ok(Response::from_parts(
            parts,
            ResponseBody::stream(Frames(delivered)),
        ))
    }
}

/// An answer being delivered, as the client takes it.
#[derive(Debug)]
enum Delivered {
    /// A whole answer held in memory (all of it counted as held from the start), handed out a
    /// chunk at a time.
    Whole(Bytes, Delivery),
    /// A streamed answer.
    Stream(ResponseBody, Delivery),
}

impl Drop for Delivered {
    fn drop(&mut self) {
        // An answer ended early (the client went away): its unsent bytes are not held.
        if let Delivered::Whole(rest, delivery) = self {
            delivery.connection.release(rest.len());
        }
    }
}

impl FrameSource for Delivered {
    type Error = BodyError;

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Polled<BodyError> {
        match self {
            Delivered::Whole(rest, _) => {
                if rest.is_empty() {
                    return Poll::Ready(None);
                }
                let chunk = rest.split_to(rest.len().min(CHUNK));
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Delivered::Stream(body, delivery) => {
                let polled = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    let size = frame.data_ref().map_or(0, |data| data.len());
                    delivery.connection.hold(size);
                }
                delivery.waiting(matches!(polled, Poll::Ready(Some(Ok(_)))));
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Delivered::Whole(rest, _) => rest.is_empty(),
            Delivered::Stream(body, _) => body.is_end_stream(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::budget::Budget;

    fn connection(budget: Budget) -> Arc<Connection> {
        let all_held = Arc::new(Held::new(budget));
        let timeouts = Timeouts {
            idle: Duration::from_secs(300),
            head: Duration::from_secs(10),
            write: Duration::from_secs(30),
        };
        Arc::new(Connection::new(
            "127.0.0.1:1".parse().expect("addr"),
            timeouts,
            all_held,
        ))
    }

    fn budget() -> Budget {
        Budget {
            total: 1000,
            per_connection: 600,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_timeout_and_a_request_holds_it() {
        let conn = connection(budget());
        assert!(conn.check().is_ok());
        let busy = conn.begin();
        tokio::time::advance(Duration::from_secs(400)).await;
        assert!(conn.check().is_ok(), "a request in flight is not idle");
        drop(busy);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(conn.check().is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(conn.check(), Err(Expired::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_received_head_expires_after_the_head_timeout() {
        let conn = connection(budget());
        conn.head_pending(true);
        tokio::time::advance(Duration::from_secs(9)).await;
        conn.head_pending(true);
        assert!(
            conn.check().is_ok(),
            "more bytes do not restart the head clock"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(conn.check(), Err(Expired::Head));
        conn.head_pending(false);
        assert!(conn.check().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_the_client_does_not_take_expires_after_the_write_timeout() {
        let conn = connection(budget());
        let answer = conn.deliver();
        answer.waiting(true);
        tokio::time::advance(Duration::from_secs(20)).await;
        answer.waiting(true);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(
            conn.check().is_ok(),
            "taking bytes restarts the write clock"
        );
        answer.waiting(false);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            conn.check().is_ok(),
            "a stream waiting for its source is not stalled"
        );
        answer.waiting(true);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(conn.check(), Err(Expired::Write));
    }

    #[tokio::test(start_paused = true)]
    async fn held_bytes_the_socket_does_not_take_expire_after_the_write_timeout() {
        let conn = connection(budget());
        conn.hold(300);
        tokio::time::advance(Duration::from_secs(25)).await;
        conn.wrote(100);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(conn.check().is_ok(), "a write restarts the write clock");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(conn.check(), Err(Expired::Write));
        conn.wrote(500);
        assert!(conn.check().is_ok(), "nothing held: nothing stalled");
    }

    #[tokio::test(start_paused = true)]
    async fn held_answer_bytes_are_bounded_per_connection_and_per_process() {
        let first = connection(budget());
        assert!(first.admit(500).is_ok());
        first.hold(500);
        assert_eq!(first.admit(200), Err(Refused::Connection(600)));
        let second = Arc::new(Connection::new(
            "127.0.0.1:2".parse().expect("addr"),
            first.timeouts,
            first.all_held.clone(),
        ));
        second.hold(400);
        assert_eq!(second.admit(150), Err(Refused::Process(1000)));
        second.wrote(300);
        assert!(second.admit(150).is_ok(), "written bytes are released");
        drop(first);
        assert_eq!(second.all_held.now(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn an_evicted_connection_expires_at_once() {
        let conn = connection(budget());
        conn.evict();
        assert_eq!(conn.check(), Err(Expired::Evicted));
    }
}
