//! What a container shares with the host or with other containers, and
//! what it is allowed of it: IPC/PID/UTS/cgroup namespace modes, ulimits,
//! devices, sysctls, the OOM score. Checked at create, resolved at start.

use std::path::PathBuf;

use api_types::container::HostConfig;
use serde_json::{json, Value};

use super::record::{Container, Status};
use super::ContainerService;
use crate::backends::oci_spec::devices::{self, ResolvedDevice};
use crate::backends::oci_spec::namespaces::{self, JoinedNamespaces};
use crate::backends::oci_spec::HostExtras;
use crate::services::ServiceError;

/// The fields [`HostExtras`] reads, in `HostConfig.other`.
const EXTRA_KEYS: &[&str] = &[
    "Ulimits", "Devices", "DeviceCgroupRules", "Sysctls", "IpcMode", "PidMode", "UTSMode", "CgroupnsMode",
    "OomScoreAdj", "CpusetCpus", "CpusetMems", "BlkioWeight", "ShmSize",
];

impl ContainerService {
    /// dockerd's create-time checks; fills in the daemon's default IPC and
    /// cgroup namespace modes so that inspect shows them as dockerd does.
    /// Returns dockerd's warnings for settings the host cannot honour.
    pub(super) fn check_isolation(&self, hc: &mut HostConfig) -> Result<Vec<String>, ServiceError> {
        let subset: serde_json::Map<String, Value> = EXTRA_KEYS
            .iter()
            .filter_map(|k| hc.other.get(*k).filter(|v| !v.is_null()).map(|v| (k.to_string(), v.clone())))
            .collect();
        let extras = HostExtras::parse(Value::Object(subset))
            .map_err(|e| ServiceError::InvalidParameter(format!("invalid HostConfig: {e}")))?;
        namespaces::check_modes(&extras).map_err(ServiceError::InvalidParameter)?;
        // Linux has one isolation technology; dockerd names Windows' others invalid.
        let isolation = hc.other.get("Isolation").and_then(Value::as_str).unwrap_or_default();
        if !isolation.is_empty() && !isolation.eq_ignore_ascii_case("default") {
            return Err(ServiceError::InvalidParameter(format!(
                "Invalid isolation: \"{isolation}\" - linux only supports 'default'"
            )));
        }
        self.defaults().runtime_binary(&hc.runtime).map_err(ServiceError::InvalidParameter)?;
        if hc.runtime.is_empty() {
            hc.runtime = self.defaults().default_runtime.clone();
        }
        for u in extras.ulimits.iter().flatten() {
            u.check().map_err(ServiceError::InvalidParameter)?;
        }
        if let Some(adj) = extras.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
            return Err(ServiceError::InvalidParameter(format!(
                "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
            )));
        }
        check_sysctls(&extras, &hc.network_mode)?;
        for rule in extras.device_cgroup_rules.iter().flatten() {
            devices::parse_cgroup_rule(rule).map_err(ServiceError::InvalidParameter)?;
        }
        for mode in [extras.ipc_mode(), extras.pid_mode()] {
            if let Some(donor) = namespaces::container_of(mode) {
                self.lookup(donor)?;
            }
        }
        if let Some(cpus) = extras.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
            check_cpuset(Cpuset::Cpus, cpus)?;
        }
        if let Some(mems) = extras.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
            check_cpuset(Cpuset::Mems, mems)?;
        }
        let mut warnings = Vec::new();
        if let Some(warning) = discard_unsupported_blkio_weight(hc) {
            warnings.push(warning);
        }
        warnings.extend(oom_kill_disable_warning(hc));
        if extras.ipc_mode().is_empty() {
            hc.other.insert("IpcMode".into(), json!(self.defaults().ipc_mode));
        }
        if extras.cgroupns_mode().is_empty() {
            hc.other.insert("CgroupnsMode".into(), json!(self.defaults().cgroupns_mode));
        }
        Ok(warnings)
    }

    /// The binary the runc shim runs for a configured runtime (`None` for
    /// runc). Runtime arguments need a wrapper script, as dockerd makes.
    pub(super) fn runtime_binary(&self, name: &str) -> Result<Option<String>, ServiceError> {
        let defaults = self.defaults();
        let Some(runtime) = defaults.runtime_binary(name).map_err(ServiceError::InvalidParameter)? else {
            return Ok(None);
        };
        if runtime.runtime_args.is_empty() {
            return Ok(Some(runtime.path.clone()));
        }
        let dir = self.exec_root.join("runtimes");
        let wrapper = dir.join(name);
        let quoted: Vec<String> = std::iter::once(&runtime.path)
            .chain(&runtime.runtime_args)
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let script = format!("#!/bin/sh\nexec {} \"$@\"\n", quoted.join(" "));
        let written = std::fs::create_dir_all(&dir).and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&wrapper, script)?;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        });
        written.map_err(|e| ServiceError::Internal(format!("writing the wrapper for runtime {name}: {e}")))?;
        Ok(Some(wrapper.display().to_string()))
    }

    /// The device nodes the spec lists: `--device`s, or all of the host's
    /// for a privileged container.
    pub(super) fn container_devices(hc: &HostConfig) -> Result<Vec<ResolvedDevice>, ServiceError> {
        let extras = HostExtras::of(hc);
        let mut out = if hc.privileged { devices::host_devices() } else { Vec::new() };
        out.extend(devices::resolve(extras.devices.as_deref().unwrap_or_default()).map_err(ServiceError::InvalidParameter)?);
        Ok(out)
    }

    /// Point the stored spec at the namespaces of the containers this one
    /// joins (`--ipc container:x`, `--pid container:x`); they must run.
    pub(super) async fn join_shared_namespaces(&self, record: &Container) -> Result<(), ServiceError> {
        let extras = HostExtras::of(&record.host_config);
        let mut joined = JoinedNamespaces::default();
        if let Some(donor) = namespaces::container_of(extras.ipc_mode()) {
            let (id, pid, donor_mode) = self.running_donor(donor, "IPC").await?;
            if !matches!(donor_mode.as_str(), "shareable" | "host") {
                return Err(ServiceError::Conflict(format!(
                    "can't join IPC of container {id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                )));
            }
            joined.ipc = Some(PathBuf::from(format!("/proc/{pid}/ns/ipc")));
            joined.shm = Some(self.shared_shm_dir(&id));
        }
        if let Some(donor) = namespaces::container_of(extras.pid_mode()) {
            let (_, pid, _) = self.running_donor(donor, "PID").await?;
            joined.pid = Some(PathBuf::from(format!("/proc/{pid}/ns/pid")));
        }
        if joined == JoinedNamespaces::default() {
            return Ok(());
        }
        self.containerd
            .container_edit_spec(&record.id, |spec| apply_joined(spec, &joined))
            .await
            .map_err(ServiceError::from)
    }

    /// Where a `shareable` container's `/dev/shm` tmpfs is mounted on the
    /// host, so that its IPC joiners can bind the same one.
    pub(super) fn shared_shm_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("mounts").join("shm")
    }

    /// The namespaces known at create: a shareable container's own shm.
    pub(super) fn own_namespaces(&self, record: &Container) -> JoinedNamespaces {
        let shareable = HostExtras::of(&record.host_config).ipc_mode() == "shareable";
        JoinedNamespaces { shm: shareable.then(|| self.shared_shm_dir(&record.id)), ..Default::default() }
    }

    /// Mount a shareable container's `/dev/shm` tmpfs before its task starts.
    pub(super) fn mount_shared_shm(&self, record: &Container) -> Result<(), ServiceError> {
        let extras = HostExtras::of(&record.host_config);
        if extras.ipc_mode() != "shareable" {
            return Ok(());
        }
        let dir = self.shared_shm_dir(&record.id);
        self.unmount_shared_shm(&record.id);
        std::fs::create_dir_all(&dir).map_err(|e| ServiceError::Internal(format!("creating {}: {e}", dir.display())))?;
        let size = crate::backends::oci_spec::shm_size(&extras, &self.defaults());
        crate::backends::mount::mount_tmpfs(&dir, &format!("mode=1777,size={size}"))
            .map_err(|e| ServiceError::Internal(format!("mounting shm tmpfs: {e}")))
    }

    /// Undo [`Self::mount_shared_shm`]; nothing mounted is fine.
    pub(super) fn unmount_shared_shm(&self, id: &str) {
        let dir = self.shared_shm_dir(id);
        if dir.exists() {
            // Not mounted (a container that never started) is fine.
            let _ = crate::backends::mount::unmount(&dir);
        }
    }

    async fn running_donor(&self, name: &str, what: &str) -> Result<(String, u32, String), ServiceError> {
        let entry = self.lookup(name)?;
        let donor = entry.record.lock().await;
        if !matches!(donor.state.status, Status::Running | Status::Paused) || donor.state.pid == 0 {
            return Err(ServiceError::Conflict(format!("cannot join {what} of a non running container: {}", donor.id)));
        }
        let mode = HostExtras::of(&donor.host_config).ipc_mode().to_string();
        Ok((donor.id.clone(), donor.state.pid, mode))
    }
}

/// Set the joined namespaces' paths and the shared `/dev/shm` in a spec.
fn apply_joined(spec: &mut Value, joined: &JoinedNamespaces) {
    if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
        for ns in list.iter_mut() {
            let path = match ns["type"].as_str() {
                Some("ipc") => &joined.ipc,
                Some("pid") => &joined.pid,
                _ => &None,
            };
            if let Some(path) = path {
                ns["path"] = json!(path);
            }
        }
    }
    if let (Some(shm), Some(mounts)) = (&joined.shm, spec["mounts"].as_array_mut()) {
        mounts.retain(|m| m["destination"] != "/dev/shm");
        mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": shm, "options": ["rbind", "rprivate"]}));
    }
}

