//! Volumes: dockerd's `local` driver on directories under the data-root,
//! and the references containers hold on them. One file per verb; this
//! module holds the shared registry and the name rules.

mod create;
mod inspect;
mod list;
mod prune;
mod remove;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use api_types::volume::Volume;

use crate::backends::store::volumes::VolumeStore;
use crate::services::events::EventBus;
use crate::services::ServiceError;

pub use create::{check_driver_opts, VolumeCreateOptions};

/// The only driver berthd has.
pub const LOCAL_DRIVER: &str = "local";
/// The label dockerd (≥ 23) puts on volumes it makes for `-v /path` and
/// image `VOLUME`s; prune without `all` removes only these.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What berthd remembers of a volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: Option<BTreeMap<String, String>>,
    pub created_at: String,
}

#[derive(Default)]
struct Registry {
    volumes: BTreeMap<String, VolumeRecord>,
    /// Volume name → IDs of the containers (running or not) that use it.
    refs: BTreeMap<String, BTreeSet<String>>,
    /// Volumes with options → how many users have them mounted now.
    active: BTreeMap<String, usize>,
}

pub struct VolumeService {
    store: VolumeStore,
    registry: Mutex<Registry>,
    events: EventBus,
}

pub fn no_such_volume(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("get {name}: no such volume"))
}

/// dockerd's `local` driver name rule, with its texts.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.len() == 1 {
        return Err("volume name is too short, names should be at least two alphanumeric characters".into());
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. \
             If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

