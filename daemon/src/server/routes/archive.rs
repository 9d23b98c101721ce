//! Container filesystem routes: `docker cp` (archive HEAD/GET/PUT),
//! `docker export` and `docker diff`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use futures_util::StreamExt;

use crate::backends::rootfs::PathStat;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::QueryPairs;
use crate::services::containers::{ExtractToDirOptions, TarStream};
use crate::services::Services;

const PATH_STAT: &str = "X-Docker-Container-Path-Stat";

fn stat_header(stat: &PathStat) -> ApiResult<HeaderValue> {
    let json = serde_json::to_vec(stat).map_err(|e| ApiError::from(crate::services::ServiceError::Internal(e.to_string())))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&encoded).map_err(|e| ApiError::from(crate::services::ServiceError::Internal(e.to_string())))
}

fn tar_body(rx: TarStream) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) }))
}

/// `HEAD /containers/{id}/archive` (ContainerArchiveInfo).
pub async fn container_archive_info(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Response> {
    let stat = svc.containers.archive_stat(&id, query.get("path").unwrap_or_default()).await?;
    let mut headers = HeaderMap::new();
    headers.insert(PATH_STAT, stat_header(&stat)?);
    Ok((StatusCode::OK, headers).into_response())
}

/// `GET /containers/{id}/archive` (ContainerArchive).
pub async fn container_archive(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Response> {
    let (stat, rx) = svc.containers.archive_get(&id, query.get("path").unwrap_or_default()).await?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    headers.insert(PATH_STAT, stat_header(&stat)?);
    Ok((headers, tar_body(rx)).into_response())
}

/// `PUT /containers/{id}/archive` (PutContainerArchive).
pub async fn put_container_archive(
    State(svc): State<Services>,
    Path(id): Path<String>,
    query: QueryPairs,
    body: Body,
) -> ApiResult<StatusCode> {
    let opts = ExtractToDirOptions {
        no_overwrite_dir_non_dir: query.bool("noOverwriteDirNonDir"),
        copy_uid_gid: query.bool("copyUIDGID"),
    };
    let stream = body.into_data_stream().map(|r| r.map_err(std::io::Error::other));
    svc.containers.archive_put(&id, query.get("path").unwrap_or_default(), opts, stream).await?;
    Ok(StatusCode::OK)
}

/// `GET /containers/{id}/export` (ContainerExport).
pub async fn container_export(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<Response> {
    let rx = svc.containers.export(&id).await?;
    Ok(([(CONTENT_TYPE, "application/x-tar")], tar_body(rx)).into_response())
}

/// `GET /containers/{id}/changes` (ContainerChanges): `null` when nothing
/// changed, as dockerd answers.
pub async fn container_changes(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    let changes = svc.containers.changes(&id).await?;
    if changes.is_empty() {
        return Ok(Json(serde_json::Value::Null));
    }
    Ok(Json(changes.iter().map(|c| serde_json::json!({"Path": c.path, "Kind": c.kind as u8})).collect()))
}
