//! `POST /build` (the classic builder), `POST /build/prune`, and the
//! BuildKit endpoints, which say BuildKit is not here.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use api_types::image::JsonMessage;

use crate::backends::registry::Platform;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::QueryPairs;
use crate::services::build::{BuildError, BuildOptions};
use crate::services::{ServiceError, Services};

fn json_param<T: serde::de::DeserializeOwned + Default>(query: &QueryPairs, key: &str) -> Result<T, ApiError> {
    match query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_str(v).map_err(|e| ApiError::BadRequest(format!("failed to parse {key}: {e}"))),
    }
}

fn line(value: &impl serde::Serialize) -> bytes::Bytes {
    let mut l = serde_json::to_vec(value).unwrap_or_default();
    l.extend_from_slice(b"\r\n");
    l.into()
}

fn error_line(e: &BuildError) -> bytes::Bytes {
    let mut detail = serde_json::json!({ "message": e.message });
    if let Some(code) = e.code {
        detail["code"] = code.into();
    }
    line(&serde_json::json!({ "errorDetail": detail, "error": e.message }))
}

/// `POST /build` (ImageBuild): a JSON message stream. Errors before the
/// first message are the HTTP answer, as dockerd's.
pub async fn image_build(State(svc): State<Services>, query: QueryPairs, body: Body) -> ApiResult<Response> {
    if query.get("version") == Some("2") {
        return Err(ServiceError::NotImplemented(
            "BuildKit is not available in berthd: use the classic builder (DOCKER_BUILDKIT=0)".into(),
        )
        .into());
    }
    let flag = |k: &str| query.bool(k);
    let opts = BuildOptions {
        dockerfile: query.get("dockerfile").unwrap_or_default().to_string(),
        tags: query.all("t").filter(|t| !t.is_empty()).map(str::to_string).collect(),
        quiet: flag("q"),
        no_cache: flag("nocache"),
        cache_from: json_param::<Vec<String>>(&query, "cachefrom")?,
        // dockerd removes intermediate containers unless told not to.
        remove: query.get("rm").is_none_or(|v| v.is_empty()) || flag("rm"),
        force_remove: flag("forcerm"),
        pull: flag("pull"),
        build_args: json_param::<BTreeMap<String, Option<String>>>(&query, "buildargs")?,
        labels: json_param::<BTreeMap<String, String>>(&query, "labels")?,
        target: query.get("target").unwrap_or_default().to_string(),
        network_mode: query.get("networkmode").unwrap_or_default().to_string(),
        remote: query.get("remote").unwrap_or_default().to_string(),
        build_id: query.get("buildid").unwrap_or_default().to_string(),
        platform: match query.get("platform").filter(|p| !p.is_empty()) {
            Some(p) => Some(Platform::parse(p).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?),
            None => None,
        },
        run_host_config: run_host_config(&query)?,
    };
    svc.build.validate(&opts)?;
    let (tx, mut rx) = mpsc::channel::<JsonMessage>(64);
    let input = body.into_data_stream().map(|r| r.map_err(std::io::Error::other));
    let build = svc.build.clone();
    let task = tokio::spawn(async move { build.build(input, opts, tx).await });
    let Some(first) = rx.recv().await else {
        // Finished (or failed) before saying anything.
        return match task.await {
            Ok(Ok(())) => Ok(([(CONTENT_TYPE, "application/json")], Body::empty()).into_response()),
            Ok(Err(e)) => Err(e.service.unwrap_or(ServiceError::InvalidParameter(e.message)).into()),
            Err(e) => Err(ServiceError::Internal(format!("build failed: {e}")).into()),
        };
    };
    let messages = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (line(&m), rx)) });
    let outcome = futures_util::stream::once(async move {
        match task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(error_line(&e)),
            Err(e) => Some(error_line(&BuildError { message: format!("build failed: {e}"), code: None, service: None })),
        }
    })
    .filter_map(|x| async move { x });
    let stream = futures_util::stream::once(async move { line(&first) })
        .chain(messages)
        .chain(outcome)
        .map(Ok::<_, std::io::Error>);
    Ok(([(CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

/// The RUN containers' limits and host settings from the query.
fn run_host_config(query: &QueryPairs) -> Result<api_types::container::HostConfig, ApiError> {
    let mut hc = api_types::container::HostConfig {
        memory: query.int("memory")?.unwrap_or(0),
        memory_swap: query.int("memswap")?.unwrap_or(0),
        cpu_shares: query.int("cpushares")?.unwrap_or(0),
        ..Default::default()
    };
    for (param, key) in [("cpuperiod", "CpuPeriod"), ("cpuquota", "CpuQuota"), ("shmsize", "ShmSize")] {
        if let Some(v) = query.int(param)?.filter(|v| *v != 0) {
            hc.other.insert(key.into(), v.into());
        }
    }
    for (param, key) in [("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems")] {
        if let Some(v) = query.get(param).filter(|v| !v.is_empty()) {
            hc.other.insert(key.into(), v.into());
        }
    }
    let hosts: Vec<String> = query.all("extrahosts").filter(|h| !h.is_empty()).map(str::to_string).collect();
    if !hosts.is_empty() {
        hc.other.insert("ExtraHosts".into(), hosts.into());
    }
    Ok(hc)
}

/// `POST /build/prune` (BuildPrune): the builder's cached step images.
pub async fn build_prune(State(svc): State<Services>) -> ApiResult<Json<serde_json::Value>> {
    let (deleted, reclaimed) = svc.build.prune().await?;
    Ok(Json(serde_json::json!({ "CachesDeleted": deleted, "SpaceReclaimed": reclaimed })))
}

/// `POST /build/cancel?id=`: stop the build started with that `buildid`
/// (an unknown ID is no error, as with dockerd).
pub async fn build_cancel(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Response> {
    let Some(id) = query.get("id").filter(|id| !id.is_empty()) else {
        return Err(ServiceError::InvalidParameter("build ID not provided".into()).into());
    };
    svc.build.cancel(id);
    Ok(Body::empty().into_response())
}

/// `POST /session` and `POST /grpc`: BuildKit's, which berthd has not.
pub async fn buildkit_unavailable() -> ApiError {
    ServiceError::NotImplemented("BuildKit is not available in berthd: use the classic builder (DOCKER_BUILDKIT=0)".into()).into()
}
