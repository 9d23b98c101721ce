//! The route table: every Docker Engine endpoint, with what serves it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, on, post, MethodFilter};
use axum::Router;

use super::error::ApiError;
use super::routes::{archive, attach, auth, build, containers, events, exec, images, networks, swarm, system, unimplemented::not_implemented_yet, volumes};
use super::version::{self, Version};
use crate::services::Services;

/// Endpoints of the Docker Engine API that berthd does not serve yet, by the
/// issue that will build them. Each answers 501.
const NOT_YET: &[(&str, &str)] = &[
    // containers (issue 4), streams (issue 5), filesystems (issue 7)
    ("GET", "/containers/{id}/attach/ws"),
    // swarm mode: forming or joining a swarm is not supported
    ("POST", "/swarm/init"),
    ("POST", "/swarm/join"),
    // managed plugins
    ("GET", "/plugins/privileges"),
    ("POST", "/plugins/pull"),
    ("GET", "/plugins/{name}/json"),
    ("DELETE", "/plugins/{name}"),
    ("POST", "/plugins/{name}/enable"),
    ("POST", "/plugins/{name}/disable"),
    ("POST", "/plugins/{name}/upgrade"),
    ("POST", "/plugins/create"),
    ("POST", "/plugins/{name}/push"),
    ("POST", "/plugins/{name}/set"),
];

