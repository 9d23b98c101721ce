//! Clients on a daemon's socket: bollard (every call doubles as a schema
//! check of our answers) and raw HTTP for status lines and headers.

use std::path::Path;

pub use crate::http::HttpResponse as RawResponse;

/// A bollard client on `socket`, speaking bollard's default API version.
pub fn connect(socket: &Path) -> bollard::Docker {
    bollard::Docker::connect_with_unix(&socket.display().to_string(), 120, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| panic!("bollard on {}: {e}", socket.display()))
}

/// One raw request; panics if the daemon cannot be reached.
#[track_caller]
pub fn raw_request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> RawResponse {
    try_raw_request(socket, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {}: {e:#}", socket.display()))
}

pub fn try_raw_request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<RawResponse> {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if body.is_some() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        all.push(("Content-Type", "application/json"));
    }
    crate::http::unix_request(socket, method, path, &all, body.unwrap_or_default())
}
