//! dockerd's default security profile, seen from inside a container:
//! capabilities, seccomp, masked and read-only /proc paths, read-only /sys,
//! the device cgroup, no-new-privileges; and what --privileged, --cap-add,
//! --cap-drop and --security-opt change. The expected texts were taken from
//! dockerd 20.10 running the same probe on this kind of host, plus
//! /proc/interrupts, which Docker 28 (API 1.51, the version we speak) masks
//! as well. Plus: secrets
//! stay out of berthd's log, events and inspect output.

use compat_tests::Berthd;

/// Prints the process's capability sets, seccomp and no-new-privs state,
/// /dev, the /proc and /sys mounts (path, type, ro/rw; cgroup mounts left
/// out: they follow the host's hierarchies) and whether a few things the
/// profile forbids succeed (0) or fail (1).
const PROBE: &str = r#"
grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status | tr '\t' ' '
echo dev: $(ls /dev)
mount | grep -E ' on /(sys|proc)[/ ]' | grep -v ' on /sys/fs/cgroup' | sed -E 's/^[^ ]+ on ([^ ]+) type ([a-z]+) \(([a-z]+)[,)].*/\1 \2 \3/'
unshare -U true 2>/dev/null; echo unshare=$?
mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null; echo mount=$?
mknod /tmp/mem c 1 1 2>/dev/null && head -c1 /tmp/mem >/dev/null 2>&1; echo mem=$?
touch /sys/x 2>/dev/null; echo sys=$?
echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; echo procsys=$?
cat /proc/timer_list /proc/keys 2>/dev/null | wc -c
"#;

/// Masked (empty) and read-only /proc paths, and a read-only /sys.
const DEFAULT_MOUNTS: &str = "\
/proc proc rw
/sys sysfs ro
/proc/bus proc ro
/proc/fs proc ro
/proc/irq proc ro
/proc/sys proc ro
/proc/acpi tmpfs ro
/proc/interrupts tmpfs rw
/proc/keys tmpfs rw
/proc/timer_list tmpfs rw
/sys/firmware tmpfs ro
";

const DEFAULT_DEVICES: &str = "dev: fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero\n";

fn status(caps: &str, no_new_privs: u8, seccomp: u8) -> String {
    format!(
        "CapInh: 0000000000000000\nCapPrm: {caps}\nCapEff: {caps}\nCapBnd: {caps}\nCapAmb: 0000000000000000\n\
         NoNewPrivs: {no_new_privs}\nSeccomp: {seccomp}\n"
    )
}

fn probe(daemon: &Berthd, opts: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", PROBE]);
    daemon.docker(&args).success().stdout
}

/// The expected probe output: `status` lines, then devices, mounts and the
/// results of the forbidden operations.
fn expected(status: String, unshare: u8, mount: u8) -> String {
    format!("{status}{DEFAULT_DEVICES}{DEFAULT_MOUNTS}unshare={unshare}\nmount={mount}\nmem=1\nsys=1\nprocsys=1\n0\n")
}

/// dockerd's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
/// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP.
const DEFAULT_CAPS: &str = "00000000a80425fb";

#[test]
fn default_container_has_dockerds_profile() {
    let daemon = Berthd::start_with_busybox();
    // Seccomp mode 2 (filter) blocks unshare(CLONE_NEWUSER) even though the
    // kernel would allow it unprivileged; mount lacks CAP_SYS_ADMIN; the
    // device cgroup refuses /dev/mem made with mknod.
    assert_eq!(probe(&daemon, &[]), expected(status(DEFAULT_CAPS, 0, 2), 1, 1));
}

#[test]
fn cap_add_and_cap_drop_change_only_the_capabilities() {
    let daemon = Berthd::start_with_busybox();
    // SYS_ADMIN (bit 21) also opens the seccomp rules dockerd's profile ties
    // to it: unshare and mount now work.
    assert_eq!(probe(&daemon, &["--cap-add", "SYS_ADMIN"]), expected(status("00000000a82425fb", 0, 2), 0, 0));
    assert_eq!(probe(&daemon, &["--cap-drop", "ALL"]), expected(status("0000000000000000", 0, 2), 1, 1));
    // NET_ADMIN is bit 12; dropping CHOWN (bit 0) keeps the rest.
    let out = probe(&daemon, &["--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"]);
    assert!(out.starts_with(&status("00000000a80435fa", 0, 2)), "{out}");
}

