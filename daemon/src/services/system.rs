//! `/version`, `/info` and `/system/df`: the daemon describing itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use api_types::system::{
    Commit, ComponentVersion, ContainerdInfo, ContainerdNamespaces, IndexInfo, Platform,
    PluginsInfo, RegistryConfig, Runtime, SwarmInfo, SystemDataUsage, SystemInfo, SystemVersion,
};
use api_types::version::{MAX_API_VERSION, MIN_API_VERSION};

use super::images::ImageService;
use super::ServiceError;
use crate::backends::containerd::Containerd;
use crate::backends::host::{self, CgroupFeatures, HostInfo};
use crate::config::Config;
use crate::release;

const OFFICIAL_INDEX: &str = "https://index.docker.io/v1/";
/// Loopback is always an insecure registry, as in dockerd.
const DEFAULT_INSECURE_CIDRS: &[&str] = &["::1/128", "127.0.0.0/8"];

pub struct SystemService {
    /// Replaced as a whole on reload.
    config: std::sync::RwLock<Arc<Config>>,
    containerd: Containerd,
    host: HostInfo,
    cgroups: CgroupFeatures,
    engine_id: String,
    images: Option<Arc<ImageService>>,
    volumes: Option<Arc<crate::services::volumes::VolumeService>>,
    containers: Option<Arc<crate::services::containers::ContainerService>>,
}

