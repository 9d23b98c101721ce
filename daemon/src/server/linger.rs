//! A lingering close, as Go's HTTP server does: when a connection is
//! dropped, its write side is shut first and what the client still sends is
//! read and discarded for a moment before the socket closes. Closing with
//! unread data makes the kernel reset the connection, and a client still
//! writing a refused upload (`docker cp` of a big file to a missing
//! container) then sees a broken pipe instead of the error response.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Go's rstAvoidanceDelay.
const LINGER: Duration = Duration::from_millis(500);

pub struct Lingering<I: AsyncRead + AsyncWrite + Send + Unpin + 'static> {
    /// Always `Some` until dropped.
    inner: Option<I>,
}

impl<I: AsyncRead + AsyncWrite + Send + Unpin + 'static> Lingering<I> {
    pub fn new(io: I) -> Self {
        Self { inner: Some(io) }
    }

    fn io(&mut self) -> Pin<&mut I> {
        Pin::new(self.inner.as_mut().expect("the stream is only taken on drop"))
    }
}

impl<I: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncRead for Lingering<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncWrite for Lingering<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|io| io.is_write_vectored())
    }
}

impl<I: AsyncRead + AsyncWrite + Send + Unpin + 'static> Drop for Lingering<I> {
    fn drop(&mut self) {
        let (Some(mut io), Ok(runtime)) = (self.inner.take(), tokio::runtime::Handle::try_current()) else { return };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, async {
                let _ = io.shutdown().await;
                let mut discard = [0u8; 16 * 1024];
                while let Ok(n) = io.read(&mut discard).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        });
    }
}
