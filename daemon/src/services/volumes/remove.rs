//! `docker volume rm`: never while a container (running or not) uses it.

use super::{no_such_volume, VolumeService};
use crate::services::ServiceError;

impl VolumeService {
    /// With `force`, a missing volume is not an error (dockerd's
    /// purge-on-error); a volume in use still is.
    pub async fn remove(&self, name: &str, force: bool) -> Result<(), ServiceError> {
        {
            let mut reg = self.registry();
            if !reg.volumes.contains_key(name) {
                return if force { Ok(()) } else { Err(no_such_volume(name)) };
            }
            if let Some(users) = reg.refs.get(name).filter(|s| !s.is_empty()) {
                let ids: Vec<&str> = users.iter().map(String::as_str).collect();
                return Err(ServiceError::Conflict(format!("remove {name}: volume is in use - [{}]", ids.join(", "))));
            }
            reg.volumes.remove(name);
            reg.active.remove(name);
        }
        // A filesystem still mounted (by a copy-up or a container berthd lost
        // track of) goes before its directory.
        self.unmount_filesystem(name);
        let store = self.store.clone();
        let owned = name.to_string();
        tokio::task::spawn_blocking(move || store.remove(&owned))
            .await
            .map_err(|e| ServiceError::Internal(format!("remove {name}: {e}")))?
            .map_err(|e| ServiceError::Internal(format!("remove {name}: {e}")))?;
        tracing::info!(volume.name = %name, "volume removed");
        self.emit("destroy", name, &[]);
        Ok(())
    }
}
