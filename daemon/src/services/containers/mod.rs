//! Containers: Docker's container semantics on containerd containers and
//! tasks. One file per verb; this module holds the shared registry.

mod archive;
mod attach;
mod commit;
mod create;
mod detach;
mod environment;
mod etc_files;
mod events;
mod exec;
mod health;
mod image;
mod init_layer;
mod inspect;
mod io;
mod isolation;
mod links;
mod list;
mod logs;
mod monitor;
mod mounts;
mod naming;
mod networking;
mod pause;
mod prune;
pub mod record;
mod remove;
mod rename;
mod resources;
mod restart;
mod shutdown;
mod size;
mod start;
mod stats;
mod stop;
mod top;
mod update;
mod user;
mod volumes;
mod volumes_from;
mod wait;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock, Weak};

use tokio::sync::watch;

use crate::backends::containerd::Containerd;
use crate::backends::store::containers::ContainerStore;
use crate::services::images::ImageService;
use crate::services::events::EventBus;
use crate::services::volumes::VolumeService;
use crate::config::container_defaults::ContainerDefaults;
use crate::services::networks::NetworkService;
use crate::services::versioned::{Version, Versioned};
use crate::services::ServiceError;

pub use archive::{ExtractToDirOptions, TarStream};
pub use attach::{AttachOptions, AttachStreams};
pub use commit::CommitOptions;
pub use create::CreateOptions;
pub use detach::EscapeProxy;
pub use exec::ExecStart;
pub use io::Output;
pub use crate::backends::logging::json_file::Stream;
pub use list::ListOptions;
pub use stop::parse_signal;
// For the `specs` fuzz target: `--health-*` durations and `--mount` fields.
pub use health::validate as validate_health;
pub use mounts::validate as validate_mounts;
pub use logs::{LogLine, LogsOptions};
pub use record::{Container, Status};
pub use stats::StatsOptions;
pub use wait::WaitCondition;

/// One container: its record, its stdio and a change signal for waiters.
pub struct Entry {
    /// Every mutable access bumps the service's version (list cache).
    pub record: Versioned<Container>,
    pub io: Arc<io::ContainerIo>,
    changed: watch::Sender<u64>,
    /// Bumped on every task exit, for `wait?condition=next-exit`.
    exits: AtomicU64,
    /// Set once the container is gone, for `wait?condition=removed`.
    removed: AtomicBool,
    /// The restart policy's backoff and pending restart.
    backoff: std::sync::Mutex<restart::Backoff>,
    /// Its latest stats samples, for `precpu_stats`.
    stats: std::sync::Mutex<stats::Kept>,
    /// Its health check's monitor.
    health: std::sync::Mutex<health::Monitor>,
}

impl Entry {
    fn new(record: Container, version: &Version) -> Arc<Self> {
        Arc::new(Self {
            record: Versioned::new(record, version.clone()),
            io: Arc::default(),
            changed: watch::channel(0).0,
            exits: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            backoff: Default::default(),
            stats: Default::default(),
            health: Default::default(),
        })
    }

    /// Wake everyone waiting on this container's state.
    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<Entry>>,
    /// "/name" → ID.
    names: HashMap<String, String>,
}

pub struct ContainerService {
    containerd: Containerd,
    store: ContainerStore,
    /// The daemon's data root (binds from inside it get `rslave`).
    data_root: PathBuf,
    exec_root: PathBuf,
    images: Arc<ImageService>,
    registry: RwLock<Registry>,
    /// Bumped by every change to a record and to the registry.
    version: Version,
    /// The rendered common listing, while `version` holds.
    list_cache: list::Cache,
    execs: exec::ExecRegistry,
    events: EventBus,
    volumes: Arc<VolumeService>,
    networks: Arc<NetworkService>,
    /// The daemon's defaults for new containers (replaced on reload).
    defaults: RwLock<Arc<ContainerDefaults>>,
    /// Set when the daemon stops: exits no longer trigger restarts.
    shutting_down: AtomicBool,
    /// This service, for the tasks it spawns (health monitors).
    me: Weak<Self>,
    /// Where each writable layer lives and what is under it (size.rs).
    layer_cache: size::LayerCache,
}

pub fn no_such_container(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("No such container: {name}"))
}

impl ContainerService {
    /// The defaults new containers get now.
    pub fn defaults(&self) -> Arc<ContainerDefaults> {
        self.defaults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Install reloaded defaults; existing containers keep what they have.
    pub fn set_defaults(&self, defaults: ContainerDefaults) {
        *self.defaults.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defaults);
    }

