//! The route table: every Docker Engine endpoint, with what serves it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{on, MethodFilter};
use axum::Router;
use tower::Service;

use super::error::ApiError;
use super::routes::{archive, attach, auth, build, containers, events, exec, images, networks, swarm, system, unimplemented::not_implemented_yet, volumes};
use super::version::{Negotiate, Version};
use crate::services::Services;

/// How a route is answered: by a handler that does the work, or by one of
/// the refusals a dockerd in the same situation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Served,
    /// 501: not built (yet), named in the message.
    NotImplemented,
    /// 501: BuildKit's endpoints; berthd has the classic builder only.
    NoBuildKit,
    /// 503 "This node is not a swarm manager", as a dockerd outside a swarm.
    NotSwarmManager,
    /// 503 "This node is not part of a swarm".
    NotInSwarm,
}

/// The served routes, declared once: the router is built from this list and
/// [`routes`] hands the same list out as data (COMPAT.md's matrix is checked
/// against it).
macro_rules! served {
    ($($method:ident $path:literal => $handler:path;)*) => {
        const SERVED: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn add_served(router: Router<Services>) -> Router<Services> {
            router$(.route($path, on(method_filter(stringify!($method)), $handler)))*
        }
    };
}

served! {
    GET "/_ping" => system::system_ping;
    HEAD "/_ping" => system::system_ping_head;
    GET "/version" => system::system_version;
    GET "/info" => system::system_info;
    GET "/system/df" => system::system_data_usage;
    GET "/plugins" => system::plugin_list;
    GET "/events" => events::system_events;
    GET "/networks" => networks::network_list;
    POST "/networks/create" => networks::network_create;
    POST "/networks/prune" => networks::network_prune;
    GET "/networks/{id}" => networks::network_inspect;
    DELETE "/networks/{id}" => networks::network_delete;
    POST "/networks/{id}/connect" => networks::network_connect;
    POST "/networks/{id}/disconnect" => networks::network_disconnect;
    GET "/containers/json" => containers::container_list;
    POST "/containers/create" => containers::container_create;
    GET "/containers/{id}/json" => containers::container_inspect;
    POST "/containers/{id}/start" => containers::container_start;
    POST "/containers/{id}/stop" => containers::container_stop;
    POST "/containers/{id}/restart" => containers::container_restart;
    POST "/containers/{id}/kill" => containers::container_kill;
    POST "/containers/{id}/pause" => containers::container_pause;
    POST "/containers/{id}/unpause" => containers::container_unpause;
    POST "/containers/{id}/wait" => containers::container_wait;
    POST "/containers/{id}/attach" => attach::container_attach;
    GET "/containers/{id}/attach/ws" => attach::container_attach_ws;
    GET "/containers/{id}/logs" => containers::container_logs;
    GET "/containers/{id}/top" => containers::container_top;
    GET "/containers/{id}/stats" => containers::container_stats;
    POST "/containers/{id}/resize" => exec::container_resize;
    POST "/containers/{id}/exec" => exec::container_exec;
    POST "/exec/{id}/start" => exec::exec_start;
    POST "/exec/{id}/resize" => exec::exec_resize;
    GET "/exec/{id}/json" => exec::exec_inspect;
    DELETE "/containers/{id}" => containers::container_delete;
    DELETE "/containers/{id}/{alias}" => containers::container_delete_link;
    POST "/containers/{id}/rename" => containers::container_rename;
    POST "/containers/{id}/update" => containers::container_update;
    POST "/containers/prune" => containers::container_prune;
    POST "/commit" => containers::image_commit;
    POST "/build" => build::image_build;
    POST "/build/prune" => build::build_prune;
    POST "/build/cancel" => build::build_cancel;
    GET "/containers/{id}/archive" => archive::container_archive;
    HEAD "/containers/{id}/archive" => archive::container_archive_info;
    PUT "/containers/{id}/archive" => archive::put_container_archive;
    GET "/containers/{id}/export" => archive::container_export;
    GET "/containers/{id}/changes" => archive::container_changes;
    GET "/volumes" => volumes::volume_list;
    POST "/volumes/create" => volumes::volume_create;
    POST "/volumes/prune" => volumes::volume_prune;
    GET "/volumes/{name}" => volumes::volume_inspect;
    PUT "/volumes/{name}" => volumes::volume_update;
    DELETE "/volumes/{name}" => volumes::volume_delete;
    GET "/images/json" => images::image_list;
    POST "/images/prune" => images::image_prune;
    POST "/images/load" => images::image_load;
    GET "/images/get" => images::image_get_all;
    POST "/images/create" => images::image_create;
    GET "/images/search" => images::image_search;
    GET "/distribution/{*rest}" => images::distribution_inspect;
    POST "/auth" => auth::system_auth;
    // Names hold slashes: the handlers split the trailing verb off.
    GET "/images/{*rest}" => images::image_get_dispatch;
    POST "/images/{*rest}" => images::image_post_dispatch;
    DELETE "/images/{*rest}" => images::image_delete;
}