/// A block I/O weight the kernel has no file for is dropped with dockerd's
/// warning (runc would fail the start otherwise).
pub(super) fn discard_unsupported_blkio_weight(hc: &mut HostConfig) -> Option<String> {
    let weight = hc.other.get("BlkioWeight").and_then(Value::as_i64).filter(|w| *w > 0)?;
    let supported = if crate::backends::host::cgroup_version() == "2" {
        std::path::Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists()
            && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("io"))
    } else {
        std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
    };
    if supported {
        if !(10..=1000).contains(&weight) {
            hc.other.remove("BlkioWeight");
            return Some("Range of blkio weight is from 10 to 1000.".into());
        }
        return None;
    }
    hc.other.insert("BlkioWeight".into(), json!(0));
    Some("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into())
}

/// dockerd's words for `--oom-kill-disable`: discarded where the kernel
/// has no such control (cgroup v2), and risky without a memory limit.
fn oom_kill_disable_warning(hc: &mut HostConfig) -> Option<String> {
    if hc.other.get("OomKillDisable").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    use crate::backends::host::{cgroup_version, CgroupFeatures};
    if !CgroupFeatures::read(cgroup_version()).oom_kill_disable {
        hc.other.remove("OomKillDisable");
        return Some("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
    }
    (hc.memory == 0).then(|| {
        "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
            .into()
    })
}

/// runc's refusals of sysctls that would change the host's namespaces,
/// made here because "host" networking may be realised by a namespace path
/// (a berthd that runs in a network namespace of its own).
fn check_sysctls(extras: &HostExtras, network_mode: &str) -> Result<(), ServiceError> {
    for key in extras.sysctls.iter().flatten().map(|(k, _)| k.as_str()) {
        if network_mode == "host" && key.starts_with("net.") {
            return Err(ServiceError::InvalidParameter(format!("sysctl \"{key}\" not allowed in host network namespace")));
        }
        let ipc = key.starts_with("fs.mqueue.") || (key.starts_with("kernel.") && (key.starts_with("kernel.msg") || key.starts_with("kernel.sem") || key.starts_with("kernel.shm")));
        if extras.ipc_mode() == "host" && ipc {
            return Err(ServiceError::InvalidParameter(format!("sysctl \"{key}\" is not allowed in the hosts ipc namespace")));
        }
    }
    Ok(())
}

/// Which cpuset list a value is: its words in dockerd's errors and where
/// the host's own list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cpuset {
    Cpus,
    Mems,
}

