//! `docker inspect` of a container: dockerd's shape with every field.

use api_types::container::{ContainerInspect, ContainerState, GraphDriver};

use super::list::network_mode;
use super::record::Status;
use super::ContainerService;
use crate::services::ServiceError;

impl ContainerService {
    pub async fn inspect(&self, name: &str) -> Result<ContainerInspect, ServiceError> {
        let entry = self.lookup(name)?;
        let r = entry.record.lock().await.clone();
        let s = &r.state;
        let mut host_config = r.host_config.clone();
        host_config.network_mode = network_mode(&r).to_string();
        host_config.other.insert("Links".into(), serde_json::json!(self.links_for_inspect(&r).await));
        let mounts = self.mount_points(&r);
        Ok(ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: ContainerState {
                status: s.status.as_str().to_string(),
                running: matches!(s.status, Status::Running | Status::Paused | Status::Restarting),
                paused: s.status == Status::Paused,
                restarting: s.status == Status::Restarting,
                oom_killed: s.oom_killed,
                dead: s.status == Status::Dead,
                pid: i64::from(s.pid),
                exit_code: s.exit_code,
                error: s.error.clone(),
                started_at: s.started_at.clone(),
                finished_at: s.finished_at.clone(),
                health: s.health.clone(),
            },
            image: r.image_id.clone(),
            resolv_conf_path: r.resolv_conf_path.clone(),
            hostname_path: r.hostname_path.clone(),
            hosts_path: r.hosts_path.clone(),
            log_path: r.log_path.clone(),
            name: r.name.clone(),
            restart_count: r.restart_count,
            driver: self.containerd.snapshotter().to_string(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: None,
            size_rw: None,
            size_root_fs: None,
            host_config,
            graph_driver: GraphDriver { name: self.containerd.snapshotter().to_string(), data: None },
            mounts,
            config: r.config.clone(),
            network_settings: self.network_settings(&r).await,
        })
    }
}
