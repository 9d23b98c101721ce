//! Attached streams: `POST /containers/{id}/attach` and the pump shared with
//! `exec start`: output to the client, the client's input to the process,
//! detach keys.

use std::future::pending;

use api_types::version::ApiVersion;
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{oneshot, watch};

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::QueryPairs;
use crate::server::stream::{frame, hijack, log_chunk, wants_upgrade, Hijacked, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::server::version::Version;
use crate::services::containers::{AttachOptions, AttachStreams, EscapeProxy, LogsOptions, Output, Stream};
use crate::services::{ServiceError, Services};

/// `POST /containers/{id}/attach` (ContainerAttach). As dockerd, errors are
/// plain text (it has hijacked the connection before it finds them).
pub async fn container_attach(
    State(svc): State<Services>,
    Path(id): Path<String>,
    query: QueryPairs,
    req: Request,
) -> Response {
    if !query.bool("stream") && !query.bool("logs") {
        let e = ServiceError::InvalidParameter("Bad parameters: you must choose at least one stream".into());
        return ApiError::from(e).into_raw_stream_response();
    }
    let opts = options(&query);
    let streams = match svc.containers.attach(&id, opts, query.get("detachKeys").unwrap_or_default()).await {
        Ok(streams) => streams,
        Err(e) => return ApiError::from(e).into_raw_stream_response(),
    };
    let content_type = if streams.tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    let raw = streams.tty;
    let mut session = Some(Session::new(&svc, &id, &query, streams, raw).await);
    // A client without an upgrade reads the output as the body instead.
    let fallback = match wants_upgrade(&req) {
        true => Body::empty(),
        false => Body::from_stream(session.take().map(|s| s.into_output(opts)).unwrap_or_else(|| futures_util::stream::empty().boxed())),
    };
    let serve = move |conn| async move {
        if let Some(session) = session {
            session.run(conn).await
        }
    };
    hijack(req, content_type, serve, fallback)
}

/// `GET /containers/{id}/attach/ws` (ContainerAttachWebsocket): the same
/// attach over a websocket, one message per write, never multiplexed;
/// binary messages from API 1.28, text before (as dockerd). Errors found
/// before the upgrade are ordinary JSON errors.
pub async fn container_attach_ws(
    State(svc): State<Services>,
    Path(id): Path<String>,
    Version(version): Version,
    query: QueryPairs,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let opts = options(&query);
    let streams = svc.containers.attach(&id, opts, query.get("detachKeys").unwrap_or_default()).await?;
    // As dockerd, the container is found before the handshake is checked.
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    // Raw bytes: websocket attach has no frames.
    let session = Session::new(&svc, &id, &query, streams, true).await;
    let binary = version >= ApiVersion::new(1, 28);
    Ok(ws.on_upgrade(move |socket| websocket_session(socket, session, binary)))
}

fn options(query: &QueryPairs) -> AttachOptions {
    AttachOptions { stdin: query.bool("stdin"), stdout: query.bool("stdout"), stderr: query.bool("stderr") }
}

pub(super) type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// One attach: with `logs`, the container's log so far first; with
/// `stream`, then the live output and the client's input.
struct Session {
    streams: AttachStreams,
    history: Option<ByteStream>,
    live: bool,
    /// The history follows the log and is the live output too: a line
    /// written during the replay comes once, neither lost nor repeated.
    follow: bool,
    /// Output as it comes, without Docker's frames.
    raw: bool,
}

impl Session {
    async fn new(svc: &Services, id: &str, query: &QueryPairs, streams: AttachStreams, raw: bool) -> Session {
        let mut live = query.bool("stream");
        let mut follow = live && streams.running;
        let history = if query.bool("logs") {
            let opts = LogsOptions { stdout: streams.want_stdout, stderr: streams.want_stderr, follow, ..Default::default() };
            if !opts.stdout && !opts.stderr {
                None
            } else {
                match svc.containers.logs(id, opts).await {
                    Ok((_, lines)) => Some(lines.map(move |batch| Ok(log_chunk(batch, raw))).boxed()),
                    // As dockerd: the reason goes to the client's stdout and the attach ends.
                    Err(e) => {
                        live = false;
                        follow = false;
                        let text = Bytes::from(format!("Error attaching: {e}\n"));
                        let text = if raw { text } else { frame(Stream::Stdout, &text) };
                        Some(futures_util::stream::iter([Ok(text)]).boxed())
                    }
                }
            }
        } else {
            follow = false;
            None
        };
        Session { streams, history, live, follow, raw }
    }

    /// The history, then (when live) the output, as one body.
    fn into_output(self, opts: AttachOptions) -> ByteStream {
        let output = match self.live && !self.follow {
            true => output_stream(self.streams.output, self.raw, opts),
            false => futures_util::stream::empty().boxed(),
        };
        match self.history {
            Some(history) => history.chain(output).boxed(),
            None => output,
        }
    }

    async fn run(self, conn: Hijacked) {
        let (reader, writer) = tokio::io::split(conn);
        pump_io(reader, writer, self, None).await
    }
}

/// Bridges a websocket to the attach pump: messages in become the
/// process's input, the pump's output goes out as messages.
async fn websocket_session(socket: WebSocket, session: Session, binary: bool) {
    let (mut sink, source) = socket.split();
    let input = futures_util::stream::unfold(source, |mut source| async move {
        loop {
            return match source.next().await {
                Some(Ok(Message::Binary(data))) => Some((Ok::<_, std::io::Error>(data), source)),
                Some(Ok(Message::Text(text))) => Some((Ok(Bytes::copy_from_slice(text.as_str().as_bytes())), source)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_)) | Err(_)) | None => None,
            };
        }
    });
    let reader = tokio_util::io::StreamReader::new(Box::pin(input));
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let forward = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match theirs.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let message = if binary {
                Message::Binary(Bytes::copy_from_slice(&buf[..n]))
            } else {
                Message::Text(String::from_utf8_lossy(&buf[..n]).into_owned().into())
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(pump_io(reader, ours, session, None), forward);
}

