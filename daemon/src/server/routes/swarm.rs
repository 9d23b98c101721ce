//! Swarm-mode routes, answered as a dockerd that is not in a swarm.

use crate::server::error::ApiError;
use crate::services::errors::not_swarm_manager;
use crate::services::ServiceError;

/// Endpoints a manager would serve: nodes, services, tasks, secrets, configs
/// and the swarm object itself.
pub async fn not_a_manager() -> ApiError {
    not_swarm_manager().into()
}

/// Leaving or unlocking a swarm this node is not part of.
pub async fn not_in_swarm() -> ApiError {
    ServiceError::Unavailable("This node is not part of a swarm".to_string()).into()
}
