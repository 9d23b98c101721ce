//! Docker container config → OCI runtime spec, matching what dockerd gives
//! a container. Pure: the inputs are resolved by the container service.

mod binds;
pub mod defaults;
pub mod seccomp;
mod tmpfs;

use std::path::PathBuf;

use serde_json::{json, Value};

use api_types::container::{ContainerConfig, HostConfig};

pub use binds::{parse_bind, Bind, BindError, PROPAGATIONS};
use defaults::*;

/// The process user, already resolved against the container's passwd/group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// The network namespace a container joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A new, empty namespace (loopback only until networking configures it).
    New,
    /// The host's namespace.
    Host,
    /// An existing namespace at this path.
    Path(PathBuf),
}

/// Per-container files bind-mounted over the image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Everything the spec is made from.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// The create config merged with the image's defaults.
    pub config: &'a ContainerConfig,
    pub host_config: &'a HostConfig,
    /// Entrypoint + Cmd, resolved.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: ProcessUser,
    pub hostname: String,
    pub etc_files: Option<EtcFiles>,
    pub network: NetworkNamespace,
    pub cgroups_path: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("invalid capability: {0}")]
    UnknownCapability(String),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Seccomp(String),
}

pub fn generate(input: &SpecInput<'_>) -> Result<Value, SpecError> {
    let hc = input.host_config;
    let caps = capabilities(hc)?;
    let mut mounts = default_mounts(hc);
    let defaults = mounts.len();
    if let Some(files) = &input.etc_files {
        for (dest, src) in [
            ("/etc/resolv.conf", &files.resolv_conf),
            ("/etc/hostname", &files.hostname),
            ("/etc/hosts", &files.hosts),
        ] {
            mounts.push(json!({
                "destination": dest, "type": "bind", "source": src,
                "options": ["rbind", "rprivate"],
            }));
        }
    }
    for bind in hc.binds.iter().flatten() {
        mounts.push(parse_bind(bind)?.to_oci_mount());
    }
    for m in hc.mounts.iter().flatten() {
        // Volume mounts arrive as binds of their directories.
        match m.kind.as_str() {
            "bind" => mounts.push(Bind::from_mount(m).to_oci_mount()),
            "tmpfs" => mounts.push(tmpfs::from_mount(m)),
            _ => {}
        }
    }
    for (destination, options) in hc.tmpfs.iter().flatten() {
        mounts.push(tmpfs::from_tmpfs_entry(destination, options));
    }
    // Parents before children, as dockerd sorts: a volume at /etc must not
    // hide the /etc/hosts mounted into it.
    mounts[defaults..].sort_by_key(|m| mount_depth(m["destination"].as_str().unwrap_or_default()));
    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "uts"}), json!({"type": "pid"}), json!({"type": "ipc"})];
    match &input.network {
        NetworkNamespace::New => namespaces.push(json!({"type": "network"})),
        NetworkNamespace::Host => {}
        NetworkNamespace::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let cwd = if input.config.working_dir.is_empty() { "/".to_string() } else { input.config.working_dir.clone() };
    let mut process = json!({
        "terminal": input.config.tty,
        "user": {
            "uid": input.user.uid,
            "gid": input.user.gid,
            "additionalGids": input.user.additional_gids,
        },
        "args": input.args,
        "env": input.env,
        "cwd": cwd,
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "noNewPrivileges": no_new_privileges(hc),
    });
    if let Some([h, w]) = hc.console_size.filter(|s| s[0] > 0 && s[1] > 0) {
        process["consoleSize"] = json!({"height": h, "width": w});
    }
    let seccomp = seccomp::for_container(hc, &caps).map_err(SpecError::Seccomp)?;
    let mut linux = json!({
        "resources": linux_resources(hc),
        "cgroupsPath": input.cgroups_path,
        "namespaces": namespaces,
        "maskedPaths": if hc.privileged { vec![] } else { MASKED_PATHS.to_vec() },
        "readonlyPaths": if hc.privileged { vec![] } else { READONLY_PATHS.to_vec() },
    });
    if let Some(profile) = seccomp {
        linux["seccomp"] = profile;
    }
    Ok(json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": { "path": "rootfs", "readonly": hc.readonly_rootfs },
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

fn mount_depth(destination: &str) -> usize {
    destination.split('/').filter(|c| !c.is_empty() && *c != ".").count()
}

fn capabilities(hc: &HostConfig) -> Result<Vec<String>, SpecError> {
    if hc.privileged {
        return Ok(grantable_capabilities().map(str::to_string).collect());
    }
    let normalize = |c: &str| -> Result<String, SpecError> {
        let upper = c.to_ascii_uppercase();
        let name = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
        if name == "CAP_ALL" || ALL_CAPABILITIES.contains(&name.as_str()) {
            Ok(name)
        } else {
            Err(SpecError::UnknownCapability(c.to_string()))
        }
    };
    let adds = hc.cap_add.iter().flatten().map(|c| normalize(c)).collect::<Result<Vec<_>, _>>()?;
    let drops = hc.cap_drop.iter().flatten().map(|c| normalize(c)).collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "CAP_ALL") {
        vec![]
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).filter(|c| !drops.contains(c)).collect()
    };
    if adds.iter().any(|c| c == "CAP_ALL") {
        caps = grantable_capabilities().map(str::to_string).filter(|c| !drops.contains(c)).collect();
    }
    for cap in adds.into_iter().filter(|c| c != "CAP_ALL") {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    Ok(caps)
}

fn no_new_privileges(hc: &HostConfig) -> bool {
    hc.security_opt
        .iter()
        .flatten()
        .any(|o| matches!(o.as_str(), "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"))
}

fn default_mounts(hc: &HostConfig) -> Vec<Value> {
    let shm_size = hc.other.get("ShmSize").and_then(Value::as_i64).filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE);
    let sys_mode = if hc.privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", sys_mode]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ]
}