fn encode(output: &Output, raw: bool, opts: AttachOptions) -> Option<Bytes> {
    match output {
        Output::Data(stream, data) => {
            let wanted = match stream {
                Stream::Stdout => opts.stdout,
                Stream::Stderr => opts.stderr,
            };
            wanted.then(|| if raw { data.clone() } else { frame(*stream, data) })
        }
        Output::End => None,
    }
}

/// The process's output as the client receives it: raw (a TTY, a websocket), else
/// in Docker's frames; ends with the output.
pub(super) fn output_stream(
    rx: tokio::sync::broadcast::Receiver<Output>,
    raw: bool,
    opts: AttachOptions,
) -> ByteStream {
    futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(Output::End) | Err(RecvError::Closed) => return None,
                Ok(out) => {
                    if let Some(bytes) = encode(&out, raw, opts) {
                        return Some((Ok(bytes), rx));
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
            }
        }
    })
    .boxed()
}

/// Copy the client's input to the process until it ends or the detach keys
/// come; returns whether the attach should end now.
async fn pump_input<R: AsyncRead + Unpin>(mut reader: R, streams: &mut AttachStreams) -> bool {
    let Some(stdin) = streams.stdin.clone() else { return false };
    let detach = streams.detach.take();
    let mut proxy = detach.as_ref().map(|d| EscapeProxy::new(d.keys.clone()));
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (data, detached) = match proxy.as_mut() {
            Some(p) => p.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if !data.is_empty() && stdin.write_stdin(&data).await.is_err() {
            break;
        }
        if detached {
            if let Some(d) = detach {
                (d.announce)();
            }
            return true;
        }
    }
    if streams.input_ends_attach() {
        return true;
    }
    stdin.close_stdin().await;
    false
}

/// Exec start's attach: the live output and input on a hijacked connection.
pub(super) async fn pump(conn: Hijacked, streams: AttachStreams, exited: Option<watch::Receiver<bool>>) {
    let (reader, writer) = tokio::io::split(conn);
    let raw = streams.tty;
    pump_io(reader, writer, Session { streams, history: None, live: true, follow: false, raw }, exited).await
}

/// Output to the client until the process's output ends, the client's
/// input to its stdin meanwhile. Output keeps flowing after the client
/// half-closes when the process's stdin closes with it (`StdinOnce`, no
/// TTY); otherwise the end of input or the detach keys end the attach, and
/// the process runs on. With `exited`, a normal end waits until the exit
/// is recorded (exec: the CLI inspects right after EOF).
async fn pump_io<R, W>(
    reader: R,
    mut writer: W,
    session: Session,
    exited: Option<watch::Receiver<bool>>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let Session { mut streams, mut history, live, follow, raw } = session;
    if let Some(mut history) = history.take_if(|_| !follow) {
        while let Some(Ok(bytes)) = history.next().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = writer.flush().await;
    }
    if !live {
        let _ = writer.shutdown().await;
        return;
    }
    let opts = AttachOptions { stdin: streams.stdin.is_some(), stdout: streams.want_stdout, stderr: streams.want_stderr };
    let spare = streams.output.resubscribe();
    let rx = std::mem::replace(&mut streams.output, spare);
    let mut output = match history {
        Some(followed) => followed,
        None => output_stream(rx, raw, opts),
    };
    let (end_tx, end_rx) = oneshot::channel();
    let input = tokio::spawn(async move {
        if pump_input(reader, &mut streams).await {
            let _ = end_tx.send(());
        }
    });
    let ended = async {
        if end_rx.await.is_err() {
            pending::<()>().await;
        }
    };
    tokio::pin!(ended);
    let mut cut_short = false;
    loop {
        tokio::select! {
            next = output.next() => match next {
                Some(Ok(bytes)) => {
                    if writer.write_all(&bytes).await.is_err() {
                        input.abort();
                        return;
                    }
                    let _ = writer.flush().await;
                }
                _ => break,
            },
            _ = &mut ended => {
                cut_short = true;
                break;
            }
        }
    }
    input.abort();
    if let (Some(mut exited), false) = (exited, cut_short) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), exited.wait_for(|done| *done)).await;
    }
    let _ = writer.shutdown().await;
}