impl SystemService {
    pub fn new(config: Arc<Config>, containerd: Containerd, engine_id: String) -> Self {
        let host = HostInfo::read();
        let cgroups = CgroupFeatures::read(host.cgroup_version);
        Self {
            config: std::sync::RwLock::new(config),
            containerd,
            host,
            cgroups,
            engine_id,
            images: None,
            volumes: None,
            containers: None,
        }
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Install a reloaded configuration.
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Containers by state, for the metrics endpoint.
    pub async fn container_states(&self) -> Result<crate::services::metrics::ContainerStates, ServiceError> {
        let s = self.containerd.summary().await?;
        Ok(crate::services::metrics::ContainerStates { running: s.running, paused: s.paused, stopped: s.stopped })
    }

    pub fn engine_id(&self) -> &str {
        &self.engine_id
    }

    /// Count images and their sizes through the image service.
    pub fn with_images(mut self, images: Arc<ImageService>) -> Self {
        self.images = Some(images);
        self
    }

    pub fn with_volumes(mut self, volumes: Arc<crate::services::volumes::VolumeService>) -> Self {
        self.volumes = Some(volumes);
        self
    }

    /// List containers (with their sizes) in `/system/df`.
    pub fn with_containers(mut self, containers: Arc<crate::services::containers::ContainerService>) -> Self {
        self.containers = Some(containers);
        self
    }

    pub async fn version(&self) -> Result<SystemVersion, ServiceError> {
        let containerd = self.containerd.version().await?;
        let mut components = vec![ComponentVersion {
            name: "Engine".into(),
            version: release::VERSION.into(),
            details: BTreeMap::from([
                ("ApiVersion".into(), MAX_API_VERSION.to_string()),
                ("Arch".into(), host::go_arch().into()),
                ("BuildTime".into(), release::BUILD_TIME.into()),
                ("Experimental".into(), "false".into()),
                ("GitCommit".into(), release::GIT_COMMIT.into()),
                ("GoVersion".into(), release::RUSTC_VERSION.into()),
                ("KernelVersion".into(), self.host.kernel_version.clone()),
                ("MinAPIVersion".into(), MIN_API_VERSION.to_string()),
                ("Os".into(), "linux".into()),
            ]),
        }];
        components.push(ComponentVersion {
            name: "containerd".into(),
            version: containerd.version,
            details: BTreeMap::from([("GitCommit".into(), containerd.revision)]),
        });
        if let Some((version, commit)) = host::runc_version().await {
            components.push(ComponentVersion {
                name: "runc".into(),
                version,
                details: BTreeMap::from([("GitCommit".into(), commit)]),
            });
        }
        Ok(SystemVersion {
            platform: Platform { name: "berthd".into() },
            components,
            version: release::VERSION.into(),
            api_version: MAX_API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: release::GIT_COMMIT.into(),
            go_version: release::RUSTC_VERSION.into(),
            os: "linux".into(),
            arch: host::go_arch().into(),
            kernel_version: self.host.kernel_version.clone(),
            build_time: release::BUILD_TIME.into(),
        })
    }

    pub async fn info(&self) -> Result<SystemInfo, ServiceError> {
        let (summary, containerd, runc) = tokio::join!(
            self.containerd.summary(),
            self.containerd.version(),
            host::runc_version()
        );
        let summary = summary?;
        let containerd = containerd?;
        let images = match &self.images {
            Some(images) => images.count().await?,
            None => summary.images,
        };
        let config = &self.config();
        let cg = self.cgroups;
        Ok(SystemInfo {
            id: self.engine_id.clone(),
            containers: summary.containers,
            containers_running: summary.running,
            containers_paused: summary.paused,
            containers_stopped: summary.stopped,
            images,
            driver: self.containerd.snapshotter().into(),
            driver_status: vec![["driver-type".into(), "io.containerd.snapshotter.v1".into()]],
            plugins: PluginsInfo::default(),
            memory_limit: cg.memory_limit,
            swap_limit: cg.swap_limit,
            cpu_cfs_period: cg.cpu_cfs_period,
            cpu_cfs_quota: cg.cpu_cfs_quota,
            cpu_shares: cg.cpu_shares,
            cpu_set: cg.cpu_set,
            pids_limit: cg.pids_limit,
            oom_kill_disable: cg.oom_kill_disable,
            ipv4_forwarding: host::ipv4_forwarding(),
            debug: config.debug,
            n_fd: host::open_fds(),
            n_goroutines: tokio::runtime::Handle::current().metrics().num_alive_tasks() as i64,
            system_time: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: self.host.cgroup_version.into(),
            n_events_listener: 0,
            kernel_version: self.host.kernel_version.clone(),
            operating_system: self.host.operating_system.clone(),
            os_version: self.host.os_version.clone(),
            os_type: "linux".into(),
            architecture: self.host.machine.clone(),
            index_server_address: OFFICIAL_INDEX.into(),
            registry_config: registry_config(config),
            ncpu: self.host.ncpu,
            mem_total: self.host.mem_total,
            generic_resources: None,
            docker_root_dir: config.data_root.display().to_string(),
            http_proxy: proxy_env("HTTP_PROXY"),
            https_proxy: proxy_env("HTTPS_PROXY"),
            no_proxy: proxy_env("NO_PROXY"),
            name: self.host.hostname.clone(),
            labels: config.labels.clone(),
            experimental_build: false,
            server_version: release::VERSION.into(),
            runtimes: runtimes(&config.container_defaults),
            default_runtime: config.container_defaults.default_runtime.clone(),
            swarm: SwarmInfo::inactive(),
            live_restore_enabled: config.live_restore,
            isolation: String::new(),
            init_binary: String::new(),
            containerd_commit: Commit { id: containerd.revision },
            runc_commit: Commit { id: runc.map(|(_, commit)| commit).unwrap_or_default() },
            init_commit: Commit::default(),
            security_options: vec!["name=seccomp,profile=builtin".into()],
            default_address_pools: vec![],
            cdi_spec_dirs: vec![],
            containerd: ContainerdInfo {
                address: self.containerd.address().display().to_string(),
                namespaces: ContainerdNamespaces {
                    containers: self.containerd.namespace().into(),
                    plugins: self.containerd.namespace().into(),
                },
            },
            warnings: warnings(config),
        })
    }

    /// `GET /system/df`: the asked kinds only (`type=`), each computed side
    /// by side; a kind not asked is `null`, as dockerd answers.
    pub async fn data_usage(&self, kinds: DataUsageKinds) -> Result<SystemDataUsage, ServiceError> {
        let volumes = async {
            match (&self.volumes, kinds.volumes) {
                (_, false) => None,
                (Some(v), true) => Some(v.usage().await.into_iter().map(|v| serde_json::to_value(v).unwrap_or_default()).collect()),
                (None, true) => Some(vec![]),
            }
        };
        let build_cache = kinds.build_cache.then(Vec::new);
        let Some(images) = &self.images else {
            let layers_size = if kinds.images { self.containerd.content_size().await? } else { 0 };
            return Ok(SystemDataUsage {
                layers_size,
                images: kinds.images.then(Vec::new),
                containers: kinds.containers.then(Vec::new),
                volumes: volumes.await,
                build_cache,
            });
        };
        let image_usage = async {
            if !kinds.images {
                return Ok((vec![], 0));
            }
            let all = Default::default();
            let (list, layers) = tokio::join!(images.list(&all), images.layers_size());
            Ok::<_, ServiceError>((list?, layers?))
        };
        // Images count their containers: listed without sizes when only
        // images are asked.
        let containers = async {
            match &self.containers {
                Some(c) if kinds.containers || kinds.images => c.disk_usage(kinds.containers).await,
                _ => Ok(vec![]),
            }
        };
        let (volumes, image_usage, containers) = tokio::join!(volumes, image_usage, containers);
        let ((summaries, layers_size), containers) = (image_usage?, containers?);
        Ok(SystemDataUsage {
            layers_size,
            images: kinds.images.then(|| {
                summaries
                    .into_iter()
                    .map(|mut s| {
                        s.shared_size = 0;
                        // How many containers use it (dockerd counts them here only).
                        s.containers = containers.iter().filter(|c| c.image_id == s.id).count() as i64;
                        serde_json::to_value(s).unwrap_or_default()
                    })
                    .collect()
            }),
            containers: kinds
                .containers
                .then(|| containers.into_iter().map(|c| serde_json::to_value(c).unwrap_or_default()).collect()),
            volumes,
            build_cache,
        })
    }
}

/// The object kinds `/system/df` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataUsageKinds {
    pub containers: bool,
    pub images: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

impl DataUsageKinds {
    pub const ALL: Self = Self { containers: true, images: true, volumes: true, build_cache: true };
    pub const NONE: Self = Self { containers: false, images: false, volumes: false, build_cache: false };

