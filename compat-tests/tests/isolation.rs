//! What containers share with the host and each other, and what they may
//! do there, through the stock CLI: ulimits (and daemon defaults), --init,
//! devices, sysctls, IPC/PID/UTS modes, the OOM score, cpusets.

use compat_tests::Berthd;

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}")).expect("reading our namespace").display().to_string()
}

#[test]
fn ulimits_from_the_run_and_from_daemon_defaults() {
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({
            "default-ulimits": {
                "nofile": {"Name": "nofile", "Soft": 500, "Hard": 600},
                "nproc": {"Name": "nproc", "Soft": 300, "Hard": 400},
            }
        }))
        .start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"]).success();
    assert_eq!(out.stdout, "500\n600\n300\n");
    // The container's own limit replaces the default of the same name only.
    let out = daemon
        .docker(&["run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"])
        .success();
    assert_eq!(out.stdout, "100\n200\n300\n");
    let inspect = daemon
        .docker(&["create", "--ulimit", "nofile=100:200", "busybox"])
        .success();
    let shown = daemon.docker(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", inspect.stdout.trim()]).success();
    assert_eq!(shown.stdout.trim(), r#"[{"Name":"nofile","Hard":200,"Soft":100}]"#);
}

#[test]
fn bad_ulimits_and_modes_are_refused_and_create_nothing() {
    let daemon = Berthd::start_with_busybox();
    for (body, message) in [
        (r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":300,"Hard":200}]}}"#,
         "ulimit soft limit must be less than or equal to hard limit: 300 > 200"),
        (r#"{"Image":"busybox","HostConfig":{"IpcMode":"foo"}}"#, "Invalid IPC mode: foo"),
        (r#"{"Image":"busybox","HostConfig":{"PidMode":"foo"}}"#, "Invalid PID mode: foo"),
        (r#"{"Image":"busybox","HostConfig":{"CgroupnsMode":"foo"}}"#, "invalid cgroup namespace mode: foo"),
        (r#"{"Image":"busybox","HostConfig":{"OomScoreAdj":2000}}"#,
         "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
        (r#"{"Image":"busybox","HostConfig":{"IpcMode":"container:nope"}}"#, "No such container: nope"),
        (r#"{"Image":"busybox","HostConfig":{"Runtime":"foo"}}"#, "Unknown runtime specified foo"),
        (r#"{"Image":"busybox","HostConfig":{"DeviceCgroupRules":["x 1:3 zz"]}}"#,
         "invalid device cgroup rule format: 'x 1:3 zz'"),
        (r#"{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":"/dev/nope","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]}}"#,
         "error gathering device information while adding custom device \"/dev/nope\": no such file or directory"),
    ] {
        let resp = daemon.request("POST", "/v1.51/containers/create", Some(body.as_bytes()));
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        assert!(resp.status == 400 || resp.status == 404, "{body}: {} {:?}", resp.status, json);
        assert_eq!(json["message"], message, "{body}");
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
}

#[test]
fn init_runs_as_pid_one_and_reaps() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"]).success();
    let pid1: Vec<&str> = out.stdout.split('\0').collect();
    assert_eq!(pid1[..4], ["/sbin/docker-init", "--", "cat", "/proc/1/cmdline"], "{:?}", out.stdout);
    let without = daemon.docker(&["run", "--rm", "busybox", "cat", "/proc/1/cmdline"]).success();
    assert!(without.stdout.starts_with("cat\0"), "{:?}", without.stdout);
    let shown = daemon.docker(&["create", "--init", "busybox"]).success();
    let init = daemon.docker(&["inspect", "-f", "{{.HostConfig.Init}}", shown.stdout.trim()]).success();
    assert_eq!(init.stdout.trim(), "true");
}

#[test]
fn devices_and_cgroup_rules() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon
        .docker(&["run", "--rm", "--device", "/dev/null:/dev/mynull:rw", "busybox", "sh", "-c", "ls -l /dev/mynull; echo ok > /dev/mynull && echo written"])
        .success();
    assert!(out.stdout.starts_with("crw"), "{}", out.stdout);
    assert!(out.stdout.contains("1,   3"), "{}", out.stdout);
    assert!(out.stdout.ends_with("written\n"), "{}", out.stdout);
    let rules = daemon
        .docker(&["run", "--rm", "--device-cgroup-rule", "c 42:7 rm", "busybox", "cat", "/sys/fs/cgroup/devices/devices.list"])
        .success();
    assert!(rules.stdout.lines().any(|l| l == "c 42:7 rm"), "{}", rules.stdout);
    let inspect = daemon.docker(&["create", "--device", "/dev/null:/dev/mynull", "busybox"]).success();
    let shown = daemon.docker(&["inspect", "-f", "{{json .HostConfig.Devices}}", inspect.stdout.trim()]).success();
    assert_eq!(shown.stdout.trim(), r#"[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rwm"}]"#);
}

#[test]
fn sysctls_oom_score_and_domainname() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon
        .docker(&[
            "run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=123456",
            "--oom-score-adj", "321", "--hostname", "box", "--domainname", "example.test", "busybox", "sh", "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/self/oom_score_adj /proc/sys/kernel/hostname /proc/sys/kernel/domainname",
        ])
        .success();
    assert_eq!(out.stdout, "1\n123456\n321\nbox\nexample.test\n");
    // As with dockerd, runc refuses a network sysctl in the host's namespace.
    let refused = daemon.docker(&["run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not allowed in host network namespace"), "{}", refused.stderr);
}

#[test]
fn host_namespaces() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon
        .docker(&["run", "--rm", "--ipc", "host", "--pid", "host", "--uts", "host", "busybox", "sh", "-c",
                  "for n in ipc pid uts; do readlink /proc/self/ns/$n; done"])
        .success();
    let expected = format!("{}\n{}\n{}\n", host_ns("ipc"), host_ns("pid"), host_ns("uts"));
    assert_eq!(out.stdout, expected);
    let private = daemon.docker(&["run", "--rm", "busybox", "readlink", "/proc/self/ns/ipc"]).success();
    assert_ne!(private.stdout.trim(), host_ns("ipc"));
    let id = daemon.docker(&["create", "busybox"]).success().stdout;
    let modes = daemon
        .docker(&["inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}}", id.trim()])
        .success();
    let cgroupns = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "private" } else { "host" };
    assert_eq!(modes.stdout.trim(), format!("private {cgroupns}"));
}

#[test]
fn joining_another_containers_ipc_and_pid() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "private", "busybox", "sleep", "300"]).success();
    let donor_ipc = daemon.docker(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]).success();
    daemon.docker(&["exec", "donor", "sh", "-c", "echo shared > /dev/shm/token"]).success();
    let out = daemon
        .docker(&["run", "--rm", "--ipc", "container:donor", "--pid", "container:donor", "busybox", "sh", "-c",
                  "readlink /proc/self/ns/ipc; cat /dev/shm/token; ps -o args | grep -c '^sleep 300'"])
        .success();
    assert_eq!(out.stdout, format!("{}shared\n1\n", donor_ipc.stdout));
    let refused = daemon.docker(&["run", "--rm", "--ipc", "container:private", "busybox", "true"]).failure();
    assert!(refused.stderr.contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)"), "{}", refused.stderr);
    daemon.docker(&["stop", "-t", "0", "donor"]).success();
    let stopped = daemon.docker(&["run", "--rm", "--pid", "container:donor", "busybox", "true"]).failure();
    assert!(stopped.stderr.contains("cannot join PID of a non running container"), "{}", stopped.stderr);
}