impl Cpuset {
    fn noun(self) -> &'static str {
        match self {
            Cpuset::Cpus => "cpus",
            Cpuset::Mems => "mems",
        }
    }

    fn unavailable(self) -> &'static str {
        match self {
            Cpuset::Cpus => "Requested CPUs are not available",
            Cpuset::Mems => "Requested memory nodes are not available",
        }
    }

    /// What containers may use, as dockerd reads it: the root cpuset
    /// cgroup (v1, then v2), else what the kernel has online.
    fn available(self) -> Option<String> {
        let (file, online) = match self {
            Cpuset::Cpus => ("cpus", "/sys/devices/system/cpu/online"),
            Cpuset::Mems => ("mems", "/sys/devices/system/node/online"),
        };
        [format!("/sys/fs/cgroup/cpuset/cpuset.{file}"), format!("/sys/fs/cgroup/cpuset.{file}.effective"), online.to_string()]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|text| text.trim().to_string())
            .find(|text| !text.is_empty())
    }
}

/// dockerd refuses a cpuset list it cannot read, and CPUs or memory nodes
/// the host does not have.
pub(super) fn check_cpuset(kind: Cpuset, value: &str) -> Result<(), ServiceError> {
    let wanted = parse_cpu_list(value, Some(MAX_CPU))
        .map_err(|e| ServiceError::InvalidParameter(format!("Invalid value {value} for cpuset {}: {e}", kind.noun())))?;
    let Some(available) = kind.available() else { return Ok(()) };
    match parse_cpu_list(&available, None) {
        Ok(ranges) if !wanted.iter().all(|&r| covered(r, &ranges)) => Err(ServiceError::InvalidParameter(format!(
            "{} - requested {value}, available: {available}",
            kind.unavailable()
        ))),
        _ => Ok(()),
    }
}

