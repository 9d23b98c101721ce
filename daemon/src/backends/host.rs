//! Facts about the host that `/info` and `/version` report.

use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub hostname: String,
    pub kernel_version: String,
    /// uname's machine, e.g. `x86_64` (what `/info` calls Architecture).
    pub machine: String,
    pub operating_system: String,
    pub os_version: String,
    pub ncpu: u64,
    pub mem_total: u64,
    pub cgroup_version: &'static str,
}

impl HostInfo {
    /// Read once at start; none of this changes while the daemon runs.
    pub fn read() -> Self {
        let uname = uname();
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |key: &str| {
            os_release.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_string())
            })
        };
        Self {
            hostname: uname.nodename,
            kernel_version: uname.release,
            machine: uname.machine,
            operating_system: field("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
            os_version: field("VERSION_ID").unwrap_or_default(),
            ncpu: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
            mem_total: mem_total().unwrap_or(0),
            cgroup_version: cgroup_version(),
        }
    }
}

/// "2" on a unified (v2) cgroup hierarchy, else "1".
pub fn cgroup_version() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// Go's name for the architecture, as `/version` reports it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

struct Uname {
    nodename: String,
    release: String,
    machine: String,
}

fn uname() -> Uname {
    // SAFETY: utsname is plain old data; uname(2) fills it in.
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: buf is a valid, writable utsname.
    if unsafe { libc::uname(&mut buf) } != 0 {
        return Uname { nodename: String::new(), release: String::new(), machine: String::new() };
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Uname { nodename: text(&buf.nodename), release: text(&buf.release), machine: text(&buf.machine) }
}

pub fn mem_total() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// runc's version and commit, from `runc --version` (the runtime binary that
/// containerd's shim runs). Running it costs milliseconds and `GET /version`
/// and `/info` are polled by tools, so the answer is kept for as long as the
/// binary found on PATH is the same file (path, size, mtime).
pub async fn runc_version() -> Option<(String, String)> {
    type Cached = Option<(RuncBinary, Option<(String, String)>)>;
    static CACHE: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    let binary = RuncBinary::find();
    if let (Some(binary), Ok(cache)) = (&binary, CACHE.lock()) {
        if let Some((_, version)) = cache.as_ref().filter(|(b, _)| b == binary) {
            return version.clone();
        }
    }
    let out = tokio::process::Command::new("runc").arg("--version").output().await.ok()?;
    let version = if out.status.success() { parse_runc_version(&String::from_utf8_lossy(&out.stdout)) } else { None };
    if let (Some(binary), Ok(mut cache)) = (binary, CACHE.lock()) {
        *cache = Some((binary, version.clone()));
    }
    version
}

/// Identifies the `runc` on PATH, to notice when it is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RuncBinary {
    path: std::path::PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl RuncBinary {
    fn find() -> Option<RuncBinary> {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths).find_map(|dir| {
            let path = dir.join("runc");
            let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
            Some(RuncBinary { len: meta.len(), modified: meta.modified().ok(), path })
        })
    }
}

fn parse_runc_version(text: &str) -> Option<(String, String)> {
    let version = text.lines().find_map(|l| l.strip_prefix("runc version "))?.trim().to_string();
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    Some((version, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_version_output() {
        let out = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n";
        assert_eq!(
            parse_runc_version(out),
            Some(("1.1.5+ds1".to_string(), "1.1.5+ds1-1+deb12u1".to_string()))
        );
        assert_eq!(parse_runc_version("garbage"), None);
    }

    #[test]
    fn host_facts_are_read() {
        let h = HostInfo::read();
        assert!(h.ncpu >= 1);
        assert!(h.mem_total > 0);
        assert!(!h.kernel_version.is_empty());
    }
}

/// What the cgroup hierarchy lets containers limit (`/info`'s booleans).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupFeatures {
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    pub cpu_shares: bool,
    pub cpu_set: bool,
    pub pids_limit: bool,
    pub oom_kill_disable: bool,
}

impl CgroupFeatures {
    pub fn read(cgroup_version: &str) -> Self {
        let root = Path::new("/sys/fs/cgroup");
        if cgroup_version == "2" {
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            return Self {
                memory_limit: has("memory"),
                swap_limit: has("memory"),
                cpu_cfs_period: has("cpu"),
                cpu_cfs_quota: has("cpu"),
                cpu_shares: has("cpu"),
                cpu_set: has("cpuset"),
                pids_limit: has("pids"),
                oom_kill_disable: false,
            };
        }
        let exists = |p: &str| root.join(p).exists();
        Self {
            memory_limit: exists("memory/memory.limit_in_bytes"),
            swap_limit: exists("memory/memory.memsw.limit_in_bytes"),
            cpu_cfs_period: exists("cpu/cpu.cfs_period_us"),
            cpu_cfs_quota: exists("cpu/cpu.cfs_quota_us"),
            cpu_shares: exists("cpu/cpu.shares"),
            cpu_set: exists("cpuset/cpuset.cpus"),
            pids_limit: exists("pids/pids.max") || exists("pids"),
            oom_kill_disable: exists("memory/memory.oom_control"),
        }
    }
}

/// `net.ipv4.ip_forward` is on.
pub fn ipv4_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1")
}

/// Open file descriptors of this process.
pub fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count() as i64).unwrap_or(0)
}

/// Raise the soft limit on open files to the hard one, as Go's runtime does
/// for dockerd: every client connection and container FIFO is a descriptor,
/// and the common 1024 default runs out long before the host does.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}
