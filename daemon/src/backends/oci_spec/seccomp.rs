//! Seccomp: Docker's default profile (deny by default with EPERM, an
//! allow-list of syscalls, more allowed per capability and architecture),
//! `seccomp=unconfined`, and profiles in Docker's JSON format sent in
//! `SecurityOpt` (the CLI inlines `seccomp=<file>`), turned into the OCI
//! `linux.seccomp` object.

use serde_json::{json, Value};

use api_types::container::HostConfig;

const EPERM: u64 = 1;
const ENOSYS: u64 = 38;
const AF_VSOCK: u64 = 40;
/// CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Allowed for every container on every architecture. (Docker allows the
/// last three only from kernel 4.8 on; berthd needs newer kernels anyway.)
const ALWAYS_ALLOWED: &str = "
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
    dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
    fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl
    fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
    fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv
    futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
    getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
    getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
    getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32
    getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
    io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
    io_submit io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
    listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
    memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
    mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
    munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
    pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
    pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
    pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64
    recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
    set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr
    shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
    socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
    sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
    umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4
    waitid waitpid write writev
    process_vm_readv process_vm_writev ptrace
";

/// Allowed on some architectures only (Docker's architecture names).
const BY_ARCH: &[(&[&str], &str)] = &[
    (&["ppc64le"], "sync_file_range2 swapcontext"),
    (&["arm", "arm64"], "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls"),
    (&["amd64", "x32"], "arch_prctl"),
    (&["amd64", "x32", "x86"], "modify_ldt"),
    (&["s390", "s390x"], "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
    (&["riscv64"], "riscv_flush_icache"),
];

/// Allowed when the container holds the capability.
const BY_CAPABILITY: &[(&str, &str)] = &[
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
         mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname \
         sethostname setns syslog umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    ("CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    ("CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
];

/// `personality` is allowed for these personas only (Linux, 32-bit Linux,
/// with and without UNAME26, and the query value).
const PERSONAS: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// Docker's name for the host architecture, as its profiles use it.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The libseccomp architectures a filter covers on this host: the native
/// one and the ones it can also execute.
fn scmp_arches(arch: &str) -> Vec<&'static str> {
    match arch {
        "amd64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "arm64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "ppc64le" => vec!["SCMP_ARCH_PPC64LE"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        _ => vec![],
    }
}

fn words(list: &str) -> Vec<&str> {
    list.split_whitespace().collect()
}

fn allow(names: Vec<&str>) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ALLOW"})
}

fn arg(index: u32, op: &str, value: u64) -> Value {
    json!({"index": index, "value": value, "valueTwo": 0, "op": op})
}

/// Docker's default profile for a container with these capabilities.
pub fn default_profile(caps: &[String]) -> Value {
    let arch = docker_arch();
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let mut rules = vec![allow(words(ALWAYS_ALLOWED))];
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, "SCMP_CMP_NE", AF_VSOCK)]}));
    for persona in PERSONAS {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, "SCMP_CMP_EQ", *persona)]}));
    }
    for (arches, names) in BY_ARCH {
        if arches.contains(&arch) {
            rules.push(allow(words(names)));
        }
    }
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            rules.push(allow(words(names)));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        // clone without new namespaces; s390 passes the flags second.
        let index = if arch.starts_with("s390") { 1 } else { 0 };
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [arg(index, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS)],
        }));
        // clone3's flags cannot be inspected: make libc fall back to clone.
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": scmp_arches(arch),
        "syscalls": rules,
    })
}

/// What `SecurityOpt` asks for.
#[derive(Debug, Clone, PartialEq)]
enum Choice {
    Default,
    Unconfined,
    Profile(String),
}

fn choice(hc: &HostConfig) -> Choice {
    let mut chosen = Choice::Default;
    for opt in hc.security_opt.iter().flatten() {
        let value = opt.strip_prefix("seccomp=").or_else(|| opt.strip_prefix("seccomp:"));
        match value {
            Some("unconfined") => chosen = Choice::Unconfined,
            Some("builtin") | Some("") => chosen = Choice::Default,
            Some(profile) => chosen = Choice::Profile(profile.to_string()),
            None => {}
        }
    }
    chosen
}

/// The `linux.seccomp` object for a container, `None` when unconfined
/// (privileged containers too, unless a profile is given explicitly).
pub fn for_container(hc: &HostConfig, caps: &[String]) -> Result<Option<Value>, String> {
    match choice(hc) {
        Choice::Unconfined => Ok(None),
        Choice::Default if hc.privileged => Ok(None),
        Choice::Default => Ok(Some(default_profile(caps))),
        Choice::Profile(text) => from_docker_json(&text, caps).map(Some),
    }
}

