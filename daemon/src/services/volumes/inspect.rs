//! `docker volume inspect`.

use api_types::volume::Volume;

use super::{no_such_volume, VolumeService};
use crate::services::ServiceError;

impl VolumeService {
    pub fn inspect(&self, name: &str) -> Result<Volume, ServiceError> {
        let reg = self.registry();
        reg.volumes.get(name).map(|r| self.to_api(r)).ok_or_else(|| no_such_volume(name))
    }
}
