//! dockerd's defaults for every container: capabilities, masked and
//! read-only paths, mounts, namespaces and device rules.

/// Docker's default capability set (exactly these 14).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows, for `--privileged` and `--cap-add ALL`.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities `--privileged` and `--cap-add ALL` grant: every one
/// the kernel knows that berthd's own bounding set holds (a berthd inside a
/// restricted container cannot hand out more than it has).
pub fn grantable_capabilities() -> impl Iterator<Item = &'static str> {
    static BOUNDING: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let bounding = *BOUNDING.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(u64::MAX)
    });
    // ALL_CAPABILITIES is in the kernel's numbering order.
    ALL_CAPABILITIES.iter().enumerate().filter(move |(bit, _)| bounding & (1 << bit) != 0).map(|(_, c)| *c)
}

pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Character devices every container may use: (major, minor), `None` = any.
pub const ALLOWED_CHAR_DEVICES: &[(Option<i64>, Option<i64>, &str)] = &[
    (None, None, "m"),
    (Some(1), Some(3), "rwm"),   // null
    (Some(1), Some(8), "rwm"),   // random
    (Some(1), Some(7), "rwm"),   // full
    (Some(5), Some(0), "rwm"),   // tty
    (Some(1), Some(5), "rwm"),   // zero
    (Some(1), Some(9), "rwm"),   // urandom
    (Some(136), None, "rwm"),    // pts
    (Some(5), Some(2), "rwm"),   // ptmx
    (Some(10), Some(200), "rwm"), // tun
];

/// Default `/dev/shm` size: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;