#[test]
fn seccomp_unconfined_and_no_new_privileges() {
    let daemon = Berthd::start_with_busybox();
    // Without the filter, an unprivileged user namespace can be made; the
    // capabilities stay the default ones, so mount still fails.
    assert_eq!(
        probe(&daemon, &["--security-opt", "seccomp=unconfined"]),
        expected(status(DEFAULT_CAPS, 0, 0), 0, 1)
    );
    for opt in ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=1"] {
        assert_eq!(probe(&daemon, &["--security-opt", opt]), expected(status(DEFAULT_CAPS, 1, 2), 1, 1), "{opt}");
    }
    let out = probe(&daemon, &["--security-opt", "no-new-privileges=false"]);
    assert!(out.contains("NoNewPrivs: 0\n"), "{out}");
    // dockerd's errors for options it does not know, and nothing is created.
    for (opt, message) in [
        ("bogus=1", r#"invalid --security-opt 2: "bogus=1""#),
        ("no-new-privileges=maybe", r#"invalid --security-opt 2: "no-new-privileges=maybe""#),
    ] {
        let out = daemon.docker(&["run", "--rm", "--security-opt", opt, "busybox", "true"]).failure();
        assert!(out.stderr.contains(message), "{}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
}

#[test]
fn privileged_gets_every_capability_and_the_hosts_devices() {
    let daemon = Berthd::start_with_busybox();
    // Every capability the host allows, no seccomp, /sys writable, nothing
    // masked, the host's devices.
    let host_bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .unwrap();
    let out = probe(&daemon, &["--privileged"]);
    let caps = format!("CapPrm: {host_bounding}\nCapEff: {host_bounding}\nCapBnd: {host_bounding}\n");
    assert!(out.contains(&caps), "{out}");
    assert!(out.contains("Seccomp: 0\n"), "{out}");
    assert!(out.contains("/sys sysfs rw\n"), "{out}");
    for masked in ["/proc/keys", "/proc/timer_list", "/proc/acpi", "/sys/firmware", "/proc/sys proc ro"] {
        assert!(!out.contains(masked), "{masked} still masked: {out}");
    }
    assert!(out.contains("unshare=0\nmount=0\n"), "{out}");
    assert!(out.contains("procsys=0\n"), "{out}");
    let host_devices = std::fs::read_dir("/dev").unwrap().count();
    let dev_line = out.lines().find(|l| l.starts_with("dev:")).unwrap();
    assert!(dev_line.split(' ').count() > 15 && host_devices > 15, "{dev_line}");
}

#[test]
fn secrets_stay_out_of_logs_events_inspect_and_errors() {
    use compat_tests::registry::Registry;
    const PASSWORD: &str = "pw-7f3a9c1e-never-log";
    const ENV_VALUE: &str = "env-5d2b8e40-never-log";
    let registry = Registry::start_with_htpasswd("berth", PASSWORD).unwrap();
    let built = compat_tests::images::BusyboxImage::new("berth/private:v1").build().unwrap();
    registry.push_oci(&built, "berth/private", "v1").unwrap();
    let reference = registry.reference("berth/private", "v1");
    let daemon = Berthd::builder().arg("--debug").start();
    daemon.reach_host_port(registry.port());

    // A wrong password, a right one; pull and push with the credentials in
    // X-Registry-Auth; a container whose environment holds a secret.
    let wrong = format!("{PASSWORD}-wrong");
    let out = daemon.docker_stdin(&["login", registry.addr(), "-u", "berth", "--password-stdin"], format!("{wrong}\n").as_bytes()).failure();
    assert!(!out.stderr.contains(&wrong), "{}", out.stderr);
    daemon.docker_stdin(&["login", registry.addr(), "-u", "berth", "--password-stdin"], format!("{PASSWORD}\n").as_bytes()).success();
    daemon.docker(&["pull", &reference]).success();
    let pushed = registry.reference("berth/copy", "v2");
    daemon.docker(&["tag", &reference, &pushed]).success();
    daemon.docker(&["push", &pushed]).success();
    let missing = daemon.docker(&["pull", &registry.reference("berth/none", "v1")]).failure();
    assert!(!missing.stderr.contains(PASSWORD), "{}", missing.stderr);
    let env = format!("SECRET={ENV_VALUE}");
    daemon.docker(&["run", "-d", "--name", "secretive", "-e", &env, &reference, "sleep", "60"]).success();
    let out = daemon.docker(&["exec", "-e", &env, "secretive", "sh", "-c", "echo $SECRET"]).success();
    assert_eq!(out.stdout.trim(), ENV_VALUE);
    daemon.docker(&["rm", "-f", "secretive"]).success();

    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("berth:{PASSWORD}"));
    let log = daemon.log();
    assert!(log.contains("level=debug") || log.contains("DEBUG"), "debug logging is on");
    for secret in [PASSWORD, auth.as_str(), ENV_VALUE] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    let events = daemon.docker(&["events", "--since", "0", "--until", &compat_tests::now_stamp()]).success();
    assert!(events.stdout.contains("container start"), "{}", events.stdout);
    let inspected = daemon.docker(&["image", "inspect", &reference, &pushed]).success();
    for secret in [PASSWORD, auth.as_str()] {
        assert!(!events.stdout.contains(secret), "{secret} in events");
        assert!(!inspected.stdout.contains(secret), "{secret} in image inspect");
    }
}