#[test]
fn cpusets_at_create_and_update() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "--cpuset-cpus", "0", "busybox", "cat", "/sys/fs/cgroup/cpuset/cpuset.cpus"]);
    let cpus = if out.code == 0 {
        out.stdout
    } else {
        // cgroup v2: the container's own cgroup is at the root of its view.
        daemon.docker(&["run", "--rm", "--cpuset-cpus", "0", "busybox", "cat", "/sys/fs/cgroup/cpuset.cpus"]).success().stdout
    };
    assert_eq!(cpus.trim(), "0");
    let refused = daemon.docker(&["run", "--rm", "--cpuset-cpus", "999", "busybox", "true"]).failure();
    assert!(refused.stderr.contains("Requested CPUs are not available - requested 999"), "{}", refused.stderr);
    daemon.docker(&["run", "-d", "--name", "cs", "busybox", "sleep", "300"]).success();
    daemon.docker(&["update", "--cpuset-cpus", "0", "cs"]).success();
    let shown = daemon.docker(&["inspect", "-f", "{{.HostConfig.CpusetCpus}}", "cs"]).success();
    assert_eq!(shown.stdout.trim(), "0");
    let live = daemon.docker(&["exec", "cs", "cat", "/sys/fs/cgroup/cpuset/cpuset.cpus"]).success();
    assert_eq!(live.stdout.trim(), "0");
}

