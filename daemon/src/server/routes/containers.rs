//! Container routes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;

use api_types::container::{ContainerCreateRequest, ContainerCreateResponse, ContainerInspect};
use api_types::filters::Filters;
use api_types::version::ApiVersion;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{DockerJson, QueryPairs};
use crate::server::stream::{log_chunk, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::server::version::Version;
use crate::services::containers::{
    CommitOptions,
    CreateOptions, ListOptions, LogsOptions, WaitCondition,
};
use crate::services::{ServiceError, Services};

/// `POST /containers/create` (ContainerCreate).
pub async fn container_create(
    State(svc): State<Services>,
    Version(v): Version,
    query: QueryPairs,
    DockerJson(body): DockerJson<Option<ContainerCreateRequest>>,
) -> ApiResult<(StatusCode, Json<ContainerCreateResponse>)> {
    let mut body = body.ok_or_else(|| {
        ApiError::BadRequest("config cannot be empty in order to create a container".into())
    })?;
    if v >= ApiVersion::new(1, 42) {
        // API 1.42 dropped KernelMemory; dockerd ignores what newer clients send.
        body.host_config.other.remove("KernelMemory");
    }
    let mounts = body.host_config.mounts.iter().flatten();
    if v < ApiVersion::new(1, 45) && mounts.filter_map(|m| m.volume_options.as_ref()).any(|o| !o.subpath.is_empty()) {
        return Err(ApiError::BadRequest("VolumeOptions.Subpath needs API v1.45 or newer".into()));
    }
    let name = query.get("name").map(str::to_string);
    let created = svc.containers.create(CreateOptions { name, body }).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /containers/json` (ContainerList).
pub async fn container_list(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Response> {
    let filters = Filters::parse(query.get("filters").unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let opts = ListOptions { all: query.bool("all"), limit, filters, size: query.bool("size") };
    let body = svc.containers.list_json(opts).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /containers/{id}/json` (ContainerInspect).
pub async fn container_inspect(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Json<ContainerInspect>> {
    if query.bool("size") {
        return Ok(Json(svc.containers.inspect_with_size(&id).await?));
    }
    Ok(Json(svc.containers.inspect(&id).await?))
}

/// `POST /containers/{id}/start` (ContainerStart).
pub async fn container_start(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    svc.containers.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/stop` (ContainerStop).
pub async fn container_stop(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    let timeout = query.int("t")?;
    svc.containers.stop(&id, query.get("signal").filter(|s| !s.is_empty()), timeout).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/restart` (ContainerRestart).
pub async fn container_restart(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    let timeout = query.int("t")?;
    svc.containers.restart(&id, query.get("signal").filter(|s| !s.is_empty()), timeout).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill` (ContainerKill).
pub async fn container_kill(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    svc.containers.kill(&id, query.get("signal").filter(|s| !s.is_empty())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/pause` (ContainerPause).
pub async fn container_pause(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    svc.containers.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/unpause` (ContainerUnpause).
pub async fn container_unpause(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    svc.containers.unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}` (ContainerDelete).
pub async fn container_delete(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    if query.bool("link") {
        svc.containers.remove_link(&id).await?;
    } else {
        svc.containers.remove(&id, query.bool("force"), query.bool("v")).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{parent}/{alias}`: a link name (`docker rm --link`);
/// anything else by that name is no container.
pub async fn container_delete_link(
    State(svc): State<Services>,
    Path((parent, alias)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<StatusCode> {
    let name = format!("{parent}/{alias}");
    if !query.bool("link") {
        return Err(ServiceError::NotFound(format!("No such container: {name}")).into());
    }
    svc.containers.remove_link(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/wait` (ContainerWait). Headers go out at once;
/// the body follows when the condition is met.
pub async fn container_wait(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Response> {
    let condition = WaitCondition::parse(query.get("condition").unwrap_or_default())?;
    let done = svc.containers.wait(&id, condition)?;
    let body = futures_util::stream::once(async move {
        let result = done.await;
        let mut json = serde_json::to_vec(&result).unwrap_or_default();
        json.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(json))
    });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}

/// `GET /containers/{id}/logs` (ContainerLogs).
pub async fn container_logs(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Response> {
    let opts = LogsOptions {
        stdout: query.bool("stdout"),
        stderr: query.bool("stderr"),
        follow: query.bool("follow"),
        timestamps: query.bool("timestamps"),
        details: query.bool("details"),
        since: query.get("since").map(unix_nanos).transpose()?.filter(|n| *n > 0),
        until: query.get("until").map(unix_nanos).transpose()?.filter(|n| *n > 0),
        // As dockerd: anything but a count ≥ 0 ("all", "-1", "abc") is all.
        tail: query.get("tail").and_then(|n| n.parse::<i64>().ok()).and_then(|n| usize::try_from(n).ok()),
    };
    let (tty, lines) = svc.containers.logs(&id, opts).await?;
    let body = lines.map(move |batch| Ok::<_, std::io::Error>(log_chunk(batch, tty)));
    let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response())
}

/// Docker's `since`/`until`: Unix seconds with an optional `.nanoseconds`.
fn unix_nanos(text: &str) -> ApiResult<i64> {
    let bad = || ApiError::BadRequest(format!("failed to parse value as time or duration: {text:?}"));
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let frac = if frac.is_empty() { 0 } else { format!("{frac:0<9}")[..9].parse::<i64>().map_err(|_| bad())? };
    Ok(secs * 1_000_000_000 + frac)
}

/// `POST /containers/{id}/rename` (ContainerRename).
pub async fn container_rename(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    svc.containers.rename(&id, query.get("name").unwrap_or_default()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/update` (ContainerUpdate).
pub async fn container_update(
    State(svc): State<Services>,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<Option<api_types::container::ContainerUpdateRequest>>,
) -> ApiResult<Json<api_types::container::ContainerUpdateResponse>> {
    Ok(Json(svc.containers.update(&id, body.unwrap_or_default()).await?))
}

/// `POST /containers/prune` (ContainerPrune).
pub async fn container_prune(
    State(svc): State<Services>,
    query: QueryPairs,
) -> ApiResult<Json<api_types::container::ContainerPruneResponse>> {
    let filters = Filters::parse(query.get("filters").unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(svc.containers.prune(&filters).await?))
}

/// `GET /containers/{id}/top` (ContainerTop).
pub async fn container_top(
    State(svc): State<Services>,
    Path(id): Path<String>,
    query: QueryPairs,
) -> ApiResult<Json<api_types::container::TopResponse>> {
    Ok(Json(svc.containers.top(&id, query.get("ps_args").unwrap_or_default()).await?))
}

/// `POST /commit` (ImageCommit): 201 with the new image's ID.
pub async fn image_commit(
    State(svc): State<Services>,
    query: QueryPairs,
    DockerJson(config): DockerJson<Option<api_types::container::ContainerConfig>>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let text = |k: &str| query.get(k).unwrap_or_default().to_string();
    // Since API 1.13 an absent `pause` means pause.
    let pause = query.get("pause").is_none_or(|v| v.is_empty()) || query.bool("pause");
    let opts = CommitOptions {
        container: text("container"),
        repo: text("repo"),
        tag: text("tag"),
        comment: text("comment"),
        author: text("author"),
        pause,
        changes: query.all("changes").filter(|c| !c.trim().is_empty()).map(str::to_string).collect(),
        config,
    };
    let id = svc.containers.commit(opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))))
}

/// `GET /containers/{id}/stats` (ContainerStats): one JSON document per
/// sample, each flushed as it is made.
pub async fn container_stats(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Response> {
    // `stream` defaults to true; `one-shot` only applies without it.
    let stream = query.get("stream").is_none_or(|_| query.bool("stream"));
    let opts = crate::services::containers::StatsOptions { stream, one_shot: query.bool("one-shot") };
    let samples = svc.containers.stats(&id, opts).await?;
    let body = samples.map(|sample| {
        let mut json = serde_json::to_vec(&sample).unwrap_or_default();
        json.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(json))
    });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}
