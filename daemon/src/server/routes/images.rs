//! Image routes. Names contain slashes (`library/busybox`,
//! `127.0.0.1:5000/a/b:tag`), which a path parameter cannot match, so
//! `/images/{*rest}` is routed here and the trailing verb split off by
//! `split_image_path`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use api_types::image::JsonMessage;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::QueryPairs;
use crate::server::version::Version;
use crate::backends::registry::{Credentials, Platform};
use crate::services::dockerfile::apply_changes;
use crate::services::images::auth::AuthConfig;
use crate::services::images::{
    new_image_reference, parse_reference, ImageListOptions, ImportOptions, ImagePruneOptions, ImageRemoveOptions, LoadOptions, Progress, PullOptions,
    PushOptions,
};
use crate::services::{ServiceError, Services};

/// The credentials in `X-Registry-Auth`; never logged.
fn registry_credentials(headers: &HeaderMap) -> Credentials {
    AuthConfig::from_header(headers.get("x-registry-auth").and_then(|v| v.to_str().ok())).credentials()
}

/// A transfer whose progress is the answer. Until its first message an
/// error is the HTTP answer (status and `{"message"}`), as with dockerd's
/// unflushed output; after it, errors arrive inside the stream. The
/// transfer stops when the client hangs up.
async fn progress_answer<F, Fut>(work: F) -> ApiResult<Response>
where
    F: FnOnce(Progress) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<JsonMessage>(64);
    let task = tokio::spawn(work(Progress::new(tx)));
    let Some(first) = rx.recv().await else {
        return match task.await {
            Ok(Ok(())) => Ok(([(CONTENT_TYPE, "application/json")], Body::empty()).into_response()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(ServiceError::Internal(format!("transfer failed: {e}")).into()),
        };
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let stream = futures_util::stream::once(async move { first }).chain(rest).map(|m| Ok::<_, std::io::Error>(encode(&m)));
    Ok(([(CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

/// `POST /images/create` (ImageCreate): pull with `fromImage`, import with
/// `fromSrc`.
pub async fn image_create(
    State(svc): State<Services>,
    Version(v): Version,
    headers: HeaderMap,
    query: QueryPairs,
    body: Body,
) -> ApiResult<Response> {
    let last = |key: &str| query.all(key).last().unwrap_or_default().to_string();
    let from_image = last("fromImage");
    let platform_query = last("platform");
    let platform = if v >= api_types::version::ApiVersion::new(1, 32) && !platform_query.is_empty() {
        Some(Platform::parse(&platform_query).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?)
    } else {
        None
    };
    if from_image.is_empty() {
        return image_import(svc, &query, platform, body).await;
    }
    // `pull -a` may send a trailing ':'.
    let mut reference = parse_reference(from_image.trim_end_matches(':'))?;
    let tag = last("tag");
    if !tag.is_empty() {
        reference = match api_types::reference::Digest::parse(&tag) {
            Ok(digest) => reference.with_digest(&digest),
            Err(_) => reference.with_tag(&tag).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?,
        };
    }
    let reference = reference.docker_ref();
    let opts = PullOptions { reference, platform, credentials: registry_credentials(&headers) };
    progress_answer(move |progress| async move { svc.images.pull(opts, &progress).await }).await
}

/// `fromSrc`: `docker import`, checked as dockerd checks it (name, then
/// changes) before the body is read.
async fn image_import(svc: Services, query: &QueryPairs, platform: Option<Platform>, body: Body) -> ApiResult<Response> {
    let last = |key: &str| query.all(key).last().unwrap_or_default().to_string();
    let checked = (|| {
        let source = last("fromSrc");
        if source.is_empty() {
            return Err(ServiceError::InvalidParameter("fromImage or fromSrc is required".into()));
        }
        let names = new_image_reference(&last("repo"), &last("tag"), "import")?.into_iter().collect();
        let changes: Vec<String> = query.all("changes").filter(|c| !c.trim().is_empty()).map(str::to_string).collect();
        let config = apply_changes(Default::default(), &changes)?;
        let platform = platform.map(|p| crate::services::images::Platform { os: p.os, architecture: p.architecture, variant: p.variant });
        Ok(ImportOptions { source, names, message: last("message"), config, platform })
    })();
    let mut input = body.into_data_stream().map(|r| r.map_err(std::io::Error::other));
    let opts = match checked {
        Ok(opts) => opts,
        Err(e) => {
            // Read what the client is still sending (the tar it streams):
            // closing on unread data resets the connection, and the CLI
            // would see a broken pipe instead of this answer.
            let mut left = DRAIN_LIMIT;
            while let Some(Ok(chunk)) = input.next().await {
                left = left.saturating_sub(chunk.len());
                if left == 0 {
                    break;
                }
            }
            return Err(e.into());
        }
    };
    progress_answer(move |progress| async move { svc.images.import(input, opts, &progress).await }).await
}

/// How much of a refused import's body is read before answering.
const DRAIN_LIMIT: usize = 1 << 30;

/// `GET /images/search` (ImageSearch).
pub async fn image_search(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Response> {
    let term = query.all("term").last().unwrap_or_default();
    let limit = query.int("limit")?.filter(|l| *l > 0).unwrap_or(25);
    svc.images.search(term, limit.min(100) as u32)?;
    Ok(Json(Vec::<serde_json::Value>::new()).into_response())
}

/// `GET /distribution/{name}/json` (DistributionInspect).
pub async fn distribution_inspect(
    State(svc): State<Services>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    match split_image_path(&rest, &["json"]) {
        (name, Some("json")) => {
            Ok(Json(svc.images.distribution_inspect(name, &registry_credentials(&headers)).await?).into_response())
        }
        _ => Err(ApiError::RouteNotFound),
    }
}

/// `library/busybox/json` → (`library/busybox`, `Some("json")`), when the
/// last segment is one of `verbs`; otherwise the whole path is the name.
pub fn split_image_path<'a>(rest: &'a str, verbs: &[&str]) -> (&'a str, Option<&'a str>) {
    let rest = rest.trim_start_matches('/');
    match rest.rsplit_once('/') {
        Some((name, verb)) if !name.is_empty() && verbs.contains(&verb) => (name, Some(verb)),
        _ => (rest, None),
    }
}

/// dockerd's `BoolValue`: anything but empty, `0`, `no`, `false`, `none`.
fn bool_value(query: &QueryPairs, key: &str) -> Option<bool> {
    query.all(key).last().map(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none"))
}

/// The `filters` parameter: `{"key":["v"]}` or the old `{"key":{"v":true}}`.
pub fn parse_filters(query: &QueryPairs) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let Some(raw) = query.all("filters").last().filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| ApiError::BadRequest(format!("invalid filter: {e}")))?;
    let map = value.as_object().ok_or_else(|| ApiError::BadRequest("invalid filter: not a JSON object".into()))?;
    let mut out = BTreeMap::new();
    for (key, values) in map {
        let list: Vec<String> = match values {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            serde_json::Value::Object(o) => o.iter().filter(|(_, on)| on.as_bool() == Some(true)).map(|(k, _)| k.clone()).collect(),
            _ => return Err(ApiError::BadRequest(format!("invalid filter: values of '{key}' must be a list"))),
        };
        out.insert(key.clone(), list);
    }
    Ok(out)
}

/// `GET /images/json` (ImageList).
pub async fn image_list(
    State(svc): State<Services>,
    Version(v): Version,
    query: QueryPairs,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let mut filters = parse_filters(&query)?;
    if v < api_types::version::ApiVersion::new(1, 25) {
        if let Some(f) = query.all("filter").last().filter(|f| !f.is_empty()) {
            filters.entry("reference".into()).or_default().push(f.to_string());
        }
    }
    let opts = ImageListOptions {
        all: bool_value(&query, "all").unwrap_or(false),
        filters,
        shared_size: v >= api_types::version::ApiVersion::new(1, 42) && bool_value(&query, "shared-size").unwrap_or(false),
    };
    let list = svc.images.list(&opts).await?;
    Ok(Json(list.into_iter().map(|s| s.for_version(v)).collect()))
}

/// `GET /images/{name}/json|history|get`.
pub async fn image_get_dispatch(
    State(svc): State<Services>,
    Version(v): Version,
    Path(rest): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    match split_image_path(&rest, &["json", "history", "get"]) {
        (name, Some("json")) => Ok(Json(svc.images.inspect(name).await?.for_version(v)).into_response()),
        (name, Some("history")) => Ok(Json(svc.images.history(name).await?).into_response()),
        (name, Some("get")) => image_save(&svc, vec![name.to_string()]).await,
        _ => {
            let _ = query;
            Err(ApiError::RouteNotFound)
        }
    }
}

/// `POST /images/{name}/tag|push`.
pub async fn image_post_dispatch(
    State(svc): State<Services>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> ApiResult<Response> {
    match split_image_path(&rest, &["tag", "push"]) {
        (name, Some("tag")) => {
            let repo = query.all("repo").last().unwrap_or_default();
            svc.images.tag(name, repo, query.all("tag").last()).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        (name, Some("push")) => {
            let mut reference = parse_reference(name)?;
            if let Some(tag) = query.all("tag").last().filter(|t| !t.is_empty()) {
                reference = reference.with_tag(tag).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
            }
            let opts = PushOptions { reference, credentials: registry_credentials(&headers) };
            progress_answer(move |progress| async move { svc.images.push(opts, &progress).await }).await
        }
        _ => Err(ApiError::RouteNotFound),
    }
}

/// `DELETE /images/{name}` (ImageDelete).
pub async fn image_delete(
    State(svc): State<Services>,
    Path(name): Path<String>,
    query: QueryPairs,
) -> ApiResult<Json<Vec<api_types::image::ImageDeleteResponseItem>>> {
    let opts = ImageRemoveOptions {
        force: bool_value(&query, "force").unwrap_or(false),
        no_prune: bool_value(&query, "noprune").unwrap_or(false),
    };
    let users = svc.containers.image_users().await;
    Ok(Json(svc.images.remove(name.trim_start_matches('/'), opts, &users).await?))
}

/// `POST /images/prune` (ImagePrune).
pub async fn image_prune(
    State(svc): State<Services>,
    query: QueryPairs,
) -> ApiResult<Json<api_types::image::ImagesPruneResponse>> {
    let opts = ImagePruneOptions { filters: parse_filters(&query)? };
    let users = svc.containers.image_users().await;
    Ok(Json(svc.images.prune(&opts, &users).await?))
}

/// `GET /images/get?names=…` (ImageGetAll).
pub async fn image_get_all(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Response> {
    let names: Vec<String> = query.all("names").map(str::to_string).collect();
    image_save(&svc, names).await
}

async fn image_save(svc: &Services, names: Vec<String>) -> ApiResult<Response> {
    let plan = svc.images.save_plan(&names).await?;
    let stream = svc.images.save_stream(plan).map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
    Ok(([(CONTENT_TYPE, "application/x-tar")], Body::from_stream(stream)).into_response())
}

fn encode(message: &JsonMessage) -> bytes::Bytes {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.extend_from_slice(b"\r\n");
    line.into()
}

/// `POST /images/load` (ImageLoad): a JSON message stream; errors arrive
/// inside it, as with dockerd.
pub async fn image_load(State(svc): State<Services>, query: QueryPairs, body: Body) -> Response {
    let opts = LoadOptions { quiet: bool_value(&query, "quiet").unwrap_or(true) };
    let (tx, rx) = mpsc::channel::<JsonMessage>(16);
    let input = body.into_data_stream().map(|r| r.map_err(std::io::Error::other));
    tokio::spawn(async move {
        if let Err(e) = svc.images.load(input, opts, &tx).await {
            tracing::debug!(error = %e, "image load failed");
            let _ = tx.send(JsonMessage::error(e.to_string())).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|m| (Ok::<_, std::io::Error>(encode(&m)), rx))
    });
    ([(CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_split_at_the_trailing_verb() {
        let verbs = ["json", "history", "get"];
        assert_eq!(split_image_path("busybox/json", &verbs), ("busybox", Some("json")));
        assert_eq!(split_image_path("library/busybox/json", &verbs), ("library/busybox", Some("json")));
        assert_eq!(
            split_image_path("127.0.0.1:5000/a/b:tag/history", &verbs),
            ("127.0.0.1:5000/a/b:tag", Some("history"))
        );
        assert_eq!(split_image_path("sha256:abcd/get", &verbs), ("sha256:abcd", Some("get")));
        assert_eq!(split_image_path("busybox", &verbs), ("busybox", None));
        assert_eq!(split_image_path("/json", &verbs), ("json", None));
        assert_eq!(split_image_path("a/tag", &verbs), ("a/tag", None));
        assert_eq!(split_image_path("json/json", &verbs), ("json", Some("json")));
    }

    #[test]
    fn filters_accept_both_encodings() {
        let q = QueryPairs(vec![("filters".into(), r#"{"dangling":["true"],"label":{"a=b":true}}"#.into())]);
        let f = parse_filters(&q).unwrap();
        assert_eq!(f["dangling"], vec!["true"]);
        assert_eq!(f["label"], vec!["a=b"]);
        let bad = QueryPairs(vec![("filters".into(), "{".into())]);
        assert!(parse_filters(&bad).is_err());
    }
}
