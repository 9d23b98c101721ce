//! Turns for connections that keep listing. A client that lists
//! containers over and over on keep-alive connections (monitors, `watch
//! docker ps`, two hundred of them in the load test) keeps the runtime's run
//! queue full, and every other request, a ping, an inspect, a start, waits
//! behind all of them in arrival order. So a connection whose last request
//! was a listing reads its next one in turn: the bytes are read when they
//! come, but the request is handled only when a dispatcher hands out the
//! turn, one connection at a time, with every other ready task running
//! between turns. Other requests then queue behind one listing, not all of
//! them; listings still get all the time nothing else needs.
//!
//! Measured with 200 connections listing back to back (the bench's latency
//! under load): a ping's median went from 10-24x its idle time to 1.5x,
//! with as many listings answered; two turns at a time gave 1.9x, four
//! 3.6x.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::version::split_version;

/// How much of a waiting request is read ahead of its turn; the rest is
/// read in turn.
const READ_AHEAD: usize = 8 * 1024;

/// Routes whose repeated use makes a connection wait its turn: listings,
/// whose cost grows with what they list and which clients poll.
fn is_listing(method: &hyper::Method, path: &str) -> bool {
    if method != hyper::Method::GET {
        return false;
    }
    // The version prefix (`/v1.41`) is optional.
    let path = split_version(path).map_or(path, |(_, tail)| tail);
    matches!(path, "/containers/json" | "/images/json" | "/networks" | "/volumes")
}

/// The dispatcher's queue: connections with a request waiting for a turn.
pub struct Turns {
    waiting: Mutex<VecDeque<(Arc<Conn>, Waker)>>,
    queued: Notify,
}

impl Turns {
    /// The queue and its dispatcher, on the current runtime.
    pub fn start() -> Arc<Turns> {
        let turns = Turns::idle();
        tokio::spawn(dispatch(turns.clone()));
        turns
    }

    /// The queue without a dispatcher.
    fn idle() -> Arc<Turns> {
        Arc::new(Turns { waiting: Mutex::new(VecDeque::new()), queued: Notify::new() })
    }

    fn enqueue(&self, conn: Arc<Conn>, waker: Waker) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.push_back((conn, waker));
        if waiting.len() == 1 {
            self.queued.notify_one();
        }
    }

    fn next(&self) -> Option<(Arc<Conn>, Waker)> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }
}

/// Hands out turns, one at a time, and yields after each so that the
/// tasks already queued (other requests among them) run first. Lives as
/// long as the runtime.
async fn dispatch(turns: Arc<Turns>) {
    loop {
        let Some((conn, waker)) = turns.next() else {
            turns.queued.notified().await;
            continue;
        };
        conn.turn.store(true, Ordering::Release);
        waker.wake();
        tokio::task::yield_now().await;
    }
}

/// One connection's standing.
#[derive(Default)]
pub struct Conn {
    /// Its last request was a listing: the next one waits for a turn.
    listing: AtomicBool,
    /// It has its turn: from the dispatcher's grant until its request is
    /// handled, reads pass straight through.
    turn: AtomicBool,
}

/// The connection's stream, read in turn while the connection keeps
/// listing.
pub struct InTurn<I> {
    io: I,
    conn: Arc<Conn>,
    turns: Arc<Turns>,
    /// Read before the turn came.
    ahead: Vec<u8>,
}

impl<I> InTurn<I> {
    pub fn new(io: I, turns: Arc<Turns>) -> (Self, Arc<Conn>) {
        let conn = Arc::new(Conn::default());
        (InTurn { io, conn: conn.clone(), turns, ahead: Vec::new() }, conn)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for InTurn<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let turn = this.conn.turn.load(Ordering::Acquire);
        if !this.ahead.is_empty() {
            if !turn {
                // Woken for something else; the dispatcher holds the waker.
                return Poll::Pending;
            }
            let n = this.ahead.len().min(buf.remaining());
            buf.put_slice(&this.ahead[..n]);
            this.ahead.drain(..n);
            return Poll::Ready(Ok(()));
        }
        if turn || !this.conn.listing.load(Ordering::Acquire) {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let mut ahead = [0u8; READ_AHEAD];
        let mut read = ReadBuf::new(&mut ahead);
        match Pin::new(&mut this.io).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                this.ahead.extend_from_slice(read.filled());
                this.turns.enqueue(this.conn.clone(), cx.waker().clone());
                Poll::Pending
            }
            // The end of the stream, an error, or nothing yet: as they are.
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for InTurn<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Notes, as each request of a connection starts, whether it is a listing
/// (which decides how the connection's next request is read) and ends the
/// turn it was read in.
#[derive(Clone)]
pub struct Noting<S> {
    pub inner: S,
    pub conn: Arc<Conn>,
}

impl<S> tower::Service<hyper::Request<Incoming>> for Noting<S>
where
    S: tower::Service<hyper::Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: hyper::Request<Incoming>) -> S::Future {
        self.conn.listing.store(is_listing(req.method(), req.uri().path()), Ordering::Release);
        self.conn.turn.store(false, Ordering::Release);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn listings_are_known_with_and_without_a_version() {
        let get = hyper::Method::GET;
        for path in ["/containers/json", "/v1.41/containers/json", "/v1.51/images/json", "/networks", "/v1.24/volumes"] {
            assert!(is_listing(&get, path), "{path}");
        }
        for path in ["/_ping", "/v1.41/containers/abc/json", "/version", "/v1.41/networks/x", "/volumes/v", "/v1.41", "/vx/networks"] {
            assert!(!is_listing(&get, path), "{path}");
        }
        assert!(!is_listing(&hyper::Method::POST, "/containers/json"));
    }

    /// A connection whose last request was a listing: its next request is
    /// read ahead but handed on only in its turn; then reads pass through
    /// until that request is handled.
    #[tokio::test]
    async fn after_a_listing_the_next_request_waits_for_its_turn() {
        let turns = Turns::idle();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let (mut io, conn) = InTurn::new(server, turns.clone());
        conn.listing.store(true, Ordering::Release);
        client.write_all(b"GET /_ping HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_millis(50), io.read(&mut buf)).await;
        assert!(read.is_err(), "read before its turn");
        let (conn, waker) = turns.next().expect("queued for a turn");
        assert!(turns.next().is_none());
        conn.turn.store(true, Ordering::Release);
        waker.wake();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"GET /_ping HTTP/1.1\r\n");
        client.write_all(b"Host: x\r\n\r\n").await.unwrap();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"Host: x\r\n\r\n", "in its turn, reads pass through");
        assert!(turns.next().is_none());
    }

    /// Other connections read straight away, and the end of the stream
    /// comes through without a turn.
    #[tokio::test]
    async fn other_connections_and_the_end_need_no_turn() {
        let turns = Turns::idle();
        let (mut client, server) = tokio::io::duplex(1024);
        let (mut io, conn) = InTurn::new(server, turns.clone());
        client.write_all(b"GET /_ping").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 10);
        conn.listing.store(true, Ordering::Release);
        drop(client);
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(turns.next().is_none());
    }
}
