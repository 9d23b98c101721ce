//! A task's resource counters, read from its cgroup (v1 or v2) and its
//! network namespace, the way containerd's cgroups library reads them.
//! (containerd-client lacks the cgroup metric protos that `Tasks.Metrics`
//! answers in, and the files are the same source.) Blocking reads: call
//! from `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use api_types::stats::{BlkioStatEntry, BlkioStats, NetworkStats};

const ROOT: &str = "/sys/fs/cgroup";
/// `sysconf(_SC_CLK_TCK)`, constant on Linux (as dockerd assumes).
const CLOCK_TICKS: u64 = 100;

/// Counters of one cgroup. Block I/O lists a cgroup version lacks stay
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMetrics {
    pub cpu_total_ns: u64,
    pub cpu_percpu_ns: Vec<u64>,
    pub cpu_kernel_ns: u64,
    pub cpu_user_ns: u64,
    pub throttled_periods: u64,
    pub periods: u64,
    pub throttled_ns: u64,
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    /// `u64::MAX`-like when unlimited; callers cap it at the host's memory.
    pub memory_limit: u64,
    pub memory_failcnt: u64,
    pub memory_stats: BTreeMap<String, u64>,
    pub pids_current: u64,
    /// 0 when unlimited.
    pub pids_limit: u64,
    pub blkio: BlkioStats,
}

/// The keys dockerd reports from a v1 `memory.stat` (missing ones are 0).
const V1_MEMORY_KEYS: &[&str] = &[
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault",
    "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge",
    "total_mapped_file", "total_dirty", "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault",
    "total_pgmajfault", "total_inactive_anon", "total_active_anon", "total_inactive_file",
    "total_active_file", "total_unevictable",
];

/// The keys dockerd reports from a v2 `memory.stat`.
const V2_MEMORY_KEYS: &[&str] = &[
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
    "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
];

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> u64 {
    read(path).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// The cgroup counters of the process `pid` (the task's init), or `None`
/// when it is gone.
pub fn metrics(pid: u32) -> Option<CgroupMetrics> {
    let membership = read(Path::new(&format!("/proc/{pid}/cgroup")))?;
    if Path::new(ROOT).join("cgroup.controllers").exists() {
        let rel = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(v2(&Path::new(ROOT).join(rel.trim_start_matches('/'))))
    } else {
        Some(v1(&V1Paths::parse(&membership)))
    }
}

/// Where each v1 controller keeps this cgroup.
struct V1Paths {
    /// controller name → path under its mount, from `/proc/<pid>/cgroup`.
    by_controller: BTreeMap<String, String>,
}

impl V1Paths {
    fn parse(membership: &str) -> Self {
        let mut by_controller = BTreeMap::new();
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            for c in controllers.split(',').filter(|c| !c.is_empty()) {
                by_controller.insert(c.to_string(), path.to_string());
            }
        }
        Self { by_controller }
    }

    /// `/sys/fs/cgroup/<mount>/<path>` for `controller`; the mount may be
    /// shared (`cpu,cpuacct`).
    fn dir(&self, controller: &str) -> Option<PathBuf> {
        let rel = self.by_controller.get(controller)?.trim_start_matches('/');
        let direct = Path::new(ROOT).join(controller);
        let mount = if direct.exists() {
            direct
        } else {
            std::fs::read_dir(ROOT)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.split(',').any(|c| c == controller)))?
        };
        Some(mount.join(rel))
    }
}

