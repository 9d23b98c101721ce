//! Docker container config → OCI runtime spec, matching what dockerd gives
//! a container. Pure: the inputs are resolved by the container service.

pub mod binds;
pub mod defaults;
pub mod devices;
pub mod host_extras;
pub mod namespaces;
pub mod seccomp;
pub mod tmpfs;

use std::path::PathBuf;

use serde_json::{json, Value};

use api_types::container::{ContainerConfig, HostConfig};

pub use binds::{parse_bind, Bind, BindError, PROPAGATIONS};
use defaults::*;
pub use devices::ResolvedDevice;
pub use host_extras::HostExtras;
pub use namespaces::JoinedNamespaces;

use crate::config::container_defaults::ContainerDefaults;

/// Where the init binary appears inside a container, as with dockerd.
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

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
    /// The host's network (berthd's own), joined by the path it is pinned
    /// at: berthd may run in another network namespace than containerd.
    HostAt(PathBuf),
}

impl NetworkNamespace {
    /// The host's network: no sysctls of its own for the container.
    pub fn is_host(&self) -> bool {
        matches!(self, NetworkNamespace::Host | NetworkNamespace::HostAt(_))
    }
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
    /// The daemon's defaults (ulimits, init, IPC and cgroupns modes, shm).
    pub defaults: &'a ContainerDefaults,
    /// `--device` nodes (all host devices when privileged), looked up.
    pub devices: &'a [ResolvedDevice],
    /// Other containers' namespaces this one joins.
    pub joined: JoinedNamespaces,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("invalid capability: {0}")]
    UnknownCapability(String),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Seccomp(String),
    #[error("{0}")]
    Device(String),
}

pub fn generate(input: &SpecInput<'_>) -> Result<Value, SpecError> {
    let hc = input.host_config;
    let extras = HostExtras::of(hc);
    let caps = capabilities(hc)?;
    let mut mounts = default_mounts(hc);
    if let Some(shm) = namespaces::shm_mount(&extras, &input.joined, shm_size(&extras, input.defaults)) {
        mounts.push(shm);
    }
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
    let mut args = input.args.clone();
    if let Some(init) = init_binary(hc, input.defaults) {
        mounts.push(json!({
            "destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": init,
            "options": ["bind", "ro"],
        }));
        args.splice(0..0, [INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()]);
    }
    // Parents before children, as dockerd sorts: a volume at /etc must not
    // hide the /etc/hosts mounted into it.
    mounts[defaults..].sort_by_key(|m| mount_depth(m["destination"].as_str().unwrap_or_default()));
    let cgroupns = match extras.cgroupns_mode() {
        "" => input.defaults.cgroupns_mode.as_str(),
        mode => mode,
    };
    let namespaces = namespaces::list(&extras, &input.network, &input.joined, cgroupns == "private");
    let cwd = if input.config.working_dir.is_empty() { "/".to_string() } else { input.config.working_dir.clone() };
    let mut process = json!({
        "terminal": input.config.tty,
        "user": {
            "uid": input.user.uid,
            "gid": input.user.gid,
            "additionalGids": input.user.additional_gids,
        },
        "args": args,
        "env": input.env,
        "cwd": cwd,
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "noNewPrivileges": no_new_privileges(hc),
        "oomScoreAdj": extras.oom_score_adj.unwrap_or(0),
    });
    let rlimits = rlimits(&extras, input.defaults);
    if !rlimits.is_empty() {
        process["rlimits"] = Value::Array(rlimits);
    }
    if let Some([h, w]) = hc.console_size.filter(|s| s[0] > 0 && s[1] > 0) {
        process["consoleSize"] = json!({"height": h, "width": w});
    }
    let seccomp = seccomp::for_container(hc, &caps).map_err(SpecError::Seccomp)?;
    let mut resources = linux_resources(hc);
    if let Some(rules) = resources["devices"].as_array_mut() {
        rules.extend(input.devices.iter().map(|d| d.rule.clone()));
        for rule in extras.device_cgroup_rules.iter().flatten() {
            rules.push(devices::parse_cgroup_rule(rule).map_err(SpecError::Device)?);
        }
    }
    let mut linux = json!({
        "resources": resources,
        "cgroupsPath": input.cgroups_path,
        "namespaces": namespaces,
        "maskedPaths": if hc.privileged { vec![] } else { MASKED_PATHS.to_vec() },
        "readonlyPaths": if hc.privileged { vec![] } else { READONLY_PATHS.to_vec() },
    });
    if !input.devices.is_empty() {
        linux["devices"] = input.devices.iter().map(|d| d.node.clone()).collect();
    }
    let sysctls = sysctls(&extras, input);
    if !sysctls.is_empty() {
        linux["sysctl"] = json!(sysctls);
    }
    if let Some(profile) = seccomp {
        linux["seccomp"] = profile;
    }
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": { "path": "rootfs", "readonly": hc.readonly_rootfs },
        "mounts": mounts,
        "linux": linux,
    });
    // A hostname needs a UTS namespace of the container's own.
    if extras.uts_mode() != "host" {
        spec["hostname"] = json!(input.hostname);
    }
    Ok(spec)
}

