//! The transport watchdog: wraps a connection's socket (after TLS, so it sees what hyper sees)
//! and fails its pending read or write once the connection's [`Connection::check`] says it must
//! close — idle, a request head not completed in time, an answer the client does not take, or
//! evicted to make room. hyper parks in the transport while it waits for the client, so that is
//! where the clock is polled; a failed read or write makes hyper close the connection.
//!
//! It also watches what the client sends, to know when a request head is half-received: for
//! HTTP/1.1, any byte that arrives while nothing is in progress starts a head (cleared when the
//! request is dispatched); for HTTP/2, [`FrameReader`] follows the frames. Bytes never count as
//! activity by themselves, so PINGs or a trickled head cannot keep a connection alive.
//!
//! On the way out it replaces hyper's own empty refusal of an unparsable HTTP/1.1 head (400, 414,
//! 431) with the gateway's JSON error ([`refusal`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::connection::{Connection, Expired};
use super::h2frames::{FrameReader, PREFACE};
use super::refusal;
use crate::error::GatewayError;

/// What the client's bytes turned out to be.
#[derive(Debug)]
enum Sniffed {
    /// Not known yet: this many bytes matched the HTTP/2 preface so far.
    Unknown(usize),
    /// HTTP/1.x.
    Http1,
    /// HTTP/2, followed frame by frame.
    Http2(Box<FrameReader>),
}

/// A transport that closes its connection when the connection's watchdog says so.
pub(crate) struct Watched<T> {
    inner: T,
    connection: Arc<Connection>,
    timer: Pin<Box<Sleep>>,
    sniffed: Sniffed,
    /// hyper's own refusal of an HTTP/1.1 head being replaced by the gateway's ([`refusal`]):
    /// the bytes of ours still to write, and how many of hyper's to report written after them.
    replacing: Option<(Bytes, usize)>,
}

impl<T> Watched<T> {
    /// Wraps `inner`, the transport of `connection`.
    pub(crate) fn new(inner: T, connection: Arc<Connection>) -> Watched<T> {
        let timer = Box::pin(tokio::time::sleep(std::time::Duration::ZERO));
        Watched {
            inner,
            connection,
            timer,
            sniffed: Sniffed::Unknown(0),
            replacing: None,
        }
    }

    /// What the client speaks, once its first bytes tell: `Some(true)` for HTTP/2 (its preface
    /// arrived whole), `Some(false)` for HTTP/1.x.
    pub(crate) fn speaks_http2(&self) -> Option<bool> {
        match self.sniffed {
            Sniffed::Unknown(_) => None,
            Sniffed::Http1 => Some(false),
            Sniffed::Http2(_) => Some(true),
        }
    }

