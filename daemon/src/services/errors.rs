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

impl ServiceError {
    /// The same error with dockerd's wrapping before its text (Go's
    /// `errors.Wrapf`, which keeps the category).
    pub fn wrapped(self, prefix: &str) -> Self {
        match self {
            Self::NotFound(t) => Self::NotFound(format!("{prefix}: {t}")),
            Self::InvalidParameter(t) => Self::InvalidParameter(format!("{prefix}: {t}")),
            Self::Conflict(t) => Self::Conflict(format!("{prefix}: {t}")),
            Self::Forbidden(t) => Self::Forbidden(format!("{prefix}: {t}")),
            Self::Unauthorized(t) => Self::Unauthorized(format!("{prefix}: {t}")),
            Self::Unavailable(t) => Self::Unavailable(format!("{prefix}: {t}")),
            Self::NotImplemented(t) => Self::NotImplemented(format!("{prefix}: {t}")),
            Self::Internal(t) => Self::Internal(format!("{prefix}: {t}")),
            Self::NotModified => Self::NotModified,
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