/// The container's sysctls plus dockerd's own: the domain name, and off the
/// host's network, unprivileged low ports and ping.
fn sysctls(extras: &HostExtras, input: &SpecInput<'_>) -> std::collections::BTreeMap<String, String> {
    let mut out = extras.sysctls.clone().unwrap_or_default();
    let mut default = |key: &str, value: &str| {
        out.entry(key.to_string()).or_insert_with(|| value.to_string());
    };
    if !input.config.domainname.is_empty() && extras.uts_mode() != "host" {
        default("kernel.domainname", &input.config.domainname);
    }
    // runc refuses `net.*` sysctls in its own namespace: a daemon on the
    // host's network could not start a host-mode container.
    if !input.network.is_host() {
        default("net.ipv4.ip_unprivileged_port_start", "0");
        default("net.ipv4.ping_group_range", "0 2147483647");
    }
    out
}

pub fn shm_size(extras: &HostExtras, defaults: &ContainerDefaults) -> i64 {
    [extras.shm_size.unwrap_or(0), defaults.shm_size].into_iter().find(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE)
}

/// The host's init binary when the container (or the daemon) wants one.
fn init_binary(hc: &HostConfig, defaults: &ContainerDefaults) -> Option<PathBuf> {
    if !hc.init.unwrap_or(defaults.init) {
        return None;
    }
    defaults.init_path.clone().or_else(crate::config::container_defaults::find_init)
}

/// The daemon's default ulimits, with the container's replacing them by name.
fn rlimits(extras: &HostExtras, defaults: &ContainerDefaults) -> Vec<Value> {
    let mut by_name = defaults.ulimits.clone();
    for u in extras.ulimits.iter().flatten() {
        by_name.insert(u.name.clone(), u.clone());
    }
    by_name.values().map(|u| json!({"type": u.rlimit_type(), "hard": u.hard, "soft": u.soft})).collect()
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
    security_opts(hc.security_opt.as_deref().unwrap_or_default()).map(|o| o.no_new_privileges).unwrap_or(false)
}

/// What `--security-opt` entries set (seccomp is read by `seccomp.rs`).
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
}

/// dockerd's `parseSecurityOpt`: `no-new-privileges`, `disable`, and
/// `key=value` (or the deprecated `key:value`) for label, apparmor, seccomp
/// and no-new-privileges (a Go bool); anything else is refused with
/// dockerd's words.
pub fn security_opts(opts: &[String]) -> Result<SecurityOpts, String> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue;
        }
        let split = if opt.contains('=') { opt.split_once('=') } else { opt.split_once(':') };
        let Some((key, value)) = split else { return Err(format!("invalid --security-opt 1: {opt:?}")) };
        match key {
            "label" | "apparmor" | "seccomp" => {}
            "no-new-privileges" => {
                out.no_new_privileges = match value {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
                }
            }
            _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
        }
    }
    Ok(out)
}

