//! System routes: ping, version, info, data usage, plugins.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use api_types::system::{SystemDataUsage, SystemInfo, SystemVersion};
use api_types::version::ApiVersion;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::QueryPairs;
use crate::server::version::Version;
use crate::services::system::DataUsageKinds;
use crate::services::Services;

/// The classic builder; BuildKit ("2") is not served.
const BUILDER_VERSION: &str = "1";

fn ping_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(HeaderName::from_static("builder-version"), HeaderValue::from_static(BUILDER_VERSION));
    headers.insert(HeaderName::from_static("swarm"), HeaderValue::from_static("inactive"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers
}

/// `GET /_ping` (SystemPing).
pub async fn system_ping() -> Response {
    (ping_headers(), "OK").into_response()
}

/// `HEAD /_ping` (SystemPingHead): the same headers, no body.
pub async fn system_ping_head() -> Response {
    (ping_headers(), "").into_response()
}

/// `GET /version` (SystemVersion).
pub async fn system_version(State(svc): State<Services>) -> ApiResult<Json<SystemVersion>> {
    Ok(Json(svc.system.version().await?))
}

/// `GET /info` (SystemInfo).
pub async fn system_info(State(svc): State<Services>) -> ApiResult<Json<SystemInfo>> {
    Ok(Json(svc.system.info().await?))
}

/// `GET /system/df` (SystemDataUsage).
pub async fn system_data_usage(
    State(svc): State<Services>,
    Version(v): Version,
    query: QueryPairs,
) -> ApiResult<Json<SystemDataUsage>> {
    // `type=` may repeat (API 1.42+): which object kinds to compute.
    let mut kinds = DataUsageKinds::NONE;
    if v >= ApiVersion::new(1, 42) {
        for kind in query.all("type") {
            if !kinds.add(kind) {
                return Err(ApiError::BadRequest(format!("unknown object type: {kind}")));
            }
        }
    }
    if kinds == DataUsageKinds::NONE {
        kinds = DataUsageKinds::ALL;
    }
    Ok(Json(svc.system.data_usage(kinds).await?))
}

/// `GET /plugins` (PluginList): berthd runs no managed plugins.
pub async fn plugin_list() -> Json<Vec<serde_json::Value>> {
    Json(vec![])
}
