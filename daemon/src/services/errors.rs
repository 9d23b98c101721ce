//! The service error type, in Docker's categories, and the named
//! constructors for texts that clients match on.

use crate::backends::containerd::{ContainerdError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not modified")]
    NotModified,
    #[error("{0}")]
    Forbidden(String),
    /// Credentials missing or refused (a registry login).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ContainerdError> for ServiceError {
    fn from(e: ContainerdError) -> Self {
        let text = e.to_string();
        match e.kind() {
            ErrorKind::NotFound => Self::NotFound(text),
            ErrorKind::AlreadyExists | ErrorKind::Precondition => Self::Conflict(text),
            ErrorKind::Invalid => Self::InvalidParameter(text),
            ErrorKind::Unavailable => Self::Unavailable(text),
            ErrorKind::Other => Self::Internal(text),
        }
    }
}

/// What a dockerd outside a swarm answers to every swarm endpoint.
pub fn not_swarm_manager() -> ServiceError {
    ServiceError::Unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" \
         to connect this node to swarm and try again."
            .to_string(),
    )
}

/// An endpoint berthd does not serve yet.
pub fn not_implemented(method: &str, path: &str) -> ServiceError {
    ServiceError::NotImplemented(format!("{method} {path} is not implemented by berthd yet"))
}
