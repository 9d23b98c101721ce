//! `POST /auth` (SystemAuth): check credentials against a registry.

use axum::extract::State;
use axum::Json;

use api_types::image::AuthResponse;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::JsonBytes;
use crate::services::images::auth::AuthConfig;
use crate::services::Services;

pub async fn system_auth(State(svc): State<Services>, JsonBytes(body): JsonBytes) -> ApiResult<Json<AuthResponse>> {
    let config = AuthConfig::from_json(&body).map_err(ApiError::BadRequest)?;
    let identity_token = svc.images.login(&config.serveraddress, &config.credentials()).await?;
    Ok(Json(AuthResponse { status: "Login Succeeded".into(), identity_token }))
}