/// Swarm-manager endpoints: 503 "This node is not a swarm manager".
const SWARM_MANAGER: &[(&str, &str)] = &[
    ("GET", "/swarm"),
    ("POST", "/swarm/update"),
    ("GET", "/swarm/unlockkey"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{id}"),
    ("DELETE", "/nodes/{id}"),
    ("POST", "/nodes/{id}/update"),
    ("GET", "/services"),
    ("POST", "/services/create"),
    ("GET", "/services/{id}"),
    ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"),
    ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("GET", "/secrets/{id}"),
    ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"),
    ("POST", "/configs/create"),
    ("GET", "/configs/{id}"),
    ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
];

fn method_filter(method: &str) -> MethodFilter {
    match method {
        "GET" => MethodFilter::GET,
        "HEAD" => MethodFilter::HEAD,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        other => unreachable!("no Docker endpoint uses {other}"),
    }
}

/// The whole API as one service: version negotiation around routing.
pub fn build(services: Services) -> Router {
    let mut router = Router::new()
        .route("/_ping", get(system::system_ping).head(system::system_ping_head))
        .route("/version", get(system::system_version))
        .route("/info", get(system::system_info))
        .route("/system/df", get(system::system_data_usage))
        .route("/plugins", get(system::plugin_list))
        .route("/events", get(events::system_events))
        .route("/networks", get(networks::network_list))
        .route("/networks/create", post(networks::network_create))
        .route("/networks/prune", post(networks::network_prune))
        .route("/networks/{id}", get(networks::network_inspect).delete(networks::network_delete))
        .route("/networks/{id}/connect", post(networks::network_connect))
        .route("/networks/{id}/disconnect", post(networks::network_disconnect))
        .route("/containers/json", get(containers::container_list))
        .route("/containers/create", post(containers::container_create))
        .route("/containers/{id}/json", get(containers::container_inspect))
        .route("/containers/{id}/start", post(containers::container_start))
        .route("/containers/{id}/stop", post(containers::container_stop))
        .route("/containers/{id}/restart", post(containers::container_restart))
        .route("/containers/{id}/kill", post(containers::container_kill))
        .route("/containers/{id}/pause", post(containers::container_pause))
        .route("/containers/{id}/unpause", post(containers::container_unpause))
        .route("/containers/{id}/wait", post(containers::container_wait))
        .route("/containers/{id}/attach", post(attach::container_attach))
        .route("/containers/{id}/logs", get(containers::container_logs))
        .route("/containers/{id}/top", get(containers::container_top))
        .route("/containers/{id}/stats", get(containers::container_stats))
        .route("/containers/{id}/resize", post(exec::container_resize))
        .route("/containers/{id}/exec", post(exec::container_exec))
        .route("/exec/{id}/start", post(exec::exec_start))
        .route("/exec/{id}/resize", post(exec::exec_resize))
        .route("/exec/{id}/json", get(exec::exec_inspect))
        .route("/containers/{id}", delete(containers::container_delete))
        .route("/containers/{id}/{alias}", delete(containers::container_delete_link))
        .route("/containers/{id}/rename", post(containers::container_rename))
        .route("/containers/{id}/update", post(containers::container_update))
        .route("/containers/prune", post(containers::container_prune))
        .route("/commit", post(containers::image_commit))
        .route("/build", post(build::image_build))
        .route("/build/prune", post(build::build_prune))
        .route("/build/cancel", post(build::build_cancel))
        .route("/session", post(build::buildkit_unavailable))
        .route("/grpc", post(build::buildkit_unavailable))
        .route(
            "/containers/{id}/archive",
            get(archive::container_archive).head(archive::container_archive_info).put(archive::put_container_archive),
        )
        .route("/containers/{id}/export", get(archive::container_export))
        .route("/containers/{id}/changes", get(archive::container_changes))
        .route("/volumes", get(volumes::volume_list))
        .route("/volumes/create", post(volumes::volume_create))
        .route("/volumes/prune", post(volumes::volume_prune))
        .route(
            "/volumes/{name}",
            get(volumes::volume_inspect).put(volumes::volume_update).delete(volumes::volume_delete),
        )
        .route("/swarm/leave", post(swarm::not_in_swarm))
        .route("/swarm/unlock", post(swarm::not_in_swarm))
        .route("/images/json", get(images::image_list))
        .route("/images/prune", post(images::image_prune))
        .route("/images/load", post(images::image_load))
        .route("/images/get", get(images::image_get_all))
        .route("/images/create", post(images::image_create))
        .route("/images/search", get(images::image_search))
        .route("/distribution/{*rest}", get(images::distribution_inspect))
        .route("/auth", post(auth::system_auth))
        // Names hold slashes: the handlers split the trailing verb off.
        .route(
            "/images/{*rest}",
            get(images::image_get_dispatch).post(images::image_post_dispatch).delete(images::image_delete),
        );
    for (method, path) in SWARM_MANAGER {
        router = router.route(path, on(method_filter(method), swarm::not_a_manager));
    }
    for (method, path) in NOT_YET {
        router = router.route(path, on(method_filter(method), not_implemented_yet));
    }
    let api = router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::RouteNotFound })
        .layer(middleware::from_fn(trace_request))
        .with_state(services);
    // Negotiation must see the path before routing does, so it wraps the
    // finished router instead of being one of its layers.
    Router::new().fallback_service(api).layer(middleware::from_fn(version::negotiate))
}

/// Every request: counted and timed for the metrics endpoint, and logged at
/// debug level (method, path, query with secret-bearing values hidden,
/// route, API version, status, time). Bodies and headers, where
/// credentials and environment values travel, are never logged.
async fn trace_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let version = req.extensions().get::<Version>().map(|v| v.0.to_string());
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(redact_query);
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let route = route.as_deref().unwrap_or("-");
    crate::services::metrics::METRICS.request(method.as_str(), route, response.status().as_u16(), elapsed);
    tracing::debug!(
        http.method = %method,
        http.path = %path,
        http.query = query.as_deref().unwrap_or(""),
        http.route = route,
        api.version = version.as_deref().unwrap_or("-"),
        http.status = response.status().as_u16(),
        duration_ms = elapsed.as_millis() as u64,
        "request"
    );
    response
}

/// Query parameters that can carry secrets: build arguments (often tokens)
/// and anything named like a credential.
fn secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["buildargs", "auth", "password", "secret", "token", "env"].iter().any(|s| key.contains(s))
}

/// The query string with the values of secret-bearing parameters replaced.
fn redact_query(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| if secret_param(&k) { format!("{k}=<hidden>") } else { format!("{k}={v}") })
        .collect::<Vec<_>>()
        .join("&")
}
