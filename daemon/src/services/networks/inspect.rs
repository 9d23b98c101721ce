//! `docker network inspect`: dockerd's shape, with the attached containers.

use api_types::network as api;

use super::list::to_api;
use super::{lookup, NetworkService};
use crate::services::ServiceError;

impl NetworkService {
    pub async fn inspect(&self, name_or_id: &str) -> Result<api::Network, ServiceError> {
        let nets = self.networks.lock().await;
        Ok(to_api(lookup(&nets, name_or_id)?))
    }
}
