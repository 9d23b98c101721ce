//! Hostile HTTP against the API socket: oversize and deeply nested JSON,
//! oversize request heads, slow request heads and 10,000 idle connections.
//! The daemon answers with Docker-style errors, keeps its memory bounded and
//! keeps serving everyone else. (The five-minute header-read timeout itself
//! is proven with paused time in berthd's `server` unit tests.)

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use compat_tests::Berthd;

fn socket(daemon: &Berthd) -> PathBuf {
    PathBuf::from(daemon.host().trim_start_matches("unix://"))
}

/// Send `head` + `body` while reading the answer on another thread (the
/// daemon may answer and close before it has read everything), and return
/// the answer's status and body.
fn exchange(daemon: &Berthd, head: String, body: Vec<u8>) -> (u16, String) {
    let mut stream = UnixStream::connect(socket(daemon)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&body));
    });
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sending.join().unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn post_json(daemon: &Berthd, path: &str, body: Vec<u8>) -> (u16, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    exchange(daemon, head, body)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

fn still_serves(daemon: &Berthd) {
    let out = daemon.docker(&["version", "-f", "{{.Server.Os}}"]).success();
    assert_eq!(out.stdout.trim(), "linux");
}

#[test]
fn oversize_and_deeply_nested_json_bodies_are_refused_and_nothing_is_created() {
    let daemon = Berthd::start();
    // 20 MiB of labels: over the 16 MiB a JSON body may have.
    let big = format!(r#"{{"Image":"busybox","Labels":{{"a":"{}"}}}}"#, "x".repeat(20 << 20));
    for path in ["/v1.51/containers/create", "/v1.51/auth", "/v1.51/networks/create"] {
        let (status, body) = post_json(&daemon, path, big.clone().into_bytes());
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(r#""message":"request body is larger than 16777216 bytes""#), "{path}: {body}");
    }
    // 100,000 levels of arrays: refused by the decoder's depth limit, not by
    // the stack.
    let nested = format!(r#"{{"Image":"busybox","Labels":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let (status, body) = post_json(&daemon, "/v1.51/containers/create", nested.into_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("recursion limit exceeded"), "{body}");
    // A body that is not JSON at all, and one that lies about its length.
    let (status, body) = post_json(&daemon, "/v1.51/containers/create", vec![0xff; 4096]);
    assert_eq!(status, 400, "{body}");
    let head = "POST /v1.51/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    let mut short = UnixStream::connect(socket(&daemon)).unwrap();
    short.write_all(head.as_bytes()).unwrap();
    short.write_all(b"{}").unwrap();
    short.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = short.read_to_string(&mut answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
    assert_eq!(daemon.docker(&["network", "ls", "-q"]).success().stdout.lines().count(), 3);
    still_serves(&daemon);
}

#[test]
fn oversize_request_heads_get_431_and_the_daemon_carries_on() {
    let daemon = Berthd::start();
    // An X-Registry-Auth of 900 KiB is within Go's 1 MiB and still read.
    let head = format!("GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nX-Registry-Auth: {}\r\n\r\n", "a".repeat(900 << 10));
    let (status, body) = exchange(&daemon, head, Vec::new());
    assert_eq!((status, body.as_str()), (200, "OK"));
    for head in [
        // One 2 MiB header, and 20,000 small ones.
        format!("GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Big: {}\r\n\r\n", "a".repeat(2 << 20)),
        format!("GET /_ping HTTP/1.1\r\nHost: docker\r\n{}\r\n", "X-Many: 1\r\n".repeat(20_000)),
        // A request line of 2 MiB.
        format!("GET /_ping?{} HTTP/1.1\r\nHost: docker\r\n\r\n", "a".repeat(2 << 20)),
    ] {
        let (status, _) = exchange(&daemon, head, Vec::new());
        assert_eq!(status, 431);
    }
    still_serves(&daemon);
}

fn raise_open_files_limit(want: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        // Raising the hard limit needs CAP_SYS_RESOURCE; the soft one can
        // always go up to the hard one.
        let hard = limit.rlim_max;
        limit.rlim_max = limit.rlim_max.max(want);
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            limit.rlim_max = hard;
            limit.rlim_cur = hard;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
        assert!(limit.rlim_cur >= want, "RLIMIT_NOFILE is {}, the test needs {want}", limit.rlim_cur);
    }
}

#[test]
fn ten_thousand_idle_and_slow_connections_leave_others_served() {
    const IDLE: usize = 7_000;
    const SLOW: usize = 3_000;
    raise_open_files_limit(12_000);
    // berthd raises its own soft limit to the hard one, as dockerd does;
    // start it with a soft limit of 1024 to prove that.
    let daemon = Berthd::builder().wrapped_in(["sh", "-c", "ulimit -Sn 1024 && exec \"$@\"", "sh"]).start();
    let pid = daemon.pid().unwrap();
    still_serves(&daemon);
    let before = rss_kib(pid);

    // Idle connections that never send a byte, and slowloris ones that send
    // part of a request head and stall.
    let mut conns = Vec::with_capacity(IDLE + SLOW);
    for i in 0..IDLE + SLOW {
        let mut c = UnixStream::connect(socket(&daemon)).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        if i >= IDLE {
            c.write_all(b"GET /v1.51/containers/json HTTP/1.1\r\nHost: docker\r\nX-Slow: ").unwrap();
        }
        conns.push(c);
    }
    // Everyone else is still served, promptly.
    let started = Instant::now();
    still_serves(&daemon);
    daemon.docker(&["ps"]).success();
    assert!(started.elapsed() < Duration::from_secs(10), "served in {:?}", started.elapsed());
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    assert!(fds > IDLE + SLOW, "berthd holds {fds} descriptors");
    // A few KiB per connection, not per byte promised.
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!("RSS before {before} KiB, with {} connections +{grown} KiB", IDLE + SLOW);
    assert!(grown < 200 * 1024, "RSS grew by {grown} KiB");

    // The slow ones can still finish their request.
    for c in conns.iter_mut().skip(IDLE).take(3) {
        c.write_all(b"1\r\nConnection: close\r\n\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    drop(conns);
    // Closed connections are released.
    compat_tests::eventually(30, "connections released", || {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
        (fds < 200).then_some(())
    });
    still_serves(&daemon);
}

#[test]
fn a_glob_filter_with_many_stars_is_answered_promptly() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["images", "--format", "{{.Repository}}", "-f", "reference=bus*b?x"]).success();
    assert_eq!(out.stdout.trim(), "busybox");
    // Each star tried at every split was exponential in the stars matched
    // against a name of many b's: this pinned a thread.
    daemon.docker(&["tag", "busybox", &"b".repeat(80)]).success();
    let hostile = format!("{}z", "*b".repeat(40));
    let started = Instant::now();
    let out = daemon.docker(&["images", "-q", "-f", &format!("reference={hostile}")]).success();
    assert_eq!(out.stdout, "");
    assert!(started.elapsed() < Duration::from_secs(10), "answered in {:?}", started.elapsed());
    still_serves(&daemon);
}

#[test]
fn a_deeply_nested_dockerfile_substitution_is_refused_and_the_daemon_lives() {
    let daemon = Berthd::start_with_busybox();
    // 20,000 levels of `${a:-…}`: each was a level of recursion, and the
    // stack of the worker running the build overflowed.
    let dockerfile = format!("FROM busybox\nENV v={}x{}\n", "${a:-".repeat(20_000), "}".repeat(20_000));
    let mut context = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    context.append_data(&mut h, "Dockerfile", dockerfile.as_bytes()).unwrap();
    let resp = compat_tests::client::try_raw_request(
        &socket(&daemon),
        "POST",
        "/v1.51/build?t=nested",
        &[("Content-Type", "application/x-tar")],
        Some(&context.into_inner().unwrap()),
    );
    let resp = resp.unwrap_or_else(|e| panic!("the build request failed ({e:#}); berthd log:\n{}", daemon.log()));
    let body = String::from_utf8_lossy(&resp.body);
    assert!(body.contains("errorDetail") && body.contains("nested too deeply"), "{}: {}", resp.status, &body[..body.len().min(2000)]);
    still_serves(&daemon);
}

/// dockerd's words (compared with the reference dockerd 20.10) for cpuset
/// lists it cannot read or the host lacks, for CPUs and memory nodes, on
/// create and on update; a refused update leaves the container as it was.
#[test]
fn cpuset_lists_are_checked_as_dockerd_checks_them() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["create", "busybox", "true"]).success().stdout.trim().to_string();
    let cases = [
        ("--cpuset-cpus", "0-4294967295", "Invalid value 0-4294967295 for cpuset cpus: value of out range, maximum is 8192"),
        ("--cpuset-cpus", "0,,1", "Invalid value 0,,1 for cpuset cpus: invalid format: 0,,1"),
        ("--cpuset-cpus", "3-1", "Invalid value 3-1 for cpuset cpus: invalid format: 3-1"),
        ("--cpuset-cpus", "8000", "Requested CPUs are not available - requested 8000, available: "),
        ("--cpuset-mems", "0-4294967295", "Invalid value 0-4294967295 for cpuset mems: value of out range, maximum is 8192"),
        ("--cpuset-mems", "x", "Invalid value x for cpuset mems: invalid format: x"),
        ("--cpuset-mems", "8000", "Requested memory nodes are not available - requested 8000, available: "),
    ];
    for (flag, value, words) in cases {
        let created = daemon.docker(&["create", flag, value, "busybox", "true"]).failure();
        assert!(created.stderr.contains(words), "create {flag} {value}: {}", created.stderr);
        let updated = daemon.docker(&["update", flag, value, &id]).failure();
        assert!(updated.stderr.contains(words), "update {flag} {value}: {}", updated.stderr);
    }
    let kept = daemon.docker(&["inspect", "--format", "[{{.HostConfig.CpusetCpus}}] [{{.HostConfig.CpusetMems}}]", &id]).success();
    assert_eq!(kept.stdout.trim(), "[] []");
    let all = daemon.docker(&["ps", "-aq"]).success();
    assert_eq!(all.stdout.lines().count(), 1, "{}", all.stdout);
    // What the host has is taken.
    daemon.docker(&["create", "--cpuset-cpus", "0", "--cpuset-mems", "0", "busybox", "true"]).success();
    daemon.docker(&["update", "--cpuset-mems", "0", &id]).success();
}

/// Memory and CPU limits dockerd refuses (moby's
/// verifyPlatformContainerResources) are refused in its words on create and
/// on update, and an update may not mix CPUs with a CFS period or quota the
/// container already has (409); nothing refused is stored.
#[test]
fn memory_and_cpu_limits_are_checked_as_dockerd_checks_them() {
    let daemon = Berthd::start_with_busybox();
    let cpus = std::thread::available_parallelism().unwrap().get();
    let range = format!("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available");
    let both: &[(&[&str], &str)] = &[
        (&["--memory-reservation", "1"], "Minimum memory reservation allowed is 6MB"),
        (&["--memory", "10m", "--memory-reservation", "20m"], "Minimum memory limit can not be less than memory reservation limit, see usage"),
        (&["--memory", "10m", "--memory-swap", "5m"], "Minimum memoryswap limit should be larger than memory limit, see usage"),
        (&["--cpus", "1000"], &range),
        (&["--cpus", "1", "--cpu-period", "100000"], "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
        (&["--cpus", "1", "--cpu-quota", "50000"], "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
        (&["--cpu-period", "500"], "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
        (&["--cpu-period", "2000000"], "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
        (&["--cpu-quota", "500"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ];
    let id = daemon.docker(&["create", "--cpus", "1", "busybox", "sleep", "60"]).success().stdout.trim().to_string();
    let shown = "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}}";
    let before = daemon.docker(&["inspect", "--format", shown, &id]).success().stdout;
    for (flags, words) in both {
        let created = daemon.docker(&[&["create"], *flags, &["busybox", "true"]].concat()).failure();
        assert!(created.stderr.contains(words), "create {flags:?}: {}", created.stderr);
        let updated = daemon.docker(&[&["update"], *flags, &[id.as_str()]].concat()).failure();
        assert!(updated.stderr.contains(words), "update {flags:?}: {}", updated.stderr);
    }
    // Only at create: an update may set a swap limit alone.
    let out = daemon.docker(&["create", "--memory-swap", "10m", "busybox", "true"]).failure();
    assert!(out.stderr.contains("You should always set the Memory limit when using Memoryswap limit, see usage"), "{}", out.stderr);
    let out = daemon.docker(&["update", "--cpu-quota", "50000", &id]).failure();
    let conflict = format!("Cannot update container {id}: Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
    assert!(out.stderr.contains(&conflict), "{}", out.stderr);
    daemon.docker(&["start", &id]).success();
    let out = daemon.docker(&["update", "--cpus", "1000", &id]).failure();
    assert!(out.stderr.contains(&range), "{}", out.stderr);
    assert_eq!(daemon.docker(&["inspect", "--format", shown, &id]).success().stdout, before);
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.lines().count(), 1);
    // What dockerd takes is still taken.
    daemon.docker(&["create", "--memory", "10m", "--memory-swap", "-1", "--cpu-quota", "-1", "busybox", "true"]).success();
    daemon.docker(&["update", "--cpus", "0.5", &id]).success();
    daemon.docker(&["rm", "-f", &id]).success();
}

/// dockerd warns at create when the OOM killer is disabled without a
/// memory limit (on cgroup v1; v2 has no such control and drops the flag
/// with its own warning), and creates the container all the same.
#[test]
fn disabling_the_oom_killer_without_a_memory_limit_is_warned_about() {
    let daemon = Berthd::start_with_busybox();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let words = if v2 {
        "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
    } else {
        "WARNING: OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
    };
    let out = daemon.docker(&["create", "--oom-kill-disable", "busybox", "true"]).success();
    assert!(out.stderr.contains(words), "{}", out.stderr);
    assert_eq!(out.stdout.trim().len(), 64, "{}", out.stdout);
    let out = daemon.docker(&["create", "--oom-kill-disable", "--memory", "10m", "busybox", "true"]).success();
    assert_eq!(out.stderr.contains("WARNING"), v2, "{}", out.stderr);
}

/// dockerd stores twice the memory as the swap limit when only a memory
/// limit is given, and an update may then not raise the memory above the
/// stored swap without a swap of its own (a 409), whatever the swap is.
#[test]
fn a_memory_limit_gets_twice_as_much_swap_and_updates_respect_it() {
    let daemon = Berthd::start_with_busybox();
    let limits = |id: &str| daemon.inspect_format("{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", id);
    let mib = |n: u64| (n << 20).to_string();
    let limited = daemon.docker(&["create", "--memory", "10m", "busybox", "true"]).success().stdout.trim().to_string();
    assert_eq!(limits(&limited), format!("{} {}", mib(10), mib(20)));
    let unlimited = daemon.docker(&["create", "busybox", "true"]).success().stdout.trim().to_string();
    let no_swap_limit = daemon.docker(&["create", "--memory", "10m", "--memory-swap", "-1", "busybox", "true"]).success().stdout.trim().to_string();
    assert_eq!(limits(&no_swap_limit), format!("{} -1", mib(10)));
    for (id, memory) in [(&limited, "30m"), (&unlimited, "10m"), (&no_swap_limit, "20m")] {
        let out = daemon.docker(&["update", "--memory", memory, id]).failure();
        let words = format!(
            "Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        assert!(out.stderr.contains(&words), "{memory}: {}", out.stderr);
    }
    let body = serde_json::json!({"Memory": 40u64 << 20}).to_string();
    let path = format!("/containers/{limited}/update");
    let status = compat_tests::client::raw_request(&socket(&daemon), "POST", &path, &[("Content-Type", "application/json")], Some(body.as_bytes())).status;
    assert_eq!(status, 409);
    assert_eq!(limits(&limited), format!("{} {}", mib(10), mib(20)));
    daemon.docker(&["update", "--memory", "15m", &limited]).success();
    assert_eq!(limits(&limited), format!("{} {}", mib(15), mib(20)));
    daemon.docker(&["update", "--memory", "10m", "--memory-swap", "30m", &unlimited]).success();
    assert_eq!(limits(&unlimited), format!("{} {}", mib(10), mib(30)));
}

/// An --rm container keeps "no" restart policy: dockerd refuses another
/// with a 409 "Cannot update container <id>: Restart policy cannot be
/// updated because AutoRemove is enabled for the container", and keeps it.
#[test]
fn an_auto_remove_container_keeps_its_restart_policy() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["create", "--rm", "busybox", "true"]).success().stdout.trim().to_string();
    let out = daemon.docker(&["update", "--restart", "always", &id]).failure();
    let words = format!("Error response from daemon: Cannot update container {id}: Restart policy cannot be updated because AutoRemove is enabled for the container");
    assert!(out.stderr.contains(&words), "{}", out.stderr);
    let policy = daemon.docker(&["inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", &id]).success();
    assert_eq!(policy.stdout.trim(), "no");
    daemon.docker(&["update", "--restart", "no", &id]).success();
}

#[test]
fn a_huge_cpuset_range_is_refused_without_expanding_it() {
    let daemon = Berthd::start_with_busybox();
    let pid = daemon.pid().unwrap();
    // Each CPU of the range was pushed into a list before it was checked
    // against the host's: 16 GiB for this one.
    let started = Instant::now();
    let out = daemon.docker(&["create", "--cpuset-cpus", "0-4294967295", "busybox", "true"]).failure();
    assert!(out.stderr.contains("Invalid value 0-4294967295 for cpuset cpus"), "{}", out.stderr);
    let id = daemon.docker(&["create", "busybox", "true"]).success().stdout.trim().to_string();
    let out = daemon.docker(&["update", "--cpuset-cpus", "0-4294967295", &id]).failure();
    assert!(out.stderr.contains("for cpuset cpus"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "answered in {:?}", started.elapsed());
    assert!(rss_kib(pid) < 512 * 1024, "RSS {} KiB", rss_kib(pid));
    // Nothing was created by the refused one.
    let out = daemon.docker(&["ps", "-aq"]).success();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    still_serves(&daemon);
}