/// Endpoints of the Docker Engine API that berthd does not serve yet. Each
/// answers 501.
const NOT_YET: &[(&str, &str)] = &[
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

/// BuildKit's session and gRPC endpoints: 501, the classic builder only.
const BUILDKIT: &[(&str, &str)] = &[("POST", "/session"), ("POST", "/grpc")];

/// Leaving or unlocking: 503 "This node is not part of a swarm".
const NOT_IN_SWARM: &[(&str, &str)] = &[("POST", "/swarm/leave"), ("POST", "/swarm/unlock")];

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

/// Every route of the router: method, path pattern (axum's syntax) and how
/// it is answered.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str, Answer)> {
    let tag = |list: &'static [(&'static str, &'static str)], answer| list.iter().map(move |&(m, p)| (m, p, answer));
    tag(SERVED, Answer::Served)
        .chain(tag(NOT_YET, Answer::NotImplemented))
        .chain(tag(BUILDKIT, Answer::NoBuildKit))
        .chain(tag(NOT_IN_SWARM, Answer::NotInSwarm))
        .chain(tag(SWARM_MANAGER, Answer::NotSwarmManager))
}

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

/// The API service [`build`] makes.
pub type Api = Negotiate<Router>;

/// The whole API as one service: version negotiation around routing.
pub fn build(services: Services) -> Api {
    let mut router = add_served(Router::new());
    for (method, path, answer) in routes() {
        let refusal = match answer {
            Answer::Served => continue,
            Answer::NotImplemented => on(method_filter(method), not_implemented_yet),
            Answer::NoBuildKit => on(method_filter(method), build::buildkit_unavailable),
            Answer::NotInSwarm => on(method_filter(method), swarm::not_in_swarm),
            Answer::NotSwarmManager => on(method_filter(method), swarm::not_a_manager),
        };
        router = router.route(path, refusal);
    }
    let api = router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::RouteNotFound })
        .layer(tower::layer::layer_fn(|inner| Traced { inner }))
        .with_state(services);
    // Negotiation must see the path before routing does, so it wraps the
    // finished router instead of being one of its layers.
    Negotiate::new(api)
}

/// Every request: counted and timed for the metrics endpoint, and logged at
/// debug level (method, path, query with secret-bearing values hidden,
/// route, API version, status, time). Bodies and headers, where
/// credentials and environment values travel, are never logged. A plain
/// service around each route (it needs the matched route), not
/// `middleware::from_fn`, which boxes and clones per request.
#[derive(Clone)]
struct Traced<S> {
    inner: S,
}

impl<S> Service<Request> for Traced<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TracedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        // What only the debug log shows is copied only when it is on.
        let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            let version = req.extensions().get::<Version>().map(|v| v.0.to_string());
            (req.uri().path().to_string(), req.uri().query().map(redact_query), version)
        });
        TracedFuture { inner: self.inner.call(req), started, method, route, logged }
    }
}

struct TracedFuture<F> {
    inner: F,
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
    /// Path, redacted query and API version, when debug logging is on.
    logged: Option<(String, Option<String>, Option<String>)>,
}