fn default_mounts(hc: &HostConfig) -> Vec<Value> {
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
    if hc.other.get("OomKillDisable").and_then(Value::as_bool) == Some(true) {
        resources["memory"]["disableOOMKiller"] = json!(true);
    }
    if let Some(reservation) = other("MemoryReservation") {
        resources["memory"]["reservation"] = json!(reservation);
    }
    let text = |key: &str| hc.other.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(cpus) = text("CpusetCpus") {
        cpu["cpus"] = json!(cpus);
    }
    if let Some(mems) = text("CpusetMems") {
        cpu["mems"] = json!(mems);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        resources["cpu"] = cpu;
    }
    if let Some(weight) = other("BlkioWeight") {
        resources["blockIO"] = json!({"weight": weight});
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
            defaults: &NO_DEFAULTS,
            devices: &[],
            joined: JoinedNamespaces::default(),
        }
    }

    static NO_DEFAULTS: std::sync::LazyLock<ContainerDefaults> = std::sync::LazyLock::new(ContainerDefaults::default);

    #[test]
    fn ulimits_merge_with_defaults_by_name() {
        use crate::config::container_defaults::Ulimit;
        let mut defaults = ContainerDefaults::default();
        for (name, n) in [("nofile", 100), ("nproc", 50)] {
            defaults.ulimits.insert(name.into(), Ulimit { name: name.into(), soft: n, hard: n });
        }
        let config = ContainerConfig::default();
        let mut hc = HostConfig::default();
        hc.other.insert("Ulimits".into(), json!([{"Name": "nofile", "Soft": 10, "Hard": 20}]));
        hc.other.insert("Sysctls".into(), json!({"net.ipv4.ip_forward": "1"}));
        hc.other.insert("OomScoreAdj".into(), json!(200));
        let mut i = input(&config, &hc);
        i.defaults = &defaults;
        let spec = generate(&i).unwrap();
        assert_eq!(
            spec["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 20, "soft": 10}, {"type": "RLIMIT_NPROC", "hard": 50, "soft": 50}])
        );
        assert_eq!(spec["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(spec["process"]["oomScoreAdj"], 200);
    }

    #[test]
    fn init_wraps_the_command_and_uts_host_drops_the_hostname() {
        let defaults = ContainerDefaults { init_path: Some("/usr/bin/tini".into()), ..Default::default() };
        let config = ContainerConfig { domainname: "example.com".into(), ..Default::default() };
        let mut hc = HostConfig { init: Some(true), ..Default::default() };
        let mut i = input(&config, &hc);
        i.defaults = &defaults;
        let spec = generate(&i).unwrap();
        assert_eq!(spec["process"]["args"], json!(["/sbin/docker-init", "--", "sh"]));
        assert!(spec["mounts"].as_array().unwrap().iter().any(|m| m["source"] == "/usr/bin/tini"));
        assert_eq!(spec["linux"]["sysctl"]["kernel.domainname"], "example.com");
        assert_eq!(spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
        hc.init = None;
        hc.other.insert("UTSMode".into(), json!("host"));
        let mut i = input(&config, &hc);
        i.defaults = &defaults;
        let spec = generate(&i).unwrap();
        assert_eq!(spec["process"]["args"], json!(["sh"]));
        assert!(spec.get("hostname").is_none());
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

    #[test]
    fn security_opts_as_dockerd_parses_them() {
        let parse = |opts: &[&str]| security_opts(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(parse(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(parse(&["no-new-privileges=1"]).unwrap().no_new_privileges);
        assert!(!parse(&["no-new-privileges", "no-new-privileges:false"]).unwrap().no_new_privileges);
        assert!(parse(&["seccomp=unconfined", "label=disable", "apparmor=x", "disable"]).is_ok());
        assert_eq!(parse(&["bogus"]).unwrap_err(), r#"invalid --security-opt 1: "bogus""#);
        assert_eq!(parse(&["bogus=1"]).unwrap_err(), r#"invalid --security-opt 2: "bogus=1""#);
        assert_eq!(parse(&["no-new-privileges=maybe"]).unwrap_err(), r#"invalid --security-opt 2: "no-new-privileges=maybe""#);
    }
}