/// The OCI `LinuxResources` for a host config: device rules and limits.
pub fn linux_resources(hc: &HostConfig) -> Value {
    let devices: Vec<Value> = if hc.privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        let mut rules = vec![json!({"allow": false, "access": "rwm"})];
        rules.push(json!({"allow": true, "type": "b", "access": "m"}));
        for (major, minor, access) in ALLOWED_CHAR_DEVICES {
            rules.push(json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access}));
        }
        rules
    };
    let mut resources = json!({ "devices": devices });
    if hc.memory > 0 || hc.memory_swap != 0 {
        let mut memory = json!({});
        if hc.memory > 0 {
            memory["limit"] = json!(hc.memory);
            // dockerd: unset swap means swap = 2 × memory.
            memory["swap"] = json!(match hc.memory_swap {
                0 => hc.memory * 2,
                s => s,
            });
        }
        resources["memory"] = memory;
    }
    let mut cpu = json!({});
    if hc.cpu_shares > 0 {
        cpu["shares"] = json!(hc.cpu_shares);
    }
    if hc.nano_cpus > 0 {
        let period: i64 = 100_000;
        cpu["period"] = json!(period);
        cpu["quota"] = json!(hc.nano_cpus * period / 1_000_000_000);
    }
    let other = |key: &str| hc.other.get(key).and_then(Value::as_i64).filter(|v| *v > 0);
    if let Some(period) = other("CpuPeriod") {
        cpu["period"] = json!(period);
    }
    if let Some(quota) = other("CpuQuota") {
        cpu["quota"] = json!(quota);
    }
    if let Some(reservation) = other("MemoryReservation") {
        resources["memory"]["reservation"] = json!(reservation);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        resources["cpu"] = cpu;
    }
    if let Some(limit) = hc.pids_limit.filter(|l| *l != 0) {
        resources["pids"] = json!({"limit": limit});
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(config: &'a ContainerConfig, hc: &'a HostConfig) -> SpecInput<'a> {
        SpecInput {
            id: "abc",
            config,
            host_config: hc,
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            user: ProcessUser::default(),
            hostname: "abc".into(),
            etc_files: None,
            network: NetworkNamespace::New,
            cgroups_path: "/docker/abc".into(),
        }
    }

    fn caps(spec: &Value) -> Vec<String> {
        serde_json::from_value(spec["process"]["capabilities"]["bounding"].clone()).unwrap()
    }

    #[test]
    fn defaults_match_dockerd() {
        let (c, hc) = (ContainerConfig::default(), HostConfig::default());
        let spec = generate(&input(&c, &hc)).unwrap();
        assert_eq!(caps(&spec).len(), 14);
        assert_eq!(spec["process"]["cwd"], "/");
        assert_eq!(spec["linux"]["maskedPaths"].as_array().unwrap().len(), MASKED_PATHS.len());
        assert_eq!(spec["root"]["readonly"], false);
        assert!(spec["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/dev/shm"
            && m["options"].as_array().unwrap().contains(&json!("size=67108864"))));
        assert_eq!(spec["process"]["noNewPrivileges"], false);
    }

    #[test]
    fn cap_add_drop_and_all() {
        let c = ContainerConfig::default();
        let hc = HostConfig {
            cap_add: Some(vec!["net_admin".into()]),
            cap_drop: Some(vec!["CAP_CHOWN".into(), "kill".into()]),
            ..Default::default()
        };
        let got = caps(&generate(&input(&c, &hc)).unwrap());
        assert!(got.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!got.contains(&"CAP_CHOWN".to_string()) && !got.contains(&"CAP_KILL".to_string()));
        assert_eq!(got.len(), 13);
        let hc = HostConfig { cap_drop: Some(vec!["ALL".into()]), cap_add: Some(vec!["CHOWN".into()]), ..Default::default() };
        assert_eq!(caps(&generate(&input(&c, &hc)).unwrap()), ["CAP_CHOWN"]);
        let hc = HostConfig { cap_add: Some(vec!["NOPE".into()]), ..Default::default() };
        assert_eq!(generate(&input(&c, &hc)).unwrap_err(), SpecError::UnknownCapability("NOPE".into()));
    }

    #[test]
    fn privileged_unmasks_and_allows_all_devices() {
        let c = ContainerConfig::default();
        let hc = HostConfig { privileged: true, ..Default::default() };
        let spec = generate(&input(&c, &hc)).unwrap();
        assert_eq!(caps(&spec).len(), grantable_capabilities().count());
        assert!(spec["linux"]["maskedPaths"].as_array().unwrap().is_empty());
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], true);
    }

    #[test]
    fn resources_follow_dockerd_rules() {
        let c = ContainerConfig::default();
        let hc = HostConfig { memory: 64 << 20, nano_cpus: 1_500_000_000, pids_limit: Some(50), ..Default::default() };
        let r = &generate(&input(&c, &hc)).unwrap()["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 128 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["pids"]["limit"], 50);
    }

    #[test]
    fn user_mounts_are_sorted_parents_first() {
        let c = ContainerConfig::default();
        let hc = HostConfig { binds: Some(vec!["/v:/etc".into(), "/w:/a/b/c".into()]), ..Default::default() };
        let mut i = input(&c, &hc);
        i.etc_files = Some(EtcFiles { hostname: "/h".into(), hosts: "/hs".into(), resolv_conf: "/r".into() });
        let spec = generate(&i).unwrap();
        let dests: Vec<&str> = spec["mounts"].as_array().unwrap()[7..].iter().map(|m| m["destination"].as_str().unwrap()).collect();
        assert_eq!(dests, ["/etc", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/a/b/c"]);
    }

    #[test]
    fn readonly_rootfs_tty_and_no_new_privileges() {
        let c = ContainerConfig { tty: true, working_dir: "/srv".into(), ..Default::default() };
        let hc = HostConfig {
            readonly_rootfs: true,
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            ..Default::default()
        };
        let spec = generate(&input(&c, &hc)).unwrap();
        assert_eq!(spec["root"]["readonly"], true);
        assert_eq!(spec["process"]["terminal"], true);
        assert_eq!(spec["process"]["cwd"], "/srv");
        assert_eq!(spec["process"]["noNewPrivileges"], true);
    }
}
