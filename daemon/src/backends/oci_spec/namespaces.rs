//! Which namespaces a container gets, from its `IpcMode`, `PidMode`,
//! `UTSMode`, `CgroupnsMode` and network, and what `/dev/shm` it sees.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::host_extras::HostExtras;
use super::NetworkNamespace;

/// Namespaces of other containers this one joins, resolved at start
/// (`container:<id>` modes need the other container's running PID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinedNamespaces {
    /// `/proc/<pid>/ns/ipc` of the donor.
    pub ipc: Option<PathBuf>,
    /// The host directory holding a shared `/dev/shm` tmpfs: this
    /// container's own when it is `shareable`, else its IPC donor's.
    pub shm: Option<PathBuf>,
    /// `/proc/<pid>/ns/pid` of the donor.
    pub pid: Option<PathBuf>,
}

/// dockerd's checks on the mode strings, at create.
pub fn check_modes(x: &HostExtras) -> Result<(), String> {
    match x.ipc_mode() {
        "" | "private" | "shareable" | "host" | "none" => {}
        m if container_of(m).is_some_and(|c| !c.is_empty()) => {}
        m => return Err(format!("Invalid IPC mode: {m}")),
    }
    match x.pid_mode() {
        "" | "host" => {}
        m if container_of(m).is_some_and(|c| !c.is_empty()) => {}
        m => return Err(format!("Invalid PID mode: {m}")),
    }
    match x.uts_mode() {
        "" | "host" => {}
        m => return Err(format!("Invalid UTS mode: {m}")),
    }
    match x.cgroupns_mode() {
        "" | "host" | "private" => {}
        m => return Err(format!("invalid cgroup namespace mode: {m}")),
    }
    Ok(())
}

/// The container a `container:<name>` mode names.
pub fn container_of(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// The spec's `linux.namespaces`.
pub fn list(x: &HostExtras, network: &NetworkNamespace, joined: &JoinedNamespaces, private_cgroupns: bool) -> Vec<Value> {
    let mut out = vec![json!({"type": "mount"})];
    if x.uts_mode() != "host" {
        out.push(json!({"type": "uts"}));
    }
    match (x.pid_mode(), &joined.pid) {
        ("host", _) => {}
        (_, Some(path)) => out.push(json!({"type": "pid", "path": path})),
        _ => out.push(json!({"type": "pid"})),
    }
    match (x.ipc_mode(), &joined.ipc) {
        ("host", _) => {}
        (_, Some(path)) => out.push(json!({"type": "ipc", "path": path})),
        _ => out.push(json!({"type": "ipc"})),
    }
    match network {
        NetworkNamespace::New => out.push(json!({"type": "network"})),
        NetworkNamespace::Host => {}
        NetworkNamespace::Path(p) | NetworkNamespace::HostAt(p) => out.push(json!({"type": "network", "path": p})),
    }
    if private_cgroupns {
        out.push(json!({"type": "cgroup"}));
    }
    out
}

/// `/dev/shm`: a private tmpfs, the host's, the donor's, or none.
pub fn shm_mount(x: &HostExtras, joined: &JoinedNamespaces, size: i64) -> Option<Value> {
    match (x.ipc_mode(), &joined.shm) {
        ("none", _) => None,
        ("host", _) => Some(bind("/dev/shm".into())),
        (_, Some(source)) => Some(bind(source.clone())),
        _ => Some(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                         "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={size}")]})),
    }
}

fn bind(source: PathBuf) -> Value {
    json!({"destination": "/dev/shm", "type": "bind", "source": source, "options": ["rbind", "rprivate"]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extras(ipc: &str, pid: &str, uts: &str) -> HostExtras {
        HostExtras {
            ipc_mode: Some(ipc.into()),
            pid_mode: Some(pid.into()),
            uts_mode: Some(uts.into()),
            ..Default::default()
        }
    }

    fn kinds(v: &[Value]) -> Vec<&str> {
        v.iter().map(|n| n["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn host_modes_drop_namespaces() {
        let x = extras("host", "host", "host");
        let ns = list(&x, &NetworkNamespace::Host, &JoinedNamespaces::default(), false);
        assert_eq!(kinds(&ns), ["mount"]);
        assert_eq!(shm_mount(&x, &JoinedNamespaces::default(), 1).unwrap()["source"], "/dev/shm");
    }

    #[test]
    fn defaults_and_joined() {
        let x = extras("container:a", "container:a", "");
        let joined = JoinedNamespaces {
            ipc: Some("/proc/7/ns/ipc".into()),
            shm: Some("/c/7/mounts/shm".into()),
            pid: Some("/proc/7/ns/pid".into()),
        };
        let ns = list(&x, &NetworkNamespace::New, &joined, true);
        assert_eq!(kinds(&ns), ["mount", "uts", "pid", "ipc", "network", "cgroup"]);
        assert_eq!(ns[2]["path"], "/proc/7/ns/pid");
        assert_eq!(shm_mount(&x, &joined, 1).unwrap()["type"], "bind");
        assert!(shm_mount(&extras("none", "", ""), &joined, 1).is_none());
    }

    #[test]
    fn bad_modes_are_refused() {
        assert_eq!(check_modes(&extras("foo", "", "")).unwrap_err(), "Invalid IPC mode: foo");
        assert_eq!(check_modes(&extras("", "bar", "")).unwrap_err(), "Invalid PID mode: bar");
        assert_eq!(check_modes(&extras("", "", "baz")).unwrap_err(), "Invalid UTS mode: baz");
        assert!(check_modes(&extras("container:", "", "")).is_err());
        assert!(check_modes(&extras("shareable", "container:x", "host")).is_ok());
    }
}
