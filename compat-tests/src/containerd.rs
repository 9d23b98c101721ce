//! The one containerd every test shares: started here if nothing answers.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SOCKET: &str = "/run/containerd/containerd.sock";

static STARTING: Mutex<()> = Mutex::new(());

/// Make sure a containerd answers at [`SOCKET`], starting one (detached, so
/// it outlives this test process) if needed. Panics with the reason when it
/// cannot: a test that cannot run must fail.
pub fn ensure_running() {
    let _guard = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if answers() {
        return;
    }
    let binary = which("containerd").unwrap_or_else(|| {
        panic!("containerd is not installed: run scripts/setup.sh (Debian package containerd)")
    });
    let log = std::fs::File::create("/tmp/berth-test-containerd.log").expect("containerd log file");
    Command::new("setsid")
        .arg(binary)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .expect("spawning containerd");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if answers() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "containerd did not come up at {SOCKET}; its log:\n{}",
        std::fs::read_to_string("/tmp/berth-test-containerd.log").unwrap_or_default()
    );
}

fn answers() -> bool {
    UnixStream::connect(SOCKET).is_ok()
        && Command::new("ctr")
            .args(["--address", SOCKET, "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// `ctr -n NAMESPACE ARGS`, its stdout as lines.
fn ctr_lines(namespace: &str, args: &[&str]) -> Vec<String> {
    Command::new("ctr")
        .args(["--address", SOCKET, "-n", namespace])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// SIGKILL every task in a test namespace.
pub fn kill_tasks(namespace: &str) {
    for task in ctr_lines(namespace, &["tasks", "ls", "-q"]) {
        ctr_lines(namespace, &["tasks", "kill", "-s", "SIGKILL", &task]);
    }
}

/// IDs of the containers in a namespace (`ctr containers ls -q`).
pub fn container_ids(namespace: &str) -> Vec<String> {
    ctr_lines(namespace, &["containers", "ls", "-q"])
}

/// Keys of the overlayfs snapshots in a namespace.
pub fn snapshot_keys(namespace: &str) -> Vec<String> {
    ctr_lines(namespace, &["snapshots", "--snapshotter", "overlayfs", "ls"])
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Remove everything berthd left in a test namespace, then the namespace.
pub fn remove_namespace(namespace: &str) {
    let ctr = |args: &[&str]| ctr_lines(namespace, args);
    for task in ctr(&["tasks", "ls", "-q"]) {
        ctr(&["tasks", "kill", "-s", "SIGKILL", &task]);
        ctr(&["tasks", "rm", "-f", &task]);
    }
    for container in ctr(&["containers", "ls", "-q"]) {
        ctr(&["containers", "rm", &container]);
    }
    for image in ctr(&["images", "ls", "-q"]) {
        ctr(&["images", "rm", "--sync", &image]);
    }
    for lease in ctr(&["leases", "ls", "-q"]) {
        ctr(&["leases", "rm", &lease]);
    }
    let _ = Command::new("ctr")
        .args(["--address", SOCKET, "namespaces", "rm", namespace])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