/// moby's maxCPUs: the highest number a list may name.
const MAX_CPU: i64 = 8192;

/// `0-2,5` → [(0, 2), (5, 5)], inclusive ranges as written, by moby's
/// rules (parseUintList: each number as Go's `strconv.Atoi` reads it, no
/// empty parts) and in its words. Kept as ranges: expanded,
/// `--cpuset-cpus 0-4294967295` asked for 16 GiB of CPU numbers.
fn parse_cpu_list(text: &str, maximum: Option<i64>) -> Result<Vec<(i64, i64)>, String> {
    let invalid = || format!("invalid format: {text}");
    let out_of_range = |n: i64| match maximum {
        Some(max) if n > max => Err(format!("value of out range, maximum is {max}")),
        _ => Ok(()),
    };
    let mut out = Vec::new();
    for part in text.split(',').filter(|_| !text.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (i64, i64) = (a.parse().map_err(|_| invalid())?, b.parse().map_err(|_| invalid())?);
        if b < a {
            return Err(invalid());
        }
        out_of_range(b)?;
        out.push((a, b));
    }
    Ok(out)
}

/// Whether every number of `(from, to)` is in one of `available`'s ranges:
/// one step per available range, whatever the width.
fn covered((mut from, to): (i64, i64), available: &[(i64, i64)]) -> bool {
    while let Some(&(_, end)) = available.iter().find(|&&(a, b)| a <= from && from <= b) {
        if end >= to {
            return true;
        }
        from = end + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let max = Some(MAX_CPU);
        assert_eq!(parse_cpu_list("0-2,5", max), Ok(vec![(0, 2), (5, 5)]));
        // strconv.Atoi takes a sign.
        assert_eq!(parse_cpu_list("+1", max), Ok(vec![(1, 1)]));
        for bad in ["x", "3-1", "0,,1", "0,", " 1", "1-", "0-1-2", "1--2", "99999999999999999999"] {
            assert_eq!(parse_cpu_list(bad, max), Err(format!("invalid format: {bad}")), "{bad}");
        }
        // Found by reading: the range was expanded whatever its size.
        for big in ["0-4294967295", "8193", "4294967296"] {
            assert_eq!(parse_cpu_list(big, max), Err("value of out range, maximum is 8192".into()), "{big}");
        }
        assert_eq!(parse_cpu_list("0-8192", max), Ok(vec![(0, 8192)]));
        assert_eq!(parse_cpu_list("0-99999", None), Ok(vec![(0, 99999)]));
        let online = parse_cpu_list("0-3,8-9", None).unwrap();
        assert!(covered((1, 3), &online) && covered((8, 9), &online) && covered((2, 2), &online));
        assert!(!covered((3, 8), &online) && !covered((10, 10), &online));
        assert!(covered((0, 3), &parse_cpu_list("0-1,2-3", None).unwrap()));
    }

    #[test]
    fn joined_paths_replace_new_namespaces_and_shm() {
        let mut spec = json!({
            "linux": {"namespaces": [{"type": "mount"}, {"type": "ipc"}, {"type": "pid"}]},
            "mounts": [{"destination": "/dev/shm", "type": "tmpfs"}],
        });
        let joined = JoinedNamespaces {
            ipc: Some("/proc/9/ns/ipc".into()),
            shm: Some("/proc/9/root/dev/shm".into()),
            pid: None,
        };
        apply_joined(&mut spec, &joined);
        assert_eq!(spec["linux"]["namespaces"][1]["path"], "/proc/9/ns/ipc");
        assert!(spec["linux"]["namespaces"][2].get("path").is_none());
        assert_eq!(spec["mounts"][0]["source"], "/proc/9/root/dev/shm");
    }
}
