//! Connection idle timeout: a connection that carries no request being handled and moves no bytes
//! for `limits.idle_timeout` is closed, so a silent client (an HTTP/2 preface and nothing more, a TCP
//! connection that never speaks, a keep-alive connection left open) cannot hold it forever.
//!
//! hyper's own header-read timeout covers only HTTP/1 request heads; HTTP/2 has none, and a client
//! that answers PINGs stays "alive" forever. The check lives in the transport (`IdleIo`) because
//! that is where hyper parks while it waits for the client: its pending read also polls the idle
//! timer. A request being handled (`Activity::begin`) holds the connection open however long its
//! backend takes; a response body still streaming counts as activity through its writes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What one connection is doing: requests being handled and the time of its last byte.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` of the last read or write.
    last_ms: AtomicU64,
}

/// Held while a request is being handled; the connection is not idle meanwhile.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// A new connection's activity record.
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// Marks a request as being handled until the returned guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Handles one request with the connection marked busy from now until `handling` is done
    /// (the shape hyper's `service_fn` wants).
    pub(crate) fn serve<F: Future>(
        self: &Arc<Self>,
        handling: F,
    ) -> impl Future<Output = Result<F::Output, std::convert::Infallible>> + use<F> {
        let busy = self.begin();
        // A request's future is several KiB; boxed once here, hyper and the async blocks around
        // it move a pointer instead of copying it at every layer (~8 k instructions a request).
        let handling = Box::pin(handling);
        async move {
            let response = handling.await;
            drop(busy);
            Ok(response)
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A transport that fails its pending read once the connection has been idle for `timeout`.
pub(crate) struct IdleIo<T> {
    inner: T,
    activity: Arc<Activity>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    /// Wraps `inner`, sharing `activity` with the connection's service.
    pub(crate) fn new(inner: T, activity: Arc<Activity>, timeout: Duration) -> IdleIo<T> {
        let timer = Box::pin(tokio::time::sleep(timeout));
        IdleIo {
            inner,
            activity,
            timeout,
            timer,
        }
    }

    /// Polls the idle timer; `true` once the connection has been idle for the whole timeout.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let busy = self.activity.in_flight.load(Ordering::Relaxed) > 0;
            let due = self.activity.last() + self.timeout;
            if !busy && Instant::now() >= due {
                return true;
            }
            // Not idle yet: wait until the earliest moment it could be.
            let next = if busy {
                Instant::now() + self.timeout
            } else {
                due
            };
            self.timer.as_mut().reset(next);
        }
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.activity.touch();
                Poll::Ready(result)
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(_))) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(_))) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_idle_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let activity = Activity::new();
        let mut io = IdleIo::new(server, activity, Duration::from_secs(5));
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let err = io.read(&mut buf).await.expect_err("idle timeout");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_and_requests_in_flight_keep_a_connection_open() {
        let (mut client, server) = tokio::io::duplex(64);
        let activity = Activity::new();
        let mut io = IdleIo::new(server, activity.clone(), Duration::from_secs(5));
        let started = Instant::now();
        let mut buf = [0u8; 8];
        tokio::time::sleep(Duration::from_secs(3)).await;
        client.write_all(b"hi").await.expect("write");
        assert_eq!(io.read(&mut buf).await.expect("read"), 2);
        // A request being handled holds the connection for longer than the timeout.
        let busy = activity.begin();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            (io.read(&mut buf).await, Instant::now())
        });
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(busy);
        let (result, closed_at) = reader.await.expect("join");
        assert_eq!(
            result.expect_err("idle after the request").kind(),
            io::ErrorKind::TimedOut
        );
        // Idle counts from the end of the request: 3 s + 20 s + 5 s.
        assert_eq!(closed_at - started, Duration::from_secs(28));
    }
}
