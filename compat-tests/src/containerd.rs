//! The one containerd every test shares: started here if nothing answers.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::os::unix::process::CommandExt;
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
    ctr_lines_at(Path::new(SOCKET), namespace, args)
}

/// `ctr --address ADDRESS -n NAMESPACE ARGS`, its stdout as lines.
pub fn ctr_lines_at(address: &Path, namespace: &str, args: &[&str]) -> Vec<String> {
    Command::new("ctr")
        .arg("--address")
        .arg(address)
        .args(["-n", namespace])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// SIGKILL every task in a test namespace.
pub fn kill_tasks(namespace: &str) {
    kill_tasks_at(Path::new(SOCKET), namespace)
}

/// SIGKILL every task in a namespace of the containerd at `address`.
pub fn kill_tasks_at(address: &Path, namespace: &str) {
    for task in ctr_lines_at(address, namespace, &["tasks", "ls", "-q"]) {
        ctr_lines_at(address, namespace, &["tasks", "kill", "-s", "SIGKILL", &task]);
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
    remove_namespace_at(Path::new(SOCKET), namespace)
}

/// [`remove_namespace`] on the containerd at `address`.
pub fn remove_namespace_at(address: &Path, namespace: &str) {
    let ctr = |args: &[&str]| ctr_lines_at(address, namespace, args);
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
        .arg("--address")
        .arg(address)
        .args(["namespaces", "rm", namespace])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A containerd of a test's own (own socket, root and state), for tests
/// that stop, kill or restart containerd: the shared one must stay up for
/// every other test. Killed, with its tasks, on drop.
pub struct PrivateContainerd {
    dir: tempfile::TempDir,
    root: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateContainerd {
    /// Start one and wait until it answers; panics with its log if not.
    #[track_caller]
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("berth-ctd-").tempdir().expect("tempdir");
        let root = dir.path().join("root");
        Self::start_with_root(dir, &root)
    }

    /// One whose content and snapshots live under `root` (e.g. a small
    /// filesystem the test fills).
    #[track_caller]
    pub fn start_on(root: &Path) -> Self {
        let dir = tempfile::Builder::new().prefix("berth-ctd-").tempdir().expect("tempdir");
        Self::start_with_root(dir, root)
    }

    #[track_caller]
    fn start_with_root(dir: tempfile::TempDir, root: &Path) -> Self {
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = {grpc:?}\n[ttrpc]\n  address = {ttrpc:?}\n[debug]\n  address = {debug:?}\n",
            root = root.display().to_string(),
            state = d.join("state").display().to_string(),
            grpc = d.join("containerd.sock").display().to_string(),
            ttrpc = d.join("containerd.sock.ttrpc").display().to_string(),
            debug = d.join("debug.sock").display().to_string(),
        );
        std::fs::write(d.join("config.toml"), config).expect("containerd config");
        let mut me = Self { dir, root: root.to_path_buf(), child: None };
        me.restart();
        me
    }

    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL it (a crash: shims and their containers keep running) and
    /// remove its socket, as after a reboot of the service.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Start it (again) on the same root and state; waits until it answers.
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("containerd.log"))
            .expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawning containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let socket = self.socket();
        while Instant::now() < deadline {
            let up = UnixStream::connect(&socket).is_ok()
                && Command::new("ctr")
                    .arg("--address")
                    .arg(&socket)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private containerd did not come up; its log:\n{}", self.log());
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        // Its shims outlive it: kill every task it knows so none is left.
        let socket = self.socket();
        for ns in Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["namespaces", "ls", "-q"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            remove_namespace_at(&socket, &ns);
        }
        self.kill();
        // A shim whose containerd died before telling it to shut down stays
        // on by itself, idle, for good.
        kill_shims_of(&socket);
        // Overlay mounts under its root would keep the tempdir from going.
        let root = &self.root;
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in mounts.lines() {
                if let Some(point) = line.split_whitespace().nth(4) {
                    if Path::new(point).starts_with(root) {
                        let _ = Command::new("umount").arg("-l").arg(point).status();
                    }
                }
            }
        }
    }
}

/// SIGKILL the shims started by the containerd at `socket` (their
/// `-address` names it).
fn kill_shims_of(socket: &Path) {
    for pid in shims_with("-address", socket.as_os_str().as_encoded_bytes()) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// PIDs of the `containerd-shim-runc-v2` processes started with `flag
/// value` (`-namespace NS`, `-address SOCKET`).
pub fn shims_with(flag: &str, value: &[u8]) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else { return vec![] };
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args.first().is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"));
        if is_shim && args.windows(2).any(|w| w[0] == flag.as_bytes() && w[1] == value) {
            pids.push(pid);
        }
    }
    pids
}
