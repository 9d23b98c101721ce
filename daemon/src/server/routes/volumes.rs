//! Volume routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use api_types::filters::Filters;
use api_types::version::ApiVersion;
use api_types::volume::{Volume, VolumeCreateOptions, VolumeListResponse, VolumePruneResponse};

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{DockerJson, QueryPairs};
use crate::server::version::Version;
use crate::services::{ServiceError, Services};

fn filters(query: &QueryPairs) -> ApiResult<Filters> {
    Filters::parse(query.get("filters").unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `GET /volumes` (VolumeList).
pub async fn volume_list(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Json<VolumeListResponse>> {
    Ok(Json(svc.volumes.list(&filters(&query)?)?))
}

/// `POST /volumes/create` (VolumeCreate).
pub async fn volume_create(
    State(svc): State<Services>,
    DockerJson(body): DockerJson<Option<VolumeCreateOptions>>,
) -> ApiResult<(StatusCode, Json<Volume>)> {
    let volume = svc.volumes.create(body.unwrap_or_default())?;
    Ok((StatusCode::CREATED, Json(volume)))
}

/// `GET /volumes/{name}` (VolumeInspect).
pub async fn volume_inspect(State(svc): State<Services>, Path(name): Path<String>) -> ApiResult<Json<Volume>> {
    Ok(Json(svc.volumes.inspect(&name)?))
}

/// `PUT /volumes/{name}` (VolumeUpdate): cluster volumes only, and this
/// node is not in a swarm. The body is read (and ignored) so the client's
/// write completes before the answer closes the connection.
pub async fn volume_update(_body: axum::body::Bytes) -> ApiError {
    ServiceError::Unavailable("volume update only valid for cluster volumes, but swarm is unavailable".into()).into()
}

/// `DELETE /volumes/{name}` (VolumeDelete).
pub async fn volume_delete(State(svc): State<Services>, Path(name): Path<String>, query: QueryPairs) -> ApiResult<StatusCode> {
    svc.volumes.remove(&name, query.bool("force")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /volumes/prune` (VolumePrune). Before API 1.42 every unused
/// volume goes; from 1.42 only anonymous ones unless `all=true`.
pub async fn volume_prune(
    State(svc): State<Services>,
    Version(v): Version,
    query: QueryPairs,
) -> ApiResult<Json<VolumePruneResponse>> {
    let all_by_default = v < ApiVersion::new(1, 42);
    Ok(Json(svc.volumes.prune(&filters(&query)?, all_by_default).await?))
}
