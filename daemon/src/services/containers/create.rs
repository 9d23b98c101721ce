//! `docker create`: resolve the image, merge its config, reserve the name,
//! record the container, then make containerd's container and snapshot.

use std::collections::HashMap;

use api_types::container::{ContainerConfig, ContainerCreateRequest, ContainerCreateResponse, HostConfig};

use super::image::{self, ImageForContainer};
use super::record::{Container, State};
use super::{naming, user, ContainerService, Entry};
use crate::backends::containerd::{Containerd, NewContainer};
use crate::backends::oci_spec::{self, EtcFiles, SpecInput};
use crate::services::ServiceError;

pub struct CreateOptions {
    pub name: Option<String>,
    pub body: ContainerCreateRequest,
}

/// Label on containerd's record so other tools can tell whose it is.
pub(super) const OWNER_LABEL: &str = "io.berthd.owner";
pub(super) const OWNER: &str = "berthd";
/// How long a create's lease outlives a crash before containerd drops it.
const LEASE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(3600);

impl ContainerService {
    pub async fn create(&self, opts: CreateOptions) -> Result<ContainerCreateResponse, ServiceError> {
        let requested_name = opts.name.filter(|n| !n.is_empty()).map(|n| naming::validate(&n)).transpose()?;
        let ContainerCreateRequest { config, mut host_config, networking_config } = opts.body;
        if config.image.is_empty() {
            return Err(ServiceError::InvalidParameter("config cannot be empty in order to create a container".into()));
        }
        validate_host_config(&host_config)?;
        let resource_warnings = super::resources::Limits::of(&host_config).check(false)?;
        super::resources::Limits::default_swap(&mut host_config);
        super::mounts::validate(&host_config)?;
        super::mounts::bind_daemon_root(&mut host_config, &self.data_root)?;
        super::health::validate(config.healthcheck.as_ref())?;
        if let Some(signal) = &config.stop_signal {
            super::stop::check_stop_signal(signal)?;
        }
        let mut warnings = resource_warnings;
        warnings.extend(self.check_isolation(&mut host_config)?);
        self.settle_log_config(&mut host_config)?;
        if matches!(host_config.network_mode.as_str(), "" | "default") {
            if let Some(network) = endpoints_network(networking_config.as_ref()) {
                host_config.network_mode = network;
            }
        }
        // An unknown network, endpoint setting or a bad port fails the
        // create before anything is made.
        let networks = self.plan_networks(&host_config.network_mode, networking_config.as_ref()).await?;
        let publish = crate::services::networks::ports::requests(&host_config.other, config.exposed_ports.as_ref())?;
        let joined = self.network_container(&host_config.network_mode).await?;
        let links = self.plan_links(&host_config).await?;
        self.extra_hosts(&host_config).await?;
        if let Some(other) = &joined {
            if !config.hostname.is_empty() {
                return Err(ServiceError::InvalidParameter("conflicting options: hostname and the network mode".into()));
            }
            if !publish.is_empty() {
                return Err(ServiceError::InvalidParameter(
                    "conflicting options: port publishing and the container type network mode".into(),
                ));
            }
            // As dockerd, the mode names the container by ID from here on.
            host_config.network_mode = format!("container:{}", other.id);
        }
        let image = image::resolve(&self.images, &config.image).await?;
        let config = merge_image_config(config, &image.config);
        let (path, args) = entrypoint_and_args(&config)?;
        let inherited = self.volumes_from(&host_config).await?;
        let mut volumes = super::volumes::plan(&config, &host_config, &inherited.destinations())?;
        volumes.extend(inherited.volumes);
        super::mounts::create_bind_sources(&host_config)?;
        let id = new_id();
        let mut config = config;
        if let Some(other) = &joined {
            config.hostname = other.config.hostname.clone();
        } else if config.hostname.is_empty() {
            // On the host's network dockerd names the container as the host.
            let host = (host_config.network_mode == "host").then(host_name).flatten();
            config.hostname = host.unwrap_or_else(|| id[..12].to_string());
        }
        let dir = self.container_dir(&id);
        // A container on another's namespace shares its hosts files.
        let files_dir = joined.as_ref().map(|o| self.container_dir(&o.id)).unwrap_or_else(|| dir.clone());
        let record = Container {
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            path,
            args,
            image_name: config.image.clone(),
            image_id: image.id.clone(),
            image_ref: image.record.clone(),
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            // dockerd names a log file only for json-file.
            log_path: if host_config.log_config.kind == "json-file" {
                dir.join(format!("{id}-json.log")).display().to_string()
            } else {
                String::new()
            },
            hostname_path: files_dir.join("hostname").display().to_string(),
            hosts_path: files_dir.join("hosts").display().to_string(),
            resolv_conf_path: files_dir.join("resolv.conf").display().to_string(),
            name: String::new(),
            id: id.clone(),
            config,
            host_config,
            volumes,
            inherited_binds: inherited.binds,
            network_aliases: endpoint_aliases(networking_config.as_ref()),
            networks,
            links,
        };
        let record = self.reserve(record, requested_name)?;
        // The snapshot is a GC root only once the container refers to it;
        // until then a lease holds it (and expires if we crash meanwhile).
        let lease = format!("berthd-create-{id}");
        let materialized = match self.containerd.lease_create(&lease, "container create", LEASE_EXPIRY).await {
            Ok(lease) => {
                let result = self.materialize(&self.containerd.with_lease(&lease), &record, &image).await;
                if let Err(e) = self.containerd.lease_delete(&lease, false).await {
                    tracing::warn!(container.id = %id, error = %e, "dropping the create lease");
                }
                result
            }
            Err(e) => Err(e.into()),
        };
        if let Err(e) = materialized {
            self.forget(&record.id, &record.name);
            self.detach_volumes(&record, true).await;
            let _ = self.containerd.container_delete(&record.id).await;
            let _ = self.containerd.rootfs_remove(&record.id).await;
            let _ = self.store.remove(&record.id);
            return Err(e);
        }
        self.emit(&record, "create", &[]);
        Ok(ContainerCreateResponse { id, warnings })
    }

