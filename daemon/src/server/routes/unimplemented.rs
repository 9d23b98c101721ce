//! Docker endpoints that berthd does not serve yet: each answers 501 with
//! the operation named, never a fake success.

use axum::extract::MatchedPath;
use axum::http::Method;

use crate::server::error::ApiError;
use crate::services::errors::not_implemented;

pub async fn not_implemented_yet(method: Method, path: Option<MatchedPath>) -> ApiError {
    let path = path.map(|p| p.as_str().to_string()).unwrap_or_default();
    not_implemented(method.as_str(), &path).into()
}
