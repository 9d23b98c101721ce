//! Network routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use api_types::filters::Filters;
use api_types::network::{Network, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkPruneResponse};

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{DockerJson, QueryPairs};
use crate::services::networks::{network_not_found, ListOptions};
use crate::services::Services;

fn filters(query: &QueryPairs) -> Result<Filters, ApiError> {
    Filters::parse(query.get("filters").unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `GET /networks` (NetworkList).
pub async fn network_list(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Json<Vec<Network>>> {
    Ok(Json(svc.networks.list(ListOptions { filters: filters(&query)? }).await?))
}

/// `GET /networks/{id}` (NetworkInspect).
/// `verbose` adds only swarm services, so a local network reads the same;
/// a `scope` other than `local` finds no network, as with dockerd.
pub async fn network_inspect(State(svc): State<Services>, Path(id): Path<String>, query: QueryPairs) -> ApiResult<Json<Network>> {
    if query.get("scope").is_some_and(|s| !s.is_empty() && s != "local") {
        return Err(network_not_found(&id).into());
    }
    Ok(Json(svc.networks.inspect(&id).await?))
}

/// `POST /networks/create` (NetworkCreate).
pub async fn network_create(
    State(svc): State<Services>,
    DockerJson(body): DockerJson<NetworkCreateRequest>,
) -> ApiResult<(StatusCode, Json<NetworkCreateResponse>)> {
    Ok((StatusCode::CREATED, Json(svc.networks.create(body).await?)))
}

/// `DELETE /networks/{id}` (NetworkDelete).
pub async fn network_delete(State(svc): State<Services>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    svc.networks.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /networks/{id}/connect` (NetworkConnect).
pub async fn network_connect(
    State(svc): State<Services>,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<NetworkConnectRequest>,
) -> ApiResult<StatusCode> {
    svc.containers.connect_network(&id, &body.container, body.endpoint_config.as_ref()).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/{id}/disconnect` (NetworkDisconnect).
pub async fn network_disconnect(
    State(svc): State<Services>,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<NetworkConnectRequest>,
) -> ApiResult<StatusCode> {
    svc.containers.disconnect_network(&id, &body.container, body.force).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/prune` (NetworkPrune).
pub async fn network_prune(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Json<NetworkPruneResponse>> {
    let deleted = svc.networks.prune(&filters(&query)?).await?;
    Ok(Json(NetworkPruneResponse { networks_deleted: (!deleted.is_empty()).then_some(deleted) }))
}
