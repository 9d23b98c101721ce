//! `docker rename`: move a container to a new, free name.

use super::{naming, ContainerService};
use crate::services::ServiceError;

impl ContainerService {
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<(), ServiceError> {
        if new_name.trim_start_matches('/').is_empty() {
            return Err(ServiceError::InvalidParameter("Neither old nor new names may be empty".into()));
        }
        // dockerd finds the container first, then compares and reserves the
        // name, its refusals prefixed "Error when allocating new name: ".
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        let slashed = if new_name.starts_with('/') { new_name.to_string() } else { format!("/{new_name}") };
        if record.name == slashed {
            return Err(ServiceError::InvalidParameter(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        const ALLOCATING: &str = "Error when allocating new name";
        let new_name = naming::validate(&slashed).map_err(|e| e.wrapped(ALLOCATING))?;
        let old_name = {
            let mut reg = self.registry_mut();
            if let Some(holder) = reg.names.get(&new_name) {
                return Err(super::create::name_conflict(&new_name, holder).wrapped(ALLOCATING));
            }
            let old_name = std::mem::replace(&mut record.name, new_name.clone());
            if let Err(e) = self.save(&record) {
                record.name = old_name;
                return Err(e);
            }
            reg.names.remove(&old_name);
            reg.names.insert(new_name, record.id.clone());
            old_name
        };
        self.networks.rename_endpoints(&record.id, old_name.trim_start_matches('/'), record.bare_name()).await;
        self.emit(&record, "rename", &[("oldName", old_name)]);
        tracing::info!(container.id = %record.id, "container renamed");
        Ok(())
    }
}
