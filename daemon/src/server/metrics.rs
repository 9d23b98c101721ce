//! `metrics-addr`: Prometheus metrics on a listener of their own (plain
//! HTTP, `GET /metrics`), as dockerd serves them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::services::metrics::METRICS;
use crate::services::system::SystemService;

/// Bind `addr` (`host:port`); a bad address or a port in use stops start-up.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("failed to listen on metrics address {addr}: {e}"))
}

/// Serve until the process ends.
pub fn serve(listener: TcpListener, system: Arc<SystemService>) {
    let app = Router::new().route("/metrics", get(metrics)).with_state(system);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
}

async fn metrics(State(system): State<Arc<SystemService>>) -> Response {
    // A containerd that does not answer must not make the scrape fail:
    // the request metrics are still worth having.
    let states = match system.container_states().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not count containers");
            None
        }
    };
    let body = METRICS.render(crate::release::VERSION, states.as_ref());
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
