//! A transport with bytes already read in front of it: what the idle wait (or hyper, on giving a
//! connection back) read is handed to the next reader first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, with `prefix` read before anything from it.
#[derive(Debug)]
pub(crate) struct Prefixed<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Prefixed<T> {
    /// Reads `prefix` first, then `inner`.
    pub(crate) fn new(inner: T, prefix: Bytes) -> Prefixed<T> {
        Prefixed { prefix, inner }
    }

    /// The transport back, with `read` (bytes a reader took and did not use) put in front of
    /// what is left of the prefix. Nothing left is an empty `Bytes` that holds no memory (an
    /// empty `read` can still hold the reader's whole buffer).
    pub(crate) fn into_parts(self, read: Bytes) -> (T, Bytes) {
        let rest = match (read.is_empty(), self.prefix.is_empty()) {
            (true, true) => Bytes::new(),
            (false, true) => read,
            (true, false) => self.prefix,
            (false, false) => {
                let mut both = BytesMut::with_capacity(read.len() + self.prefix.len());
                both.extend_from_slice(&read);
                both.extend_from_slice(&self.prefix);
                both.freeze()
            }
        };
        (self.inner, rest)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_prefix_is_read_before_the_transport_and_given_back_in_order() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b" world")
            .await
            .expect("write");
        let mut io = Prefixed::new(server, Bytes::from_static(b"hello"));
        let mut buf = [0u8; 3];
        io.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"hel");
        let (mut inner, rest) = io.into_parts(Bytes::from_static(b"unused "));
        assert_eq!(&rest[..], b"unused lo");
        let mut tail = [0u8; 6];
        inner.read_exact(&mut tail).await.expect("read");
        assert_eq!(&tail, b" world");
    }
}
