//! Shapes shared by every API area: the error body and ID responses.

use serde::{Deserialize, Serialize};

/// Docker's error body: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// `{"Id": "..."}`, answered by create endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdResponse {
    #[serde(rename = "Id")]
    pub id: String,
}