    /// Load stored containers, reconcile them with containerd, and start
    /// listening for task exits.
    pub async fn load(
        containerd: Containerd,
        images: Arc<ImageService>,
        data_root: PathBuf,
        exec_root: PathBuf,
        events: EventBus,
        volumes: Arc<VolumeService>,
        networks: Arc<NetworkService>,
        defaults: ContainerDefaults,
    ) -> Result<Arc<Self>, ServiceError> {
        let store = ContainerStore::new(&data_root);
        let records: Vec<Container> =
            store.load_all().map_err(|e| ServiceError::Internal(format!("loading containers: {e}")))?;
        let service = Arc::new_cyclic(|me| Self {
            containerd,
            images,
            store,
            data_root,
            exec_root,
            registry: RwLock::default(),
            version: Version::default(),
            list_cache: Default::default(),
            execs: Default::default(),
            events,
            volumes,
            networks,
            defaults: RwLock::new(Arc::new(defaults)),
            shutting_down: AtomicBool::new(false),
            me: me.clone(),
            layer_cache: Default::default(),
        });
        {
            let mut reg = service.registry_mut();
            for record in records {
                for mount in &record.volumes {
                    service.volumes.add_ref(&mount.name, &record.id);
                    // A container still running from before holds its
                    // volume's mount: count it, so others stopping keep it.
                    if record.state.status.is_live() {
                        if let Err(e) = service.volumes.mount(&mount.name) {
                            tracing::warn!(container.id = %record.id, volume.name = %mount.name, error = %e, "volume of a running container");
                        }
                    }
                }
                reg.names.insert(record.name.clone(), record.id.clone());
                reg.by_id.insert(record.id.clone(), Entry::new(record, &service.version));
            }
        }
        let events = service.containerd.task_events();
        tokio::spawn(monitor::supervise(service.clone(), events));
        let begun = std::time::Instant::now();
        monitor::restore(&service).await;
        let restored = begun.elapsed();
        service.start_on_boot().await;
        tracing::debug!(
            restore_ms = restored.as_millis() as u64,
            start_on_boot_ms = (begun.elapsed() - restored).as_millis() as u64,
            "containers restored"
        );
        Ok(service)
    }

    /// Resolve a name, full ID or unique ID prefix, as dockerd does.
    pub fn lookup(&self, name_or_id: &str) -> Result<Arc<Entry>, ServiceError> {
        let reg = self.registry.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = reg.by_id.get(name_or_id) {
            return Ok(e.clone());
        }
        let name = format!("/{}", name_or_id.trim_start_matches('/'));
        if let Some(e) = reg.names.get(&name).and_then(|id| reg.by_id.get(id)) {
            return Ok(e.clone());
        }
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut matches = reg.by_id.iter().filter(|(id, _)| id.starts_with(name_or_id));
            if let Some((_, first)) = matches.next() {
                if matches.next().is_some() {
                    return Err(ServiceError::InvalidParameter(format!(
                        "multiple IDs found with provided prefix: {name_or_id}"
                    )));
                }
                return Ok(first.clone());
            }
        }
        Err(no_such_container(name_or_id))
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The registry for a change (bumps the version for the list cache).
    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        let reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
        self.version.bump();
        reg
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.registry.read().unwrap_or_else(|e| e.into_inner()).by_id.values().cloned().collect()
    }

    fn save(&self, record: &Container) -> Result<(), ServiceError> {
        self.store
            .save(&record.id, record)
            .map_err(|e| ServiceError::Internal(format!("saving container {}: {e}", record.id)))
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.store.dir(id)
    }

    fn fifo_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }

    /// The images containers are made from.
    pub async fn image_ids_in_use(&self) -> std::collections::BTreeSet<String> {
        let mut ids = std::collections::BTreeSet::new();
        for entry in self.entries() {
            ids.insert(entry.record.lock().await.image_id.clone());
        }
        ids
    }

    /// Each container's image and whether it runs, for image removal.
    pub async fn image_users(&self) -> Vec<crate::services::images::ImageUser> {
        let mut users = Vec::new();
        for entry in self.entries() {
            let record = entry.record.lock().await;
            users.push(crate::services::images::ImageUser {
                container_id: record.id.clone(),
                image_id: record.image_id.clone(),
                running: record.state.status.is_live(),
            });
        }
        users
    }

    /// Counts by state, for `/info`.
    pub async fn counts(&self) -> (u64, u64, u64) {
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        for entry in self.entries() {
            match entry.record.lock().await.state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        (running, paused, stopped)
    }
}