impl<F: Future<Output = Result<Response, Infallible>> + Unpin> Future for TracedFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => return Poll::Pending,
        };
        let elapsed = this.started.elapsed();
        let route = this.route.as_ref().map_or("-", MatchedPath::as_str);
        let status = response.status().as_u16();
        crate::services::metrics::METRICS.request(this.method.as_str(), route, status, elapsed);
        if let Some((path, query, version)) = this.logged.take() {
            tracing::debug!(
                http.method = %this.method,
                http.path = %path,
                http.query = query.as_deref().unwrap_or(""),
                http.route = route,
                api.version = version.as_deref().unwrap_or("-"),
                http.status = status,
                duration_ms = elapsed.as_millis() as u64,
                "request"
            );
        }
        Poll::Ready(Ok(response))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Does `path` (placeholders filled in) match the route `pattern`?
    /// `{x}` takes one segment, `{*x}` the rest.
    fn matches(pattern: &str, path: &str) -> bool {
        let mut want = pattern.trim_start_matches('/').split('/');
        let mut have = path.trim_start_matches('/').split('/');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some(w), Some(_)) if w.starts_with("{*") => return true,
                (Some(w), Some(h)) if w == h || (w.starts_with('{') && !w.starts_with("{*")) => {}
                _ => return false,
            }
        }
    }

    /// The route axum picks for a request: the same pattern, else one
    /// without a catch-all, else a catch-all. HEAD falls back to GET.
    fn route_for(method: &str, path: &str) -> Option<(&'static str, &'static str, Answer)> {
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        let pick = |method: &str| {
            let found: Vec<_> = routes().filter(|(m, p, _)| *m == method && matches(p, &concrete)).collect();
            found
                .iter()
                .find(|(_, p, _)| *p == path)
                .or_else(|| found.iter().find(|(_, p, _)| !p.contains("{*")))
                .or_else(|| found.first())
                .copied()
        };
        pick(method).or_else(|| if method == "HEAD" { pick("GET") } else { None })
    }

    /// COMPAT.md's endpoint tables: (method, path, status).
    fn matrix() -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../COMPAT.md")).unwrap();
        let section = text.split("## Endpoint matrix").nth(1).expect("COMPAT.md has an endpoint matrix");
        let section = section.split("\n## ").next().unwrap();
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
                let method = *cells.first()?;
                if cells.len() < 3 || !["GET", "HEAD", "POST", "PUT", "DELETE"].contains(&method) {
                    return None;
                }
                Some((method.to_string(), cells[1].trim_matches('`').to_string(), cells[2].to_string()))
            })
            .collect()
    }

    #[test]
    fn compat_matrix_matches_the_router() {
        let rows = matrix();
        assert!(rows.len() >= 107, "API 1.51 has 107 operations; COMPAT.md lists {}", rows.len());
        let mut problems = Vec::new();
        let mut named = std::collections::HashSet::new();
        for (method, path, status) in &rows {
            let route = route_for(method, path);
            if let Some((m, p, _)) = route {
                named.insert((m, p));
            }
            let served = matches!(route, Some((_, _, Answer::Served)));
            match status.as_str() {
                "served" | "partly" if !served => problems.push(format!("{method} {path}: listed {status}, answered {route:?}")),
                "not served" if served => problems.push(format!("{method} {path}: listed not served, but a handler serves it")),
                "not served" if route.is_none() => problems.push(format!("{method} {path}: not served must still be a 501/503 route, not a 404")),
                "served" | "partly" | "not served" => {}
                other => problems.push(format!("{method} {path}: unknown status {other:?}")),
            }
        }
        for (method, path, answer) in routes() {
            if !named.contains(&(method, path)) {
                problems.push(format!("{method} {path} ({answer:?}) is in the router but no row of COMPAT.md names it"));
            }
        }
        assert!(problems.is_empty(), "COMPAT.md's endpoint matrix and the router disagree:\n{}", problems.join("\n"));
    }

    #[test]
    fn matching_follows_axum() {
        assert!(matches("/images/{*rest}", "/images/x/json"));
        assert!(matches("/containers/{id}/json", "/containers/x/json"));
        assert!(!matches("/containers/{id}/json", "/containers/x/top"));
        assert!(!matches("/containers/{id}", "/containers/x/json"));
        assert_eq!(route_for("GET", "/images/{name}/json").map(|r| r.1), Some("/images/{*rest}"));
        assert_eq!(route_for("GET", "/images/json").map(|r| r.1), Some("/images/json"));
        assert_eq!(route_for("HEAD", "/containers/{id}/archive").map(|r| r.1), Some("/containers/{id}/archive"));
        assert_eq!(route_for("GET", "/nowhere"), None);
    }
}
