//! containerd errors, with gRPC codes mapped once to kinds services act on.

use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    Invalid,
    Precondition,
    Unavailable,
    Other,
}

#[derive(Debug, thiserror::Error)]
#[error("containerd: {op}: {message}")]
pub struct ContainerdError {
    pub kind: ErrorKind,
    pub op: &'static str,
    pub message: String,
}

impl ContainerdError {
    pub fn from_status(op: &'static str, status: tonic::Status) -> Self {
        let kind = match status.code() {
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::Invalid,
            Code::FailedPrecondition | Code::Aborted => ErrorKind::Precondition,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => ErrorKind::Unavailable,
            // tonic's own words when the connection broke mid-call (containerd
            // was killed): it is containerd going away, not a failed call.
            Code::Unknown if status.message().starts_with("transport error") || status.message().starts_with("h2 protocol error") => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Other,
        };
        let message = match kind {
            // tonic's transport text for a refused socket is long and vague.
            ErrorKind::Unavailable => format!("containerd is not reachable: {}", status.message()),
            _ => status.message().to_string(),
        };
        Self { kind, op, message }
    }

    /// Input berthd itself could not encode.
    pub fn invalid(op: &'static str, err: impl std::fmt::Display) -> Self {
        Self { kind: ErrorKind::Invalid, op, message: err.to_string() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_containerd_unreachable() {
        let e = ContainerdError::from_status("leases.create", tonic::Status::unknown("transport error"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.to_string(), "containerd: leases.create: containerd is not reachable: transport error");
        let e = ContainerdError::from_status("tasks.create", tonic::Status::unknown("runc failed"));
        assert_eq!(e.kind(), ErrorKind::Other);
    }
}