fn v1(paths: &V1Paths) -> CgroupMetrics {
    let mut m = CgroupMetrics::default();
    if let Some(dir) = paths.dir("cpuacct") {
        m.cpu_total_ns = read_u64(&dir.join("cpuacct.usage"));
        m.cpu_percpu_ns = read(&dir.join("cpuacct.usage_percpu"))
            .map(|s| s.split_whitespace().filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        let stat = key_values(&read(&dir.join("cpuacct.stat")).unwrap_or_default());
        let ns = |ticks: u64| ticks * 1_000_000_000 / CLOCK_TICKS;
        m.cpu_user_ns = ns(stat.get("user").copied().unwrap_or(0));
        m.cpu_kernel_ns = ns(stat.get("system").copied().unwrap_or(0));
    }
    if let Some(dir) = paths.dir("cpu") {
        let stat = key_values(&read(&dir.join("cpu.stat")).unwrap_or_default());
        m.periods = stat.get("nr_periods").copied().unwrap_or(0);
        m.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        m.throttled_ns = stat.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = paths.dir("memory") {
        m.memory_usage = read_u64(&dir.join("memory.usage_in_bytes"));
        m.memory_max_usage = read_u64(&dir.join("memory.max_usage_in_bytes"));
        m.memory_limit = read_u64(&dir.join("memory.limit_in_bytes"));
        m.memory_failcnt = read_u64(&dir.join("memory.failcnt"));
        let stat = key_values(&read(&dir.join("memory.stat")).unwrap_or_default());
        m.memory_stats = V1_MEMORY_KEYS.iter().map(|k| (k.to_string(), stat.get(*k).copied().unwrap_or(0))).collect();
    }
    if let Some(dir) = paths.dir("pids") {
        read_pids(&dir, &mut m);
    }
    if let Some(dir) = paths.dir("blkio") {
        let entries = |name: &str| Some(read(&dir.join(format!("blkio.{name}"))).map(|t| blkio_entries(&t)).unwrap_or_default());
        if dir.join("blkio.io_serviced_recursive").exists() {
            // CFQ's recursive counters, where the kernel has them.
            m.blkio.sectors_recursive = entries("sectors_recursive");
            m.blkio.io_service_bytes_recursive = entries("io_service_bytes_recursive");
            m.blkio.io_serviced_recursive = entries("io_serviced_recursive");
            m.blkio.io_queue_recursive = entries("io_queued_recursive");
            m.blkio.io_service_time_recursive = entries("io_service_time_recursive");
            m.blkio.io_wait_time_recursive = entries("io_wait_time_recursive");
            m.blkio.io_merged_recursive = entries("io_merged_recursive");
            m.blkio.io_time_recursive = entries("time_recursive");
        } else {
            m.blkio.io_service_bytes_recursive = entries("throttle.io_service_bytes_recursive")
                .filter(|e| !e.is_empty())
                .or_else(|| entries("throttle.io_service_bytes"));
            m.blkio.io_serviced_recursive = entries("throttle.io_serviced_recursive")
                .filter(|e| !e.is_empty())
                .or_else(|| entries("throttle.io_serviced"));
            // dockerd sends every v1 list, empty ones as `[]`.
            let b = &mut m.blkio;
            for list in [
                &mut b.sectors_recursive,
                &mut b.io_queue_recursive,
                &mut b.io_service_time_recursive,
                &mut b.io_wait_time_recursive,
                &mut b.io_merged_recursive,
                &mut b.io_time_recursive,
            ] {
                *list = Some(Vec::new());
            }
        }
    }
    m
}

fn read_pids(dir: &Path, m: &mut CgroupMetrics) {
    m.pids_current = read_u64(&dir.join("pids.current"));
    // "max" (unlimited) parses as nothing: 0, as dockerd reports it.
    m.pids_limit = read_u64(&dir.join("pids.max"));
}

/// `MAJ:MIN Op Value` lines; the `Total` line is skipped.
fn blkio_entries(text: &str) -> Vec<BlkioStatEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 3 {
                return None;
            }
            let (major, minor) = f[0].split_once(':')?;
            Some(BlkioStatEntry { major: major.parse().ok()?, minor: minor.parse().ok()?, op: f[1].to_string(), value: f[2].parse().ok()? })
        })
        .collect()
}

fn v2(dir: &Path) -> CgroupMetrics {
    let mut m = CgroupMetrics::default();
    let cpu = key_values(&read(&dir.join("cpu.stat")).unwrap_or_default());
    let get = |map: &BTreeMap<String, u64>, k: &str| map.get(k).copied().unwrap_or(0);
    m.cpu_total_ns = get(&cpu, "usage_usec") * 1000;
    m.cpu_user_ns = get(&cpu, "user_usec") * 1000;
    m.cpu_kernel_ns = get(&cpu, "system_usec") * 1000;
    m.periods = get(&cpu, "nr_periods");
    m.throttled_periods = get(&cpu, "nr_throttled");
    m.throttled_ns = get(&cpu, "throttled_usec") * 1000;
    m.memory_usage = read_u64(&dir.join("memory.current"));
    m.memory_limit = match read(&dir.join("memory.max")) {
        Some(s) if s.trim() != "max" => s.trim().parse().unwrap_or(u64::MAX),
        _ => u64::MAX,
    };
    let events = key_values(&read(&dir.join("memory.events")).unwrap_or_default());
    m.memory_failcnt = get(&events, "oom");
    let stat = key_values(&read(&dir.join("memory.stat")).unwrap_or_default());
    m.memory_stats = V2_MEMORY_KEYS.iter().map(|k| (k.to_string(), get(&stat, k))).collect();
    read_pids(dir, &mut m);
    let mut bytes = Vec::new();
    for line in read(&dir.join("io.stat")).unwrap_or_default().lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else { continue };
        let kv: BTreeMap<&str, u64> =
            fields.filter_map(|f| f.split_once('=')).filter_map(|(k, v)| Some((k, v.parse().ok()?))).collect();
        for (op, key) in [("read", "rbytes"), ("write", "wbytes")] {
            bytes.push(BlkioStatEntry { major, minor, op: op.into(), value: kv.get(key).copied().unwrap_or(0) });
        }
    }
    m.blkio.io_service_bytes_recursive = (!bytes.is_empty()).then_some(bytes);
    m
}