    /// Claim the name and register the container; the record is on disk
    /// before anything is created in containerd.
    fn reserve(&self, mut record: Container, name: Option<String>) -> Result<Container, ServiceError> {
        let mut reg = self.registry_mut();
        record.name = match name {
            Some(name) => {
                if let Some(holder) = reg.names.get(&name) {
                    return Err(name_conflict(&name, holder));
                }
                name
            }
            None => (0..)
                .map(naming::generate)
                .find(|n| !reg.names.contains_key(n))
                .unwrap_or_else(|| format!("/{}", &record.id[..12])),
        };
        self.save(&record)?;
        reg.names.insert(record.name.clone(), record.id.clone());
        reg.by_id.insert(record.id.clone(), Entry::new(record.clone(), &self.version));
        Ok(record)
    }

    pub(super) fn forget(&self, id: &str, name: &str) {
        let mut reg = self.registry_mut();
        reg.by_id.remove(id);
        if reg.names.get(name).is_some_and(|holder| holder == id) {
            reg.names.remove(name);
        }
    }

    /// The containerd side: writable snapshot, hosts files, spec, record.
    async fn materialize(&self, containerd: &Containerd, record: &Container, image: &ImageForContainer) -> Result<(), ServiceError> {
        let scratch = self.container_dir(&record.id).join(format!("init-{}", uuid::Uuid::new_v4().simple()));
        let init = match super::init_layer::ensure(containerd, &image.id, &image.top_chain_id, scratch.clone()).await {
            // Pulled under another storage-driver: unpack it into this one.
            Err(ServiceError::NotFound(_)) if !image.top_chain_id.is_empty() => {
                self.images.ensure_unpacked(&image.id).await?;
                super::init_layer::ensure(containerd, &image.id, &image.top_chain_id, scratch).await?
            }
            made => made?,
        };
        let mounts = containerd.rootfs_prepare(&record.id, &init).await?;
        let files = user::RootfsFiles::new(&mounts);
        let host_config = self.attach_volumes(record, &files).await?;
        let group_add: Vec<String> = record
            .host_config
            .other
            .get("GroupAdd")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let process_user = user::resolve(&record.config.user, &group_add, &files)?;
        let (network, host_network) = self.spec_namespace(record).await?;
        let etc = if record.host_config.network_mode.starts_with("container:") {
            EtcFiles {
                hostname: record.hostname_path.clone().into(),
                hosts: record.hosts_path.clone().into(),
                resolv_conf: record.resolv_conf_path.clone().into(),
            }
        } else {
            // As dockerd, only user-defined networks have the embedded DNS.
            let mode = record.host_config.network_mode.as_str();
            let embedded_dns = crate::services::networks::predefined_mode(mode).is_none();
            super::etc_files::write(
                &self.container_dir(&record.id),
                &record.config.hostname,
                host_network,
                &self.resolv_settings(record, embedded_dns),
                &self.extra_hosts(&record.host_config).await?,
            )
            .map_err(|e| ServiceError::Internal(format!("writing hosts files: {e}")))?
        };
        let devices = Self::container_devices(&record.host_config)?;
        let mut args = vec![record.path.clone()];
        args.extend(record.args.iter().cloned());
        let spec = oci_spec::generate(&SpecInput {
            id: &record.id,
            config: &record.config,
            host_config: &host_config,
            args,
            env: super::environment::process_env(
                &record.config.hostname,
                record.config.tty,
                Vec::new(),
                record.config.env.as_deref().unwrap_or_default(),
            ),
            user: process_user,
            hostname: record.config.hostname.clone(),
            etc_files: Some(etc),
            network,
            cgroups_path: format!("/docker/{}", record.id),
            defaults: &self.defaults(),
            devices: &devices,
            joined: self.own_namespaces(record),
        })
        .map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        containerd
            .container_create(NewContainer {
                id: &record.id,
                image: &image.record,
                snapshot_key: &record.id,
                spec: &spec,
                labels: HashMap::from([(OWNER_LABEL.to_string(), OWNER.to_string())]),
                runtime_binary: self.runtime_binary(&record.host_config.runtime)?.as_deref(),
            })
            .await?;
        Ok(())
    }
}