/// A runtime that records that it ran, then runs runc with the arguments
/// the shim gave it.
fn recording_runtime(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let marker = dir.join("runtime-used");
    let script = dir.join("my-runtime");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\nexec runc \"$@\"\n", marker.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, marker)
}

#[test]
fn configured_runtimes_run_containers() {
    let scratch = tempfile::tempdir().unwrap();
    let (script, marker) = recording_runtime(scratch.path());
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({
            "runtimes": {"recorder": {"path": script.display().to_string(), "runtimeArgs": ["--debug"]}}
        }))
        .start_with_busybox();
    let info = daemon.docker(&["info", "-f", "{{json .Runtimes.recorder}} {{.DefaultRuntime}}"]).success();
    assert_eq!(info.stdout.trim(), format!(r#"{{"path":"{}","runtimeArgs":["--debug"]}} runc"#, script.display()));
    // runc by default: the recorder stays unused.
    daemon.docker(&["run", "--rm", "busybox", "true"]).success();
    assert!(!marker.exists());
    let out = daemon.docker(&["run", "--rm", "--runtime", "recorder", "busybox", "echo", "via recorder"]).success();
    assert_eq!(out.stdout, "via recorder\n");
    let calls = std::fs::read_to_string(&marker).expect("the runtime was not run");
    assert!(calls.lines().any(|l| l.starts_with("--debug") && l.contains(" create ")), "{calls}");
    let id = daemon.docker(&["create", "busybox"]).success().stdout;
    let shown = daemon.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", id.trim()]).success();
    assert_eq!(shown.stdout.trim(), "runc");
    let reserved = Berthd::builder()
        .daemon_json(serde_json::json!({"runtimes": {"runc": {"path": "/bin/true"}}}))
        .run_to_exit();
    assert!(reserved.stderr.contains("runtime name 'runc' is reserved"), "{}", reserved.stderr);
}

/// Linux has one isolation technology: dockerd refuses the others at create
/// ("Invalid isolation: \"hyperv\" - linux only supports 'default'") and
/// takes `default` in any case; nothing is created.
#[test]
fn an_isolation_other_than_default_is_refused() {
    let daemon = Berthd::start_with_busybox();
    for isolation in ["hyperv", "bogus"] {
        let out = daemon.docker(&["create", "--isolation", isolation, "busybox", "true"]).failure();
        let words = format!("Error response from daemon: Invalid isolation: \"{isolation}\" - linux only supports 'default'");
        assert!(out.stderr.contains(&words), "{}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.trim(), "");
    daemon.docker(&["create", "--isolation", "DEFAULT", "busybox", "true"]).success();
}