/// Does a Docker `includes`/`excludes` filter match this container?
fn filter_matches(filter: &Value, caps: &[String], arch: &str) -> Option<bool> {
    let list = |key: &str| filter.get(key).and_then(Value::as_array).filter(|a| !a.is_empty());
    let caps_ok = list("caps").map(|want| want.iter().all(|c| c.as_str().is_some_and(|c| caps.iter().any(|h| h == c))));
    let arch_ok = list("arches").map(|want| want.iter().any(|a| a.as_str() == Some(arch)));
    match (caps_ok, arch_ok) {
        (None, None) => None,
        (c, a) => Some(c.unwrap_or(true) && a.unwrap_or(true)),
    }
}

/// A profile in Docker's format (as in moby's `default.json`) → OCI.
fn from_docker_json(text: &str, caps: &[String]) -> Result<Value, String> {
    let profile: Value = serde_json::from_str(text).map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
    let default_action = profile["defaultAction"]
        .as_str()
        .ok_or_else(|| "decoding seccomp profile failed: missing defaultAction".to_string())?;
    let arch = docker_arch();
    let mut architectures: Vec<Value> = profile["architectures"].as_array().cloned().unwrap_or_default();
    let native = scmp_arches(arch);
    for entry in profile["archMap"].as_array().into_iter().flatten() {
        if entry["architecture"].as_str().is_some_and(|a| native.first() == Some(&a)) {
            architectures.push(entry["architecture"].clone());
            architectures.extend(entry["subArchitectures"].as_array().cloned().unwrap_or_default());
        }
    }
    let mut rules = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        let included = rule.get("includes").and_then(|f| filter_matches(f, caps, arch)).unwrap_or(true);
        let excluded = rule.get("excludes").and_then(|f| filter_matches(f, caps, arch)).unwrap_or(false);
        if !included || excluded {
            continue;
        }
        let mut names: Vec<Value> = rule["names"].as_array().cloned().unwrap_or_default();
        if let Some(name) = rule.get("name").filter(|n| n.is_string()) {
            names.push(name.clone());
        }
        let mut out = json!({"names": names, "action": rule["action"]});
        for key in ["errnoRet", "args"] {
            if let Some(v) = rule.get(key).filter(|v| !v.is_null()) {
                out[key] = v.clone();
            }
        }
        rules.push(out);
    }
    let mut oci = json!({"defaultAction": default_action, "architectures": architectures, "syscalls": rules});
    if let Some(errno) = profile.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        oci["defaultErrnoRet"] = errno.clone();
    }
    Ok(oci)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_allowed(profile: &Value) -> Vec<String> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn default_profile_denies_namespaces_without_sys_admin() {
        let caps = vec!["CAP_CHOWN".to_string()];
        let p = default_profile(&caps);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        let allowed = names_allowed(&p);
        assert!(allowed.contains(&"read".to_string()) && allowed.contains(&"execve".to_string()));
        assert!(!allowed.contains(&"unshare".to_string()) && !allowed.contains(&"mount".to_string()));
        assert!(!allowed.contains(&"clone".to_string()), "clone only with the flag mask");
        let rules = p["syscalls"].as_array().unwrap();
        assert!(rules.iter().any(|r| r["names"][0] == "clone3" && r["errnoRet"] == ENOSYS));
        let with_admin = names_allowed(&default_profile(&["CAP_SYS_ADMIN".to_string()]));
        assert!(with_admin.contains(&"unshare".to_string()) && with_admin.contains(&"clone3".to_string()));
    }

    #[test]
    fn security_opts_choose_the_profile() {
        let caps = vec![];
        let hc = |opts: &[&str], privileged: bool| HostConfig {
            security_opt: Some(opts.iter().map(|s| s.to_string()).collect()),
            privileged,
            ..Default::default()
        };
        assert!(for_container(&hc(&[], false), &caps).unwrap().is_some());
        assert!(for_container(&hc(&[], true), &caps).unwrap().is_none());
        assert!(for_container(&hc(&["seccomp=unconfined"], false), &caps).unwrap().is_none());
        let custom = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
            {"names":["chroot"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let p = for_container(&hc(&[&format!("seccomp={custom}")], false), &caps).unwrap().unwrap();
        assert_eq!(p["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(p["syscalls"].as_array().unwrap().len(), 1);
        assert_eq!(p["syscalls"][0]["names"][0], "mkdir");
        assert!(for_container(&hc(&["seccomp={bad"], false), &caps).is_err());
    }
}
