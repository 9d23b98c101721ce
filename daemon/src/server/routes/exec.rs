//! Exec routes, and the TTY resize of containers and execs.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use api_types::common::IdResponse;
use api_types::exec::{ExecCreateRequest, ExecInspect, ExecStartRequest};

use super::attach::{output_stream, pump};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{decode_json, QueryPairs};
use crate::server::stream::{hijack, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::services::containers::{AttachOptions, ExecStart};
use crate::services::Services;

/// `POST /containers/{id}/exec` (ContainerExec).
pub async fn container_exec(
    State(svc): State<Services>,
    Path(id): Path<String>,
    crate::server::extract::DockerJson(body): crate::server::extract::DockerJson<Option<ExecCreateRequest>>,
) -> ApiResult<(StatusCode, Json<IdResponse>)> {
    let body = body.ok_or_else(|| ApiError::BadRequest("No exec command specified".into()))?;
    let id = svc.containers.exec_create(&id, body).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id })))
}

/// `POST /exec/{id}/start` (ExecStart): hijacked unless detached.
pub async fn exec_start(State(svc): State<Services>, Path(id): Path<String>, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = crate::server::extract::read_json_body(body).await?;
    let start: Option<ExecStartRequest> = decode_json(&bytes)?;
    let detach = start.is_some_and(|s| s.detach);
    let streams = match svc.containers.exec_start(&id).await? {
        ExecStart::Running(streams) => streams,
        ExecStart::Failed { error, .. } if detach => return Err(error.into()),
        ExecStart::Failed { tty, error } => {
            // As dockerd: the connection is hijacked first and the error goes
            // down the stream, as output; the exit code is in exec inspect.
            let line = format!("{error}\r\n");
            let text = if tty {
                bytes::Bytes::from(line)
            } else {
                crate::server::stream::frame(crate::services::containers::Stream::Stdout, line.as_bytes())
            };
            let req = Request::from_parts(parts, Body::empty());
            let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
            let fallback = Body::from(text.clone());
            return Ok(hijack(req, content_type, move |mut conn| async move {
                use tokio::io::AsyncWriteExt;
                let _ = conn.write_all(&text).await;
                let _ = conn.shutdown().await;
            }, fallback));
        }
    };
    if detach {
        return Ok(StatusCode::OK.into_response());
    }
    let req = Request::from_parts(parts, Body::empty());
    let tty = streams.attach.tty;
    let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    let opts = AttachOptions { stdin: false, stdout: streams.attach.want_stdout, stderr: streams.attach.want_stderr };
    let fallback = Body::from_stream(output_stream(streams.attach.output.resubscribe(), tty, opts));
    let exited = streams.exited.clone();
    Ok(hijack(req, content_type, move |conn| pump(conn, streams.attach, Some(exited)), fallback))
}

/// `GET /exec/{id}/json` (ExecInspect).
pub async fn exec_inspect(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<Json<ExecInspect>> {
    Ok(Json(svc.containers.exec_inspect(&id).await?))
}

fn size(query: &QueryPairs) -> ApiResult<(u32, u32)> {
    let dim = |key: &str| -> ApiResult<u32> {
        let v = query.int(key)?.unwrap_or(0);
        u32::try_from(v).map_err(|_| ApiError::BadRequest(format!("invalid {key} value: {v}")))
    };
    Ok((dim("h")?, dim("w")?))
}

/// `POST /exec/{id}/resize` (ExecResize).
pub async fn exec_resize(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    let (h, w) = size(&query)?;
    svc.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `POST /containers/{id}/resize` (ContainerResize).
pub async fn container_resize(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    let (h, w) = size(&query)?;
    svc.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}