    /// Add a kind by its `type=` name; false for an unknown one.
    pub fn add(&mut self, kind: &str) -> bool {
        match kind {
            "container" => self.containers = true,
            "image" => self.images = true,
            "volume" => self.volumes = true,
            "build-cache" => self.build_cache = true,
            _ => return false,
        }
        true
    }
}

fn registry_config(config: &Config) -> RegistryConfig {
    let mut cidrs: Vec<String> = config.insecure_registries.iter().filter(|r| r.contains('/')).cloned().collect();
    for default in DEFAULT_INSECURE_CIDRS {
        if !cidrs.iter().any(|c| c == default) {
            cidrs.push(default.to_string());
        }
    }
    let mut index_configs = BTreeMap::from([(
        "docker.io".to_string(),
        IndexInfo {
            name: "docker.io".into(),
            mirrors: config.registry_mirrors.clone(),
            secure: true,
            official: true,
        },
    )]);
    for registry in config.insecure_registries.iter().filter(|r| !r.contains('/')) {
        index_configs.insert(
            registry.clone(),
            IndexInfo { name: registry.clone(), mirrors: vec![], secure: false, official: false },
        );
    }
    RegistryConfig { insecure_registry_cidrs: cidrs, index_configs, mirrors: config.registry_mirrors.clone() }
}

/// Proxy settings with any credentials masked, as dockerd shows them.
fn proxy_env(name: &str) -> String {
    mask_proxy(std::env::var(name).or_else(|_| std::env::var(name.to_lowercase())).unwrap_or_default())
}

fn mask_proxy(value: String) -> String {
    match value.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(_, h)| (scheme, h))) {
        Some((scheme, host)) => format!("{scheme}://xxxxx:xxxxx@{host}"),
        None => value,
    }
}

fn warnings(config: &Config) -> Vec<String> {
    config
        .hosts
        .iter()
        .filter(|h| h.starts_with("tcp://") && config.tls.is_none())
        .map(|h| {
            format!(
                "[DEPRECATION NOTICE]: API is accessible on http://{} without encryption.",
                h.trim_start_matches("tcp://")
            )
        })
        .collect()
}

/// `/info` `Runtimes`: runc under both its names, and the configured ones.
fn runtimes(defaults: &crate::config::container_defaults::ContainerDefaults) -> BTreeMap<String, Runtime> {
    let mut out = BTreeMap::from([
        ("io.containerd.runc.v2".into(), Runtime { path: "runc".into(), runtime_args: None }),
        ("runc".into(), Runtime { path: "runc".into(), runtime_args: None }),
    ]);
    for (name, r) in &defaults.runtimes {
        let args = (!r.runtime_args.is_empty()).then(|| r.runtime_args.clone());
        out.insert(name.clone(), Runtime { path: r.path.clone(), runtime_args: args });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_masked() {
        assert_eq!(mask_proxy("http://user:secret@proxy:3128".into()), "http://xxxxx:xxxxx@proxy:3128");
        assert_eq!(mask_proxy("http://proxy:3128".into()), "http://proxy:3128");
    }
}
