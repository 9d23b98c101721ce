//! Attached streams: `POST /containers/{id}/attach` and the pump shared with
//! `exec start`: output to the client, the client's input to the process,
//! detach keys.

use std::future::pending;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{oneshot, watch};

use crate::server::error::ApiError;
use crate::server::extract::QueryPairs;
use crate::server::stream::{frame, hijack, Hijacked, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::services::containers::{AttachOptions, AttachStreams, EscapeProxy, Output, Stream};
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
    let opts = AttachOptions { stdin: query.bool("stdin"), stdout: query.bool("stdout"), stderr: query.bool("stderr") };
    let streams = match svc.containers.attach(&id, opts, query.get("detachKeys").unwrap_or_default()).await {
        Ok(streams) => streams,
        Err(e) => return ApiError::from(e).into_raw_stream_response(),
    };
    let content_type = if streams.tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    let fallback = Body::from_stream(output_stream(streams.output.resubscribe(), streams.tty, opts));
    hijack(req, content_type, move |conn| pump(conn, streams, None), fallback)
}

fn encode(output: &Output, tty: bool, opts: AttachOptions) -> Option<bytes::Bytes> {
    match output {
        Output::Data(stream, data) => {
            let wanted = match stream {
                Stream::Stdout => opts.stdout,
                Stream::Stderr => opts.stderr,
            };
            wanted.then(|| if tty { data.clone() } else { frame(*stream, data) })
        }
        Output::End => None,
    }
}

/// The process's output as the client receives it: raw with a TTY, else
/// in Docker's frames; ends with the output.
pub(super) fn output_stream(
    rx: tokio::sync::broadcast::Receiver<Output>,
    tty: bool,
    opts: AttachOptions,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(Output::End) | Err(RecvError::Closed) => return None,
                Ok(out) => {
                    if let Some(bytes) = encode(&out, tty, opts) {
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
async fn pump_input<R: tokio::io::AsyncRead + Unpin>(mut reader: R, streams: &mut AttachStreams) -> bool {
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

/// Output to the client until the process's output ends, the client's
/// input to its stdin meanwhile. Output keeps flowing after the client
/// half-closes when the process's stdin closes with it (`StdinOnce`, no
/// TTY); otherwise the end of input or the detach keys end the attach, and
/// the process runs on. With `exited`, a normal end waits until the exit
/// is recorded (exec: the CLI inspects right after EOF).
pub(super) async fn pump(conn: Hijacked, mut streams: AttachStreams, exited: Option<watch::Receiver<bool>>) {
    let (reader, mut writer) = tokio::io::split(conn);
    let opts = AttachOptions { stdin: streams.stdin.is_some(), stdout: streams.want_stdout, stderr: streams.want_stderr };
    let spare = streams.output.resubscribe();
    let rx = std::mem::replace(&mut streams.output, spare);
    let mut output = output_stream(rx, streams.tty, opts);
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
