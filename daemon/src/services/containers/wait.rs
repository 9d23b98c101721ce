//! `docker wait`: block until the container reaches a condition. Callers
//! send headers first: `docker run` waits before it starts the container.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use api_types::container::ContainerWaitResponse;

use super::{ContainerService, Entry};
use crate::services::ServiceError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        match text {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(ServiceError::InvalidParameter(format!("invalid condition: \"{other}\""))),
        }
    }
}

impl ContainerService {
    /// Check the container now; the returned future resolves when the
    /// condition is met.
    pub fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<impl Future<Output = ContainerWaitResponse> + Send + 'static, ServiceError> {
        let entry = self.lookup(name)?;
        let mut changes = entry.changed.subscribe();
        let exits_at_start = entry.exits.load(Ordering::SeqCst);
        Ok(async move {
            loop {
                if let Some(response) = condition_met(&entry, condition, exits_at_start).await {
                    return response;
                }
                if changes.changed().await.is_err() {
                    return exit_response(&entry).await;
                }
            }
        })
    }
}

async fn exit_response(entry: &Arc<Entry>) -> ContainerWaitResponse {
    let record = entry.record.lock().await;
    ContainerWaitResponse { status_code: record.state.exit_code, error: None }
}

async fn condition_met(entry: &Arc<Entry>, condition: WaitCondition, exits_at_start: u64) -> Option<ContainerWaitResponse> {
    let met = match condition {
        // An exit counts even when a restart policy brings the container
        // back, as dockerd's restarting state wakes these waiters.
        WaitCondition::NotRunning => {
            !entry.record.lock().await.state.status.is_live() || entry.exits.load(Ordering::SeqCst) > exits_at_start
        }
        WaitCondition::NextExit => entry.exits.load(Ordering::SeqCst) > exits_at_start,
        WaitCondition::Removed => entry.removed.load(Ordering::SeqCst),
    };
    if met {
        Some(exit_response(entry).await)
    } else {
        None
    }
}
