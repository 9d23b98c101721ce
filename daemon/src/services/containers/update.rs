//! `docker update`: change a container's restart policy and resource
//! limits, on its running task at once and for its later runs.

use api_types::container::{ContainerUpdateRequest, ContainerUpdateResponse, HostConfig};

use super::isolation::Cpuset;
use super::resources::Limits;
use super::ContainerService;
use crate::backends::oci_spec::linux_resources;
use crate::services::ServiceError;

impl ContainerService {
    pub async fn update(&self, name: &str, req: ContainerUpdateRequest) -> Result<ContainerUpdateResponse, ServiceError> {
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        let mut hc = record.host_config.clone();
        // Records from before the default was stored.
        Limits::default_swap(&mut hc);
        let limits = Limits::of_update(&req);
        limits.check(true)?;
        if let Some(conflict) = limits.conflict_with(&Limits::of(&hc)) {
            return Err(ServiceError::Conflict(format!("Cannot update container {}: {conflict}", record.id)));
        }
        let resources_changed = apply(&mut hc, &req)?;
        let warnings: Vec<String> = super::isolation::discard_unsupported_blkio_weight(&mut hc).into_iter().collect();
        if let Some(policy) = req.restart_policy.filter(|p| !p.name.is_empty()) {
            if hc.auto_remove && policy.name != "no" {
                // dockerd's UpdateContainer conflict, wrapped as its update wraps it.
                return Err(ServiceError::Conflict(format!(
                    "Cannot update container {}: Restart policy cannot be updated because AutoRemove is enabled for the container",
                    record.id
                )));
            }
            hc.restart_policy = policy;
            super::create::validate_host_config(&hc)?;
        }
        if resources_changed {
            let resources = linux_resources(&hc);
            if record.state.status.is_live() && record.state.status != super::Status::Restarting {
                let mut live = resources.clone();
                if let Some(r) = live.as_object_mut() {
                    r.remove("devices");
                }
                self.containerd.task_update(&record.id, &live).await.map_err(|e| {
                    ServiceError::Internal(format!("Cannot update container {}: {}", record.id, e.message))
                })?;
            }
            self.containerd.container_set_resources(&record.id, &resources).await?;
        }
        record.host_config = hc;
        self.save(&record)?;
        self.emit(&record, "update", &[]);
        Ok(ContainerUpdateResponse { warnings })
    }
}

/// Copy the resources the request sets (non-zero) into the host config;
/// true when any was set.
fn apply(hc: &mut HostConfig, req: &ContainerUpdateRequest) -> Result<bool, ServiceError> {
    let mut changed = false;
    let mut set = |field: &mut i64, value: i64| {
        if value != 0 {
            *field = value;
            changed = true;
        }
    };
    set(&mut hc.memory, req.memory);
    set(&mut hc.memory_swap, req.memory_swap);
    set(&mut hc.nano_cpus, req.nano_cpus);
    set(&mut hc.cpu_shares, req.cpu_shares);
    for (key, value) in [("MemoryReservation", req.memory_reservation), ("CpuPeriod", req.cpu_period), ("CpuQuota", req.cpu_quota)] {
        if value != 0 {
            hc.other.insert(key.into(), value.into());
            changed = true;
        }
    }
    if let Some(limit) = req.pids_limit.filter(|l| *l != 0) {
        hc.pids_limit = Some(limit);
        changed = true;
    }
    for (kind, value) in [(Cpuset::Cpus, &req.cpuset_cpus), (Cpuset::Mems, &req.cpuset_mems)] {
        if !value.is_empty() {
            super::isolation::check_cpuset(kind, value)?;
        }
    }
    for (key, value) in [("CpusetCpus", &req.cpuset_cpus), ("CpusetMems", &req.cpuset_mems)] {
        if !value.is_empty() {
            hc.other.insert(key.into(), value.as_str().into());
            changed = true;
        }
    }
    if req.blkio_weight != 0 {
        hc.other.insert("BlkioWeight".into(), req.blkio_weight.into());
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_leave_values_alone() {
        let mut hc = HostConfig { memory: 64 << 20, cpu_shares: 512, ..Default::default() };
        let req = ContainerUpdateRequest { pids_limit: Some(20), ..Default::default() };
        assert!(apply(&mut hc, &req).unwrap());
        assert_eq!((hc.memory, hc.cpu_shares, hc.pids_limit), (64 << 20, 512, Some(20)));
        assert!(!apply(&mut hc, &ContainerUpdateRequest::default()).unwrap());
    }
}
