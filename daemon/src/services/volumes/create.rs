//! `docker volume create`: the `local` driver only; an existing volume of
//! the same name is answered as it is, as dockerd does.

use std::collections::BTreeMap;

use api_types::volume::Volume;

use super::{generate_name, now_rfc3339, validate_name, VolumeRecord, VolumeService, LOCAL_DRIVER};
use crate::services::ServiceError;

pub use api_types::volume::VolumeCreateOptions;

/// The `local` driver's options as dockerd 20.10 checks them: `type`,
/// `device` and `o` (each needing its partners), `size` only with quota
/// support (which berthd's data-root never has, as dockerd off xfs).
pub fn check_driver_opts(name: &str, opts: Option<&BTreeMap<String, String>>) -> Result<(), ServiceError> {
    let Some(opts) = opts.filter(|o| !o.is_empty()) else { return Ok(()) };
    let bad = |text: String| ServiceError::InvalidParameter(format!("create {name}: {text}"));
    if let Some(key) = opts.keys().find(|k| !matches!(k.as_str(), "type" | "device" | "o" | "size")) {
        return Err(bad(format!("invalid option: {key:?}")));
    }
    for (option, needs) in [("device", &["type"][..]), ("type", &["device"][..]), ("o", &["device", "type"][..])] {
        if opts.contains_key(option) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(bad(format!("missing required option: {missing:?}")));
            }
        }
    }
    if opts.contains_key("size") {
        return Err(bad("quota size requested but no quota support".into()));
    }
    Ok(())
}

impl VolumeService {
    pub fn create(&self, opts: VolumeCreateOptions) -> Result<Volume, ServiceError> {
        if opts.cluster_volume_spec.is_some() {
            return Err(ServiceError::Unavailable(
                "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" \
                 to connect this node to swarm and try again."
                    .into(),
            ));
        }
        let name = if opts.name.is_empty() { generate_name() } else { opts.name.clone() };
        let driver = if opts.driver.is_empty() { LOCAL_DRIVER } else { opts.driver.as_str() };
        if driver != LOCAL_DRIVER {
            return Err(ServiceError::NotFound(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        if let Some(existing) = self.registry().volumes.get(&name) {
            return Ok(self.to_api(existing));
        }
        self.create_local(VolumeCreateOptions { name, ..opts })
    }

    /// Validate and write a new `local` volume.
    pub(super) fn create_local(&self, opts: VolumeCreateOptions) -> Result<Volume, ServiceError> {
        let name = opts.name;
        validate_name(&name).map_err(|e| ServiceError::InvalidParameter(format!("create {name}: {e}")))?;
        check_driver_opts(&name, opts.driver_opts.as_ref())?;
        let record = VolumeRecord {
            name: name.clone(),
            driver: LOCAL_DRIVER.into(),
            labels: opts.labels,
            options: opts.driver_opts,
            created_at: now_rfc3339(),
        };
        let mut reg = self.registry();
        if let Some(existing) = reg.volumes.get(&name) {
            return Ok(self.to_api(existing));
        }
        self.store
            .create(&name, &record)
            .map_err(|e| ServiceError::Internal(format!("create {name}: {e}")))?;
        tracing::info!(volume.name = %name, "volume created");
        let volume = self.to_api(&record);
        reg.volumes.insert(name.clone(), record);
        drop(reg);
        self.emit("create", &name, &[]);
        Ok(volume)
    }
}