/// dockerd's text for a name held by another container.
pub(super) fn name_conflict(name: &str, holder: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "Conflict. The container name \"{name}\" is already in use by container \"{holder}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn new_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The network `NetworkingConfig.EndpointsConfig` names first, for
/// clients that send it without `NetworkMode`.
fn endpoints_network(networking_config: Option<&serde_json::Value>) -> Option<String> {
    let endpoints = networking_config?.get("EndpointsConfig")?.as_object()?;
    endpoints.keys().next().cloned()
}

/// The aliases each network of `NetworkingConfig.EndpointsConfig` asks for.
fn endpoint_aliases(networking_config: Option<&serde_json::Value>) -> std::collections::BTreeMap<String, Vec<String>> {
    let Some(endpoints) = networking_config.and_then(|c| c.get("EndpointsConfig")).and_then(|e| e.as_object()) else {
        return Default::default();
    };
    endpoints
        .iter()
        .filter_map(|(network, endpoint)| {
            let aliases: Vec<String> = serde_json::from_value(endpoint.get("Aliases")?.clone()).ok()?;
            (!aliases.is_empty()).then(|| (network.clone(), aliases))
        })
        .collect()
}

pub(super) fn validate_host_config(hc: &HostConfig) -> Result<(), ServiceError> {
    let policy = &hc.restart_policy;
    match policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if policy.maximum_retry_count != 0 {
                return Err(ServiceError::InvalidParameter(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
                ));
            }
        }
        "on-failure" => {
            if policy.maximum_retry_count < 0 {
                return Err(ServiceError::InvalidParameter(
                    "invalid restart policy: maximum retry count must be a positive integer".into(),
                ));
            }
        }
        other => {
            return Err(ServiceError::InvalidParameter(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if hc.auto_remove && !matches!(policy.name.as_str(), "" | "no") {
        return Err(ServiceError::InvalidParameter(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    // dockerd answers these with a 500; the text is what clients show.
    oci_spec::security_opts(hc.security_opt.as_deref().unwrap_or_default())
        .map_err(ServiceError::InvalidParameter)?;
    Ok(())
}

/// The host's name, as `os.Hostname` reads it.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// dockerd's merge of the create config over the image config.
pub fn merge_image_config(mut user: ContainerConfig, image: &ContainerConfig) -> ContainerConfig {
    if user.user.is_empty() {
        user.user = image.user.clone();
    }
    if let Some(image_ports) = &image.exposed_ports {
        let ports = user.exposed_ports.get_or_insert_with(Default::default);
        for (k, v) in image_ports {
            ports.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut env = user.env.take().unwrap_or_default();
    for image_env in image.env.iter().flatten() {
        let key = image_env.split('=').next().unwrap_or_default();
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(image_env.clone());
        }
    }
    user.env = Some(env);
    let mut labels = image.labels.clone();
    labels.extend(std::mem::take(&mut user.labels));
    user.labels = labels;
    // `--entrypoint ""` arrives as [""]: no entrypoint, and not the image's.
    let entrypoint_cleared = user.entrypoint.as_ref().is_some_and(|e| e.len() == 1 && e[0].is_empty());
    if entrypoint_cleared {
        user.entrypoint = None;
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = image.cmd.clone();
        }
        if !entrypoint_cleared && user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    if let Some(image_volumes) = &image.volumes {
        let volumes = user.volumes.get_or_insert_with(Default::default);
        for (k, v) in image_volumes {
            volumes.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if user.stop_signal.is_none() {
        user.stop_signal = image.stop_signal.clone();
    }
    user.healthcheck = super::health::merge(user.healthcheck.take(), image.healthcheck.as_ref());
    user
}

/// The process path and arguments: entrypoint first, then cmd.
pub fn entrypoint_and_args(config: &ContainerConfig) -> Result<(String, Vec<String>), ServiceError> {
    let mut all: Vec<String> = config.entrypoint.iter().flatten().cloned().collect();
    all.extend(config.cmd.iter().flatten().cloned());
    if all.is_empty() {
        return Err(ServiceError::InvalidParameter("No command specified".into()));
    }
    let path = all.remove(0);
    Ok((path, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ContainerConfig {
        ContainerConfig {
            env: Some(vec!["PATH=/img/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: "/app".into(),
            labels: [("l".to_string(), "image".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn user_values_win_and_image_fills_gaps() {
        let user = ContainerConfig {
            env: Some(vec!["A=user".into()]),
            labels: [("l".to_string(), "user".to_string())].into(),
            ..Default::default()
        };
        let merged = merge_image_config(user, &image());
        assert_eq!(merged.env.unwrap(), ["A=user", "PATH=/img/bin"]);
        assert_eq!(merged.labels["l"], "user");
        assert_eq!(merged.cmd.unwrap(), ["sh"]);
        assert_eq!(merged.entrypoint.unwrap(), ["/init"]);
        assert_eq!(merged.working_dir, "/app");
    }

    #[test]
    fn user_cmd_replaces_image_cmd_and_empty_entrypoint_clears() {
        let user = ContainerConfig { cmd: Some(vec!["echo".into(), "hi".into()]), ..Default::default() };
        let merged = merge_image_config(user, &image());
        assert_eq!(entrypoint_and_args(&merged).unwrap(), ("/init".to_string(), vec!["echo".into(), "hi".into()]));
        let user = ContainerConfig { entrypoint: Some(vec![String::new()]), cmd: Some(vec!["ls".into()]), ..Default::default() };
        let merged = merge_image_config(user, &image());
        assert_eq!(entrypoint_and_args(&merged).unwrap(), ("ls".to_string(), vec![]));
    }

    #[test]
    fn no_command_is_an_error() {
        assert!(entrypoint_and_args(&ContainerConfig::default()).is_err());
    }

    #[test]
    fn restart_policy_rules() {
        let mut hc = HostConfig::default();
        hc.restart_policy.name = "always".into();
        hc.auto_remove = true;
        assert!(validate_host_config(&hc).is_err());
        hc.auto_remove = false;
        assert!(validate_host_config(&hc).is_ok());
        hc.restart_policy.name = "sometimes".into();
        assert!(validate_host_config(&hc).is_err());
    }
}
