//! `ApiError`: the one place that turns an error into Docker's status code
//! and `{"message": ...}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::http::header::CONTENT_TYPE;

use api_types::common::ErrorResponse;

use crate::services::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Malformed request: bad JSON, bad query, bad API version, oversize body.
    #[error("{0}")]
    BadRequest(String),
    /// No route matches.
    #[error("page not found")]
    RouteNotFound,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::Service(e) => match e {
                ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                ServiceError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
                ServiceError::Conflict(_) => StatusCode::CONFLICT,
                ServiceError::NotModified => StatusCode::NOT_MODIFIED,
                ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request rejected");
        }
        // dockerd's encoder ends the body with a newline; some clients log it raw.
        let mut body = serde_json::to_vec(&ErrorResponse { message: self.to_string() }).unwrap_or_default();
        body.push(b'\n');
        (status, [(CONTENT_TYPE, "application/json")], body).into_response()
    }
}

impl ApiError {
    /// The attach endpoint's errors: dockerd hijacks first and writes them
    /// as plain text with the raw-stream type.
    pub fn into_raw_stream_response(self) -> Response {
        let status = self.status();
        tracing::debug!(error = %self, status = status.as_u16(), "attach rejected");
        (status, [(CONTENT_TYPE, crate::server::stream::RAW_STREAM)], format!("{self}\r\n")).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_map_to_docker_status_codes() {
        let cases = [
            (ApiError::Service(ServiceError::NotFound("x".into())), 404),
            (ApiError::Service(ServiceError::InvalidParameter("x".into())), 400),
            (ApiError::Service(ServiceError::Conflict("x".into())), 409),
            (ApiError::Service(ServiceError::NotModified), 304),
            (ApiError::Service(ServiceError::Unavailable("x".into())), 503),
            (ApiError::Service(ServiceError::NotImplemented("x".into())), 501),
            (ApiError::Service(ServiceError::Internal("x".into())), 500),
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::RouteNotFound, 404),
        ];
        for (err, code) in cases {
            assert_eq!(err.into_response().status().as_u16(), code);
        }
    }
}