/// A name for an anonymous volume: 64 hex digits, as dockerd makes.
pub fn generate_name() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl VolumeService {
    /// Load the volumes on disk under `data_root`.
    pub fn load(data_root: &Path) -> Result<Self, ServiceError> {
        let store = VolumeStore::new(data_root);
        let stored = store
            .load_all::<VolumeRecord>()
            .map_err(|e| ServiceError::Internal(format!("loading volumes under {}: {e}", data_root.display())))?;
        let mut registry = Registry::default();
        for v in stored {
            let record = v.record.unwrap_or_else(|| VolumeRecord {
                name: v.name.clone(),
                driver: LOCAL_DRIVER.into(),
                labels: BTreeMap::new(),
                options: None,
                created_at: v
                    .modified
                    .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(now_rfc3339),
            });
            registry.volumes.insert(v.name, record);
        }
        Ok(Self { store, registry: Mutex::new(registry), events: EventBus::new() })
    }

    /// Publish volume events on `events`.
    pub fn with_events(mut self, events: EventBus) -> Self {
        self.events = events;
        self
    }

    /// A volume event as dockerd logs it: the volume's name as the actor,
    /// its driver among the attributes.
    fn emit(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        if !name.is_empty() {
            attributes.insert("driver".into(), LOCAL_DRIVER.into());
        }
        let actor = api_types::events::EventActor { id: name.to_string(), attributes };
        self.events.publish(api_types::events::TYPE_VOLUME, action, actor);
    }

    /// A container mounted the volume (at its start).
    pub fn mounted(&self, name: &str, container_id: &str, destination: &str, read_write: bool) {
        self.emit(
            "mount",
            name,
            &[
                ("container", container_id.to_string()),
                ("destination", destination.to_string()),
                ("read/write", read_write.to_string()),
                ("propagation", String::new()),
            ],
        );
    }

    /// The container stopped using it: the event, and the volume's own
    /// mount goes when it was the last user.
    pub fn unmounted(&self, name: &str, container_id: &str) {
        self.unmount(name);
        self.emit("unmount", name, &[("container", container_id.to_string())]);
    }

    /// A user (a starting container, a copy-up) needs the volume's data: a
    /// volume with options (`type`/`device`/`o`) has its filesystem mounted
    /// by the first user, as dockerd's local driver does. Answers the path.
    pub fn mount(&self, name: &str) -> Result<PathBuf, ServiceError> {
        let path = self.data_path(name);
        let mut reg = self.registry();
        let Some(opts) = reg.volumes.get(name).and_then(|r| r.options.clone()).filter(|o| !o.is_empty()) else {
            return Ok(path);
        };
        let count = reg.active.entry(name.to_string()).or_insert(0);
        if *count == 0 && !crate::backends::mount::is_mountpoint(&path) {
            let failed = |e: String| {
                ServiceError::Internal(format!("error while mounting volume '{}': failed to mount local volume: {e}", path.display()))
            };
            let device = opts.get("device").map(String::as_str).unwrap_or_default();
            if device.is_empty() {
                return Err(failed("missing device in volume options".into()));
            }
            let fstype = opts.get("type").map(String::as_str).unwrap_or_default();
            let options = opts.get("o").map(String::as_str).unwrap_or_default();
            crate::backends::mount::mount_with_options(device, &path, fstype, options).map_err(failed)?;
            tracing::info!(volume.name = %name, fstype, "volume filesystem mounted");
        }
        *count += 1;
        Ok(path)
    }

    /// One user fewer; the last one unmounts a volume with options.
    pub fn unmount(&self, name: &str) {
        let mut reg = self.registry();
        let has_options = reg.volumes.get(name).is_some_and(|r| r.options.as_ref().is_some_and(|o| !o.is_empty()));
        let count = reg.active.entry(name.to_string()).or_insert(0);
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        reg.active.remove(name);
        drop(reg);
        if has_options {
            self.unmount_filesystem(name);
        }
    }

    fn unmount_filesystem(&self, name: &str) {
        let path = self.data_path(name);
        if crate::backends::mount::is_mountpoint(&path) {
            match crate::backends::mount::unmount(&path) {
                Ok(()) => tracing::info!(volume.name = %name, "volume filesystem unmounted"),
                Err(e) => tracing::warn!(volume.name = %name, error = %e, "unmounting a volume's filesystem"),
            }
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host directory a container mounts for volume `name`.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.store.data_path(name)
    }

    fn to_api(&self, r: &VolumeRecord) -> Volume {
        Volume {
            created_at: r.created_at.clone(),
            driver: r.driver.clone(),
            labels: r.labels.clone(),
            mountpoint: self.data_path(&r.name).display().to_string(),
            name: r.name.clone(),
            options: r.options.clone(),
            scope: "local".into(),
            usage_data: None,
        }
    }

    /// The volume for a container's mount, created if missing (anonymous
    /// ones with dockerd's label); the container now holds a reference.
    /// Answers the host path and whether the volume was just created.
    pub fn acquire(
        &self,
        name: &str,
        anonymous: bool,
        labels: &BTreeMap<String, String>,
        driver_opts: Option<&BTreeMap<String, String>>,
        container_id: &str,
    ) -> Result<(PathBuf, bool), ServiceError> {
        let created = if self.registry().volumes.contains_key(name) {
            false
        } else {
            let mut labels = labels.clone();
            if anonymous {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
            }
            let opts = VolumeCreateOptions { name: name.into(), labels, driver_opts: driver_opts.cloned(), ..Default::default() };
            self.create_local(opts)?;
            true
        };
        self.add_ref(name, container_id);
        Ok((self.data_path(name), created))
    }

    /// Record that `container_id` uses `name` (at start-up, from the
    /// container's record).
    pub fn add_ref(&self, name: &str, container_id: &str) {
        self.registry().refs.entry(name.to_string()).or_default().insert(container_id.to_string());
    }

    /// The container no longer uses the volume.
    pub fn release(&self, name: &str, container_id: &str) {
        let mut reg = self.registry();
        if let Some(set) = reg.refs.get_mut(name) {
            set.remove(container_id);
            if set.is_empty() {
                reg.refs.remove(name);
            }
        }
    }

    /// Every volume with its reference count and size, for `/system/df`.
    pub async fn usage(&self) -> Vec<Volume> {
        let all: Vec<(Volume, i64)> = {
            let reg = self.registry();
            reg.volumes
                .values()
                .map(|r| (self.to_api(r), reg.refs.get(&r.name).map_or(0, |s| s.len() as i64)))
                .collect()
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            all.into_iter()
                .map(|(mut v, ref_count)| {
                    let size = store.size(&v.name) as i64;
                    v.usage_data = Some(api_types::volume::VolumeUsageData { size, ref_count });
                    v
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_local_driver_rule() {
        assert!(validate_name("my-vol_1.x").is_ok());
        assert!(validate_name("ab").is_ok());
        assert_eq!(
            validate_name("a").unwrap_err(),
            "volume name is too short, names should be at least two alphanumeric characters"
        );
        let err = validate_name("bad/name").unwrap_err();
        assert!(err.starts_with("\"bad/name\" includes invalid characters for a local volume name"), "{err}");
        assert!(validate_name("-lead").is_err());
        assert!(validate_name(".hidden").is_err());
        assert_eq!(generate_name().len(), 64);
    }

    #[tokio::test]
    async fn references_block_removal_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let svc = VolumeService::load(dir.path()).unwrap();
        let (path, created) = svc.acquire("data", false, &BTreeMap::new(), None, "c1").unwrap();
        assert!(created && path.is_dir());
        assert!(!svc.acquire("data", false, &BTreeMap::new(), None, "c2").unwrap().1);
        let err = svc.remove("data", false).await.unwrap_err();
        assert_eq!(err.to_string(), "remove data: volume is in use - [c1, c2]");
        svc.release("data", "c1");
        svc.release("data", "c2");
        let svc = VolumeService::load(dir.path()).unwrap();
        assert_eq!(svc.inspect("data").unwrap().name, "data");
        svc.remove("data", false).await.unwrap();
        assert!(matches!(svc.inspect("data"), Err(ServiceError::NotFound(_))));
    }
}
