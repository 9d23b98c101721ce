//! The HTTP side: listeners, routing, version prefix, errors. Only this
//! module knows about axum and hyper.

pub mod error;
pub mod extract;
mod linger;
pub mod listeners;
pub mod metrics;
pub mod router;
pub mod stream;
pub mod routes;
pub mod tls;
mod turns;
pub mod version;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

pub use listeners::Listener;

/// What answers the requests: [`router::Api`] (a test's plain router too).
pub trait App:
    tower::Service<hyper::Request<Incoming>, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}

impl<S> App for S where
    S: tower::Service<hyper::Request<Incoming>, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}

/// How long in-flight requests may run after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// dockerd's `ReadHeaderTimeout`: a client that has not sent a whole
/// request head by then (a slowloris) is cut off. hyper also counts the
/// wait for the next request on a kept-alive connection, which Go does not;
/// clients' pools drop idle connections sooner (bollard after 90 s).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Go's `DefaultMaxHeaderBytes` (1 MiB) plus the 4 KiB slack it allows;
/// a bigger head gets a 431 and the connection is closed.
const MAX_HEAD_BYTES: usize = (1 << 20) + 4096;

/// Serve on every listener until `shutdown` flips to true, then stop
/// accepting and return what waits for in-flight requests. The caller
/// stops containers first: attached streams end when their container does.
pub async fn serve(listeners: Vec<Listener>, app: impl App, shutdown: watch::Receiver<bool>) -> Drain {
    // Every connection holds a sender; when all are dropped, the receiver
    // reports that the drain is complete.
    let (alive, drained) = mpsc::channel::<()>(1);
    let mut accept_loops = Vec::new();
    let turns = turns::Turns::start();
    for listener in listeners {
        tracing::info!(listener = %listener.describe(), "API listen");
        let connections = Connections { app: app.clone(), turns: turns.clone(), shutdown: shutdown.clone(), alive: alive.clone() };
        accept_loops.push(tokio::spawn(accept_loop(listener, connections)));
    }
    drop(alive);
    for task in accept_loops {
        let _ = task.await;
    }
    Drain(drained)
}

/// In-flight requests after the listeners closed.
pub struct Drain(mpsc::Receiver<()>);

impl Drain {
    /// Let in-flight requests finish, up to a timeout.
    pub async fn wait(mut self) {
        if tokio::time::timeout(DRAIN_TIMEOUT, self.0.recv()).await.is_err() {
            tracing::warn!("in-flight requests did not finish within {}s", DRAIN_TIMEOUT.as_secs());
        }
    }
}

/// What each connection of a listener is served with.
#[derive(Clone)]
struct Connections<A> {
    app: A,
    turns: Arc<turns::Turns>,
    shutdown: watch::Receiver<bool>,
    /// Held by every connection until it ends.
    alive: mpsc::Sender<()>,
}

async fn accept_loop(listener: Listener, connections: Connections<impl App>) {
    let mut shutdown = connections.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = accept(&listener) => match accepted {
                Ok(Accepted::Plain(io)) => spawn_connection(io, connections.clone()),
                Ok(Accepted::Tcp(stream, tls)) => {
                    let connections = connections.clone();
                    tokio::spawn(async move {
                        match tls.accept(stream).await {
                            Ok(io) => spawn_connection(io, connections),
                            Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors and similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

enum Accepted {
    Plain(Box<dyn Io>),
    Tcp(tokio::net::TcpStream, tokio_rustls::TlsAcceptor),
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Unix { listener, .. } => Ok(Accepted::Plain(Box::new(listener.accept().await?.0))),
        Listener::Tcp { listener, tls, .. } => {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok(match tls {
                Some(tls) => Accepted::Tcp(stream, tls.clone()),
                None => Accepted::Plain(Box::new(stream)),
            })
        }
    }
}

fn spawn_connection<I: Io>(io: I, connections: Connections<impl App>) {
    tokio::spawn(async move {
        let Connections { app, turns, shutdown, alive: _alive } = connections;
        serve_connection(io, app, turns, shutdown).await;
    });
}

async fn serve_connection<I: Io>(io: I, app: impl App, turns: Arc<turns::Turns>, mut shutdown: watch::Receiver<bool>) {
    let (io, conn) = turns::InTurn::new(linger::Lingering::new(io), turns);
    let service = TowerToHyperService::new(turns::Noting { inner: app, conn });
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn app() -> Router {
        Router::new().route("/_ping", axum::routing::get(|| async { "OK" }))
    }

    /// A client that never finishes its request head is cut off after
    /// dockerd's five minutes, not before.
    #[tokio::test(start_paused = true)]
    async fn slow_request_heads_are_cut_off_after_five_minutes() {
        let (mut client, server) = tokio::io::duplex(4096);
        let (_tx, rx) = watch::channel(false);
        let served = tokio::spawn(serve_connection(server, app(), turns::Turns::start(), rx));
        client.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        tokio::time::sleep(HEADER_READ_TIMEOUT - Duration::from_secs(1)).await;
        assert!(!served.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        tokio::time::timeout(Duration::from_secs(1), served).await.expect("connection closed").unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
    }

    /// A connection that keeps listing is still answered, request after
    /// request, with every other connection's requests in between.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_that_keep_listing_are_answered_in_turn() {
        let app = Router::new()
            .route("/_ping", axum::routing::get(|| async { "OK" }))
            .route("/v1.41/containers/json", axum::routing::get(|| async { "[]" }));
        let turns = turns::Turns::start();
        let (_tx, rx) = watch::channel(false);
        let mut clients = Vec::new();
        for _ in 0..8 {
            let (client, server) = tokio::io::duplex(4096);
            tokio::spawn(serve_connection(server, app.clone(), turns.clone(), rx.clone()));
            clients.push(tokio::spawn(async move {
                let mut client = client;
                let mut answer = [0u8; 4096];
                for i in 0..50 {
                    let path = if i % 10 == 9 { "/_ping" } else { "/v1.41/containers/json" };
                    client.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
                    let n = client.read(&mut answer).await.unwrap();
                    let text = String::from_utf8_lossy(&answer[..n]);
                    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                    assert!(text.ends_with(if path == "/_ping" { "OK" } else { "[]" }), "{text}");
                }
            }));
        }
        for c in clients {
            tokio::time::timeout(Duration::from_secs(10), c).await.expect("answered").unwrap();
        }
    }

    /// Heads up to Go's 1 MiB are read; bigger ones get a 431.
    #[tokio::test]
    async fn oversize_heads_get_431() {
        for (size, status) in [(900 * 1024, "200"), (2 << 20, "431")] {
            let (mut client, server) = tokio::io::duplex(1 << 16);
            let (_tx, rx) = watch::channel(false);
            tokio::spawn(serve_connection(server, app(), turns::Turns::start(), rx));
            let head = format!("GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(size));
            let writer = tokio::spawn(async move {
                let _ = client.write_all(head.as_bytes()).await;
                client
            });
            let mut client = writer.await.unwrap();
            let mut answer = Vec::new();
            let _ = client.read_to_end(&mut answer).await;
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{size}: {answer}");
        }
    }
}