/// The host's CPU time in nanoseconds (all CPUs, from `/proc/stat`'s
/// first seven fields) and its number of CPUs, as dockerd computes them.
pub fn system_cpu() -> Option<(u64, u64)> {
    parse_proc_stat(&read(Path::new("/proc/stat"))?)
}

fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let mut usage = None;
    let mut cpus = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else { break };
        if rest.starts_with(' ') {
            let ticks: u64 = rest.split_whitespace().take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
            usage = Some(ticks * 1_000_000_000 / CLOCK_TICKS);
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus += 1;
        }
    }
    Some((usage?, cpus))
}

/// Interface counters in the network namespace of `pid`, loopback left out
/// (dockerd reports the sandbox's interfaces only).
pub fn interfaces(pid: u32) -> Option<BTreeMap<String, NetworkStats>> {
    Some(parse_net_dev(&read(Path::new(&format!("/proc/{pid}/net/dev")))?))
}

fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let v: Vec<u64> = counters.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            if v.len() < 12 {
                return None;
            }
            Some((
                name.to_string(),
                NetworkStats {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_total_and_cpus() {
        let text = "cpu  100 2 30 400 5 6 7 8 0 0\ncpu0 50 1 15 200 2 3 3 4 0 0\ncpu1 50 1 15 200 3 3 4 4 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(text), Some((550 * 10_000_000, 2)));
    }

    #[test]
    fn net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
                    face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
                    eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        let map = parse_net_dev(text);
        assert_eq!(map.len(), 1);
        let eth0 = &map["eth0"];
        assert_eq!((eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped), (2000, 20, 1, 2));
        assert_eq!((eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped), (3000, 30, 3, 4));
    }

    #[test]
    fn blkio_lines_skip_total() {
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0], BlkioStatEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 });
    }

    /// The host here has cgroup v1 only: v2 decoding is checked on a
    /// directory shaped like a v2 cgroup (file formats from the kernel's
    /// cgroup-v2 documentation).
    #[test]
    fn v2_counters_from_a_unified_cgroup_dir() {
        let dir = tempfile::tempdir().unwrap();
        let put = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        put("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n");
        put("memory.current", "8388608\n");
        put("memory.max", "max\n");
        put("memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n");
        put("memory.stat", "anon 4096\nfile 8192\ninactive_file 1024\npgfault 7\n");
        put("pids.current", "3\n");
        put("pids.max", "max\n");
        put("io.stat", "8:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n");
        let m = v2(dir.path());
        assert_eq!((m.cpu_total_ns, m.cpu_user_ns, m.cpu_kernel_ns), (1_500_000, 1_000_000, 500_000));
        assert_eq!((m.periods, m.throttled_periods, m.throttled_ns), (4, 1, 20_000));
        assert_eq!((m.memory_usage, m.memory_limit, m.memory_failcnt), (8_388_608, u64::MAX, 2));
        assert_eq!((m.memory_stats["anon"], m.memory_stats["inactive_file"], m.memory_stats["slab"]), (4096, 1024, 0));
        assert_eq!(m.memory_stats.len(), V2_MEMORY_KEYS.len());
        assert_eq!((m.pids_current, m.pids_limit), (3, 0));
        let io = m.blkio.io_service_bytes_recursive.unwrap();
        assert_eq!(io[0], BlkioStatEntry { major: 8, minor: 0, op: "read".into(), value: 4096 });
        assert_eq!(io[1], BlkioStatEntry { major: 8, minor: 0, op: "write".into(), value: 512 });
        put("memory.max", "1048576\n");
        assert_eq!(v2(dir.path()).memory_limit, 1_048_576);
    }

    #[test]
    fn v1_membership_with_shared_mounts() {
        let paths = V1Paths::parse("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n");
        assert_eq!(paths.by_controller["cpuacct"], "/docker/abc");
        assert_eq!(paths.by_controller["memory"], "/docker/abc");
    }
}
