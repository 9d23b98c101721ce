//! `--volumes-from c[:ro|:rw]`: another container's volumes and host binds,
//! mounted at the same destinations (read-only when either side says so).
//! The container's own `Binds`/`Mounts` win a shared destination; inherited
//! ones win over anonymous `Config.Volumes`, as in dockerd.

use std::collections::{BTreeMap, HashSet};

use api_types::container::HostConfig;
use api_types::mount::{BindOptions, Mount};

use super::mounts::clean;
use super::volumes::VolumeMount;
use super::ContainerService;
use crate::backends::oci_spec::{parse_bind, Bind};
use crate::services::ServiceError;

/// What a container takes from others.
#[derive(Debug, Default)]
pub struct Inherited {
    pub volumes: Vec<VolumeMount>,
    pub binds: Vec<Mount>,
}

impl Inherited {
    pub fn destinations(&self) -> HashSet<String> {
        self.volumes.iter().map(|v| clean(&v.destination)).chain(self.binds.iter().map(|b| clean(&b.target))).collect()
    }
}

/// `--mount type=bind`-shaped record of a host bind.
fn bind_mount(b: &Bind, read_only: bool) -> Mount {
    Mount {
        kind: "bind".into(),
        source: b.source.display().to_string(),
        target: b.destination.clone(),
        read_only,
        bind_options: Some(BindOptions { propagation: b.propagation.clone(), non_recursive: b.non_recursive, ..Default::default() }),
        ..Default::default()
    }
}

impl ContainerService {
    /// Resolve `HostConfig.VolumesFrom`; unknown containers and bad modes
    /// are 400s, before anything is made.
    pub(super) async fn volumes_from(&self, hc: &HostConfig) -> Result<Inherited, ServiceError> {
        let own: HashSet<String> = hc
            .binds
            .iter()
            .flatten()
            .filter_map(|b| b.split(':').nth(1))
            .chain(hc.mounts.iter().flatten().map(|m| m.target.as_str()))
            .map(clean)
            .collect();
        let mut inherited = Inherited::default();
        // The first source to offer a destination keeps it.
        let mut seen = HashSet::new();
        for spec in hc.volumes_from.iter().flatten() {
            let (name, mode) = spec.split_once(':').unwrap_or((spec, ""));
            let read_only = match mode {
                "" | "rw" => false,
                "ro" => true,
                other => return Err(ServiceError::InvalidParameter(format!("invalid mode: {other}"))),
            };
            // dockerd answers 400 here: a 404 from create makes the CLI pull.
            let entry = self.lookup(name).map_err(|e| match e {
                ServiceError::NotFound(msg) => ServiceError::InvalidParameter(msg),
                other => other,
            })?;
            let source = entry.record.lock().await.clone();
            let mut take = |dest: &str| {
                let d = clean(dest);
                !own.contains(&d) && seen.insert(d)
            };
            for v in &source.volumes {
                if take(&v.destination) {
                    inherited.volumes.push(VolumeMount {
                        name: v.name.clone(),
                        destination: v.destination.clone(),
                        anonymous: false,
                        read_only: v.read_only || read_only,
                        mode: String::new(),
                        copy_up: false,
                        labels: BTreeMap::new(),
                        driver_opts: None,
                        subpath: v.subpath.clone(),
                    });
                }
            }
            let host_binds = source.host_config.binds.iter().flatten().filter_map(|b| parse_bind(b).ok());
            let mount_binds = source.host_config.mounts.iter().flatten().filter(|m| m.kind == "bind").map(Bind::from_mount);
            for b in host_binds.chain(mount_binds) {
                if take(&b.destination) {
                    inherited.binds.push(bind_mount(&b, b.read_only || read_only));
                }
            }
            for m in &source.inherited_binds {
                if take(&m.target) {
                    inherited.binds.push(Mount { read_only: m.read_only || read_only, ..m.clone() });
                }
            }
        }
        Ok(inherited)
    }
}