    /// Follows bytes the client sent.
    fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Sniffed::Unknown(matched) = self.sniffed {
            let expected = &PREFACE[matched..];
            let n = expected.len().min(bytes.len());
            self.sniffed = if bytes[..n] != expected[..n] {
                Sniffed::Http1
            } else if matched + n == PREFACE.len() {
                let mut reader = FrameReader::default();
                reader.feed(&PREFACE[..matched]);
                Sniffed::Http2(Box::new(reader))
            } else {
                Sniffed::Unknown(matched + n)
            };
            if let Sniffed::Unknown(_) = self.sniffed {
                self.connection.head_pending(true);
                return;
            }
        }
        match &mut self.sniffed {
            Sniffed::Http2(reader) => {
                reader.feed(bytes);
                self.connection.head_pending(reader.head_pending());
            }
            _ if self.connection.is_quiet() => self.connection.head_pending(true),
            _ => {}
        }
    }

    /// Polls the watchdog's clock: `Err` when the connection must close now.
    fn watchdog(&mut self, cx: &mut Context<'_>) -> Result<(), Expired> {
        self.connection.park(cx.waker());
        loop {
            let next = self.connection.check()?;
            if self.timer.deadline() != next {
                self.timer.as_mut().reset(next);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
        }
    }

    /// Notes written bytes; a write that cannot proceed polls the watchdog.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                self.connection.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match self.closing(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            failed => failed,
        }
    }

    /// When `data` (what hyper writes next) is its own empty refusal of an HTTP/1.1 head, starts
    /// writing the gateway's answer in its place ([`refusal`]).
    fn replace_refusal(&mut self, data: &[u8]) {
        let head_pending =
            matches!(self.sniffed, Sniffed::Http1) && self.connection.is_head_pending();
        if self.replacing.is_some() || !head_pending {
            return;
        }
        if let Some(refused) = refusal::recognise(data) {
            let reply = GatewayError::from(refused).to_plain_reply();
            let answer = refusal::answer(data, reply.status, &reply.body);
            self.replacing = Some((answer, data.len()));
        }
    }

    /// Writes the rest of the gateway's answer that replaces hyper's refusal; once it is all
    /// written, hyper's bytes are reported written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>>
    where
        T: AsyncWrite + Unpin,
    {
        let (rest, reported) = self.replacing.as_mut()?;
        while !rest.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => {
                    return Some(Poll::Ready(Err(io::ErrorKind::WriteZero.into())));
                }
                Poll::Ready(Ok(n)) => {
                    let _ = rest.split_to(n);
                }
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => return Some(self.after_write(cx, Poll::Pending)),
            }
        }
        let reported = *reported;
        self.replacing = None;
        Some(Poll::Ready(Ok(reported)))
    }

    /// The watchdog's verdict as the error a pending read or write ends with.
    fn closing(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let expired = self.watchdog(cx).err()?;
        tracing::debug!(peer = %self.connection.peer(), reason = expired.message(), "closing connection");
        Some(io::Error::new(io::ErrorKind::TimedOut, expired.message()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.observe(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.closing(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.replace_refusal(data);
        if let Some(polled) = this.poll_replacement(cx) {
            return polled;
        }
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.replace_refusal(first);
        }
        if let Some(polled) = this.poll_replacement(cx) {
            return polled;
        }
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TLS close_notify the client never takes is bounded like any other write.
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => match this.closing(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::budget::Budget;
    use crate::listener::connection::Timeouts;
    use crate::listener::table::Table;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    fn watched(
        server: tokio::io::DuplexStream,
    ) -> (Watched<tokio::io::DuplexStream>, Arc<Connection>) {
        let budget = Budget {
            total: 1 << 20,
            per_connection: 1 << 20,
        };
        let table = Arc::new(Table::new(10, 0, budget));
        let timeouts = Timeouts {
            idle: Duration::from_secs(300),
            head: Duration::from_secs(10),
            write: Duration::from_secs(30),
        };
        let peer = "127.0.0.1:9".parse().expect("addr");
        let (connection, seat) = table.seat(peer, timeouts).expect("seat");
        std::mem::forget(seat);
        (Watched::new(server, connection.clone()), connection)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_idle_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let (mut io, _) = watched(server);
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let err = io.read(&mut buf).await.expect_err("idle timeout");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(300));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_http1_head_is_cut_at_the_head_timeout_and_a_request_holds_the_connection() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, connection) = watched(server);
        let started = Instant::now();
        let mut buf = [0u8; 8];
        client.write_all(b"GE").await.expect("write");
        assert_eq!(io.read(&mut buf).await.expect("read"), 2);
        let trickle = tokio::spawn(async move {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client.write_all(b"T").await.is_err() {
                    break;
                }
            }
            client
        });
        let err = loop {
            match io.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        drop(trickle);
        // A dispatched request ends the head: the connection is then governed by the request.
        let busy = connection.begin();
        assert!(connection.check().is_ok());
        drop(busy);
    }

    #[tokio::test]
    async fn hypers_empty_refusal_of_a_head_goes_out_as_the_gateways_json_answer() {
        // A small pipe: the answer needs several partial writes, some of them pending.
        let (mut client, server) = tokio::io::duplex(16);
        let (mut io, _) = watched(server);
        // The start of a head (the rest of it is what hyper refuses).
        client.write_all(b"GET / HT").await.expect("write");
        let mut buf = [0u8; 64];
        let _ = io.read(&mut buf).await.expect("read");
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: D\r\n\r\n";
        let writer = tokio::spawn(async move {
            let n = io.write(hyper).await.expect("write");
            (n, io)
        });
        let mut seen = Vec::new();
        let body = br#"{"code":3,"message":"malformed HTTP/1.1 request head","details":[]}"#;
        while !seen.ends_with(body) {
            let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await;
            let n = read
                .unwrap_or_else(|_| panic!("stalled: {:?}", String::from_utf8_lossy(&seen)))
                .expect("read");
            assert!(n > 0, "closed early: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
        let (n, _io) = writer.await.expect("writer");
        assert_eq!(n, hyper.len(), "hyper's bytes are reported written");
        let head = "HTTP/1.1 400 Bad Request\r\ndate: D\r\ncontent-type: application/json\r\ncontent-length: 67\r\nconnection: close\r\n\r\n";
        assert_eq!(
            String::from_utf8_lossy(&seen),
            format!("{head}{}", String::from_utf8_lossy(body))
        );
    }

    #[tokio::test]
    async fn an_answer_to_a_dispatched_request_is_never_replaced() {
        let (mut client, server) = tokio::io::duplex(256);
        let (mut io, connection) = watched(server);
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        let _ = io.read(&mut buf).await.expect("read");
        let _busy = connection.begin();
        let empty = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        io.write_all(empty).await.expect("write");
        let n = client.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], &empty[..]);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_pings_do_not_keep_an_idle_connection_open() {
        let (mut client, server) = tokio::io::duplex(1024);
        let (mut io, _) = watched(server);
        let started = Instant::now();
        let pinger = tokio::spawn(async move {
            client.write_all(PREFACE).await.expect("preface");
            let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
            for _ in 0..400 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client.write_all(&ping).await.is_err() {
                    break;
                }
            }
        });
        let mut buf = [0u8; 64];
        let err = loop {
            match io.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(300));
        pinger.abort();
    }
}
