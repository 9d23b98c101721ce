//! One berthd per test: its own temporary data-root, exec-root, socket,
//! pidfile and containerd namespace, on the shared containerd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::cli::{self, CmdOutput};
use crate::containerd;
use crate::netns::NetNs;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// How long a daemon may take to answer its first ping.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The berthd binary under test: `$BERTHD_BIN`, else the workspace's
/// `target/debug/berthd` (the test command builds it first).
pub fn berthd_binary() -> PathBuf {
    let path = std::env::var_os("BERTHD_BIN").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berthd")
    });
    assert!(
        path.exists(),
        "berthd binary missing at {}: run `cargo build -p berthd` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A unique, containerd-valid name for this test's objects.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// How to start a berthd.
#[derive(Debug, Clone, Default)]
pub struct BerthdBuilder {
    args: Vec<String>,
    daemon_json: Option<serde_json::Value>,
    env: Vec<(String, String)>,
    no_containerd_flag: bool,
    containerd: Option<PathBuf>,
    no_default_host: bool,
    wrapper: Vec<String>,
    network: Network,
    activation: Option<Activation>,
}

/// Sockets handed to the daemon the way systemd does it: as fds 3.., with
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` set.
#[derive(Debug, Clone)]
struct Activation {
    fds: Arc<Vec<std::os::fd::OwnedFd>>,
    names: String,
}

/// Where a test daemon's network lives.
#[derive(Debug, Clone, Default)]
enum Network {
    /// A network namespace of its own (the default): the daemon's bridges,
    /// iptables rules and ports are private to the test.
    #[default]
    Own,
    /// Another daemon's namespace: a successor on the same state.
    Shared(Arc<NetNs>),
    /// The host's, for tests whose clients reach the daemon over TCP; the
    /// default bridge and iptables are off so the host is left alone.
    Host,
}

impl BerthdBuilder {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Write this as the daemon's `--config-file`.
    pub fn daemon_json(mut self, value: serde_json::Value) -> Self {
        self.daemon_json = Some(value);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Leave `--containerd` unset, so berthd picks or starts containerd itself.
    pub fn without_containerd_flag(mut self) -> Self {
        self.no_containerd_flag = true;
        self
    }

    /// Use the containerd at `socket` (a test's private one) instead of
    /// the shared one.
    pub fn containerd(mut self, socket: &Path) -> Self {
        self.containerd = Some(socket.to_path_buf());
        self
    }

    /// Do not pass `-H unix://<test socket>` (the test passes its own hosts).
    pub fn without_default_host(mut self) -> Self {
        self.no_default_host = true;
        self
    }

    /// Run berthd under a wrapper command, e.g. `unshare -m sh -c '...'`.
    pub fn wrapped_in<I: IntoIterator<Item = S>, S: Into<String>>(mut self, wrapper: I) -> Self {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// Play systemd's part in socket activation: `sockets` become the
    /// daemon's fds 3, 4, ... named `names` (colon-separated).
    pub fn systemd_sockets(mut self, sockets: Vec<std::os::fd::OwnedFd>, names: &str) -> Self {
        use std::os::fd::{AsRawFd, FromRawFd};
        // Copies above the range they will be moved to, so that moving one
        // never overwrites another.
        let fds = sockets
            .iter()
            .map(|s| {
                // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we own, or -1.
                let fd = unsafe { libc::fcntl(s.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 64) };
                assert!(fd >= 0, "dup: {}", std::io::Error::last_os_error());
                // SAFETY: fd is a fresh descriptor owned by no one else.
                unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
            })
            .collect();
        self.activation = Some(Activation { fds: Arc::new(fds), names: names.to_string() });
        self
    }

    /// Run in the host's network namespace (for TCP listeners the test
    /// reaches from outside), with `--bridge none --iptables=false`.
    pub fn host_network(mut self) -> Self {
        self.network = Network::Host;
        self
    }

    /// Run in `other`'s network namespace, e.g. a successor daemon on the
    /// same data-root whose containers kept running.
    pub fn same_network_as(mut self, other: &Berthd) -> Self {
        if let Some(ns) = &other.netns {
            self.network = Network::Shared(ns.clone());
        }
        self
    }

    /// Start the daemon and wait until it answers on its socket.
    #[track_caller]
    pub fn start(self) -> Berthd {
        let mut daemon = self.spawn();
        daemon.wait_ready();
        daemon
    }

    /// Start the daemon and load `busybox:latest` (busybox-static) into it.
    #[track_caller]
    pub fn start_with_busybox(self) -> Berthd {
        let daemon = self.start();
        let archive = crate::images::BusyboxImage::new("busybox:latest")
            .build()
            .and_then(|i| i.docker_archive())
            .unwrap_or_else(|e| panic!("building the busybox image: {e:#}"));
        daemon.docker_stdin(&["load"], &archive).success();
        daemon
    }

    /// Run berthd expecting it to exit by itself (`--validate`, `-v`, or a
    /// refused start); returns what it printed.
    #[track_caller]
    pub fn run_to_exit(self) -> CmdOutput {
        let mut daemon = self.spawn();
        let deadline = Instant::now() + START_TIMEOUT;
        let child = daemon.child.as_mut().expect("child");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                daemon.child = None;
                return CmdOutput { stdout: String::new(), stderr: daemon.log(), code: status.code().unwrap_or(-1) };
            }
            assert!(Instant::now() < deadline, "berthd did not exit; log:\n{}", daemon.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start without waiting.
    pub fn spawn(self) -> Berthd {
        if self.containerd.is_none() {
            containerd::ensure_running();
        }
        let containerd_socket = self.containerd.clone().unwrap_or_else(|| PathBuf::from(containerd::SOCKET));
        let dir = tempfile::Builder::new().prefix("berth-").tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let namespace = unique_name("berth-test");
        let netns = match &self.network {
            Network::Own => Some(Arc::new(NetNs::create(&unique_name("berth-net")))),
            Network::Shared(ns) => Some(ns.clone()),
            Network::Host => None,
        };
        let mut daemon = Berthd {
            netns,
            socket: root.join("berthd.sock"),
            data_root: root.join("data"),
            exec_root: root.join("exec"),
            pidfile: root.join("berthd.pid"),
            config_file: root.join("daemon.json"),
            log_path: root.join("berthd.log"),
            docker_config: root.join("docker-config"),
            namespace,
            containerd: containerd_socket.clone(),
            child: None,
            dir,
        };
        std::fs::create_dir_all(&daemon.docker_config).expect("docker config dir");
        link_cli_plugins(&daemon.docker_config);
        let json = self.daemon_json.clone().unwrap_or_else(|| serde_json::json!({}));
        std::fs::write(&daemon.config_file, serde_json::to_vec_pretty(&json).expect("json")).expect("daemon.json");
        let mut args: Vec<String> = vec![
            "--config-file".into(),
            daemon.config_file.display().to_string(),
            "--data-root".into(),
            daemon.data_root.display().to_string(),
            "--exec-root".into(),
            daemon.exec_root.display().to_string(),
            "--pidfile".into(),
            daemon.pidfile.display().to_string(),
            "--containerd-namespace".into(),
            daemon.namespace.clone(),
        ];
        if !self.no_containerd_flag {
            args.extend(["--containerd".into(), containerd_socket.display().to_string()]);
        }
        if !self.no_default_host {
            args.extend(["-H".into(), format!("unix://{}", daemon.socket.display())]);
        }
        if matches!(self.network, Network::Host) {
            args.extend(["--bridge".into(), "none".into(), "--iptables=false".into()]);
        }
        args.extend(self.args.iter().cloned());
        // A test's own `-H unix://PATH` (with `without_default_host`) is
        // where the daemon is reached.
        if self.no_default_host {
            if let Some(path) = args.windows(2).rev().find_map(|w| (w[0] == "-H").then(|| w[1].strip_prefix("unix://")).flatten()) {
                daemon.socket = PathBuf::from(path);
            }
        }
        // The last of a flag wins, as in berthd: a test's own data-root
        // (e.g. on a small filesystem), exec-root and namespace (a
        // successor's) are what checks and cleanup must use.
        let last = |flag: &str| args.iter().rposition(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        if let Some(root) = last("--data-root") {
            daemon.data_root = PathBuf::from(root);
        }
        if let Some(root) = last("--exec-root") {
            daemon.exec_root = PathBuf::from(root);
        }
        if let Some(namespace) = last("--containerd-namespace") {
            daemon.namespace = namespace;
        }
        let log = std::fs::File::create(&daemon.log_path).expect("log file");
        let mut program: Vec<String> =
            daemon.netns.as_ref().map(|ns| ns.enter_args()).unwrap_or_default();
        program.extend(self.wrapper.iter().cloned());
        if let Some(a) = &self.activation {
            // The shell's PID is the daemon's once it execs.
            program.extend([
                "sh".into(),
                "-c".into(),
                format!("LISTEN_PID=$$ LISTEN_FDS={} LISTEN_FDNAMES={} exec \"$@\"", a.fds.len(), a.names),
                "sh".into(),
            ]);
        }
        let mut cmd = if program.is_empty() {
            Command::new(berthd_binary())
        } else {
            let mut c = Command::new(&program[0]);
            c.args(&program[1..]).arg(berthd_binary());
            c
        };
        cmd.args(&args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        if let Some(a) = &self.activation {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let raw: Vec<i32> = a.fds.iter().map(|f| f.as_raw_fd()).collect();
            // SAFETY: only dup2 (async-signal-safe) runs between fork and exec;
            // dup2 clears close-on-exec on the copy.
            unsafe {
                cmd.pre_exec(move || {
                    for (i, fd) in raw.iter().enumerate() {
                        if libc::dup2(*fd, 3 + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning berthd: {e}"));
        daemon.child = Some(child);
        daemon
    }
}

/// Share the machine's CLI plugins (compose) with the isolated config dir.
pub fn link_cli_plugins(config_dir: &Path) {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
    let plugins = home.join(".docker/cli-plugins");
    if plugins.is_dir() {
        let _ = std::os::unix::fs::symlink(plugins, config_dir.join("cli-plugins"));
    }
}

/// A running berthd. Stopped, and its namespace emptied, on drop; its log is
/// printed if the test is failing.
pub struct Berthd {
    dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub config_file: PathBuf,
    pub namespace: String,
    /// The containerd it runs on.
    pub containerd: PathBuf,
    log_path: PathBuf,
    docker_config: PathBuf,
    child: Option<Child>,
    /// Dropped after the daemon stopped (fields drop after `Drop::drop`).
    netns: Option<Arc<NetNs>>,
}

impl Berthd {
    pub fn builder() -> BerthdBuilder {
        BerthdBuilder::default()
    }

    /// A daemon with the default test settings.
    #[track_caller]
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A daemon with `busybox:latest` (busybox-static) loaded.
    #[track_caller]
    pub fn start_with_busybox() -> Self {
        Self::builder().start_with_busybox()
    }

    /// A second daemon on this one's data-root, exec-root, containerd
    /// namespace and network namespace (a restart), with `daemon_json`.
    #[track_caller]
    pub fn successor(&self, daemon_json: serde_json::Value) -> Berthd {
        Self::builder()
            .same_network_as(self)
            .containerd(&self.containerd)
            .daemon_json(daemon_json)
            .args(["--data-root", &self.data_root.display().to_string()])
            .args(["--exec-root", &self.exec_root.display().to_string()])
            .args(["--containerd-namespace", &self.namespace])
            .start()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> CmdOutput {
        cli::docker(&self.host(), &self.docker_config, args, None)
    }

    /// `docker inspect -f FORMAT NAME`, trimmed; panics if it fails.
    #[track_caller]
    pub fn inspect_format(&self, format: &str, name: &str) -> String {
        self.docker(&["inspect", "-f", format, name]).success().stdout.trim().to_string()
    }

    /// `docker ARGS` with `input` on stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> CmdOutput {
        cli::docker(&self.host(), &self.docker_config, args, Some(input))
    }

    /// `docker ARGS` in a pseudo-terminal of `rows` x `cols`.
    pub fn docker_pty(&self, args: &[&str], rows: u16, cols: u16) -> crate::pty::Terminal {
        crate::pty::Terminal::spawn(cli::docker_command(&self.host(), &self.docker_config, args), rows, cols)
    }

    /// `docker ARGS` against another host of this daemon (tcp, TLS).
    pub fn docker_at(&self, host: &str, args: &[&str]) -> CmdOutput {
        cli::docker(host, &self.docker_config, args, None)
    }

    /// A bollard client on this daemon's socket.
    pub fn client(&self) -> bollard::Docker {
        crate::client::connect(&self.socket)
    }

    /// The daemon's network namespace (`None` with `host_network`).
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_deref()
    }

    /// Run a command (from the host's filesystem, e.g. `busybox wget`) in
    /// the daemon's network namespace: where its bridges and published
    /// ports are, as the host sees them under dockerd.
    pub fn in_netns(&self, args: &[&str]) -> CmdOutput {
        match &self.netns {
            Some(ns) => ns.run(args),
            None => {
                let mut cmd = Command::new(args[0]);
                cmd.args(&args[1..]);
                cli::run_piped(cmd, None)
            }
        }
    }

    /// Make the host's `127.0.0.1:port` (a registry the test started)
    /// reachable at the same address inside the daemon's namespace.
    pub fn reach_host_port(&self, port: u16) {
        if let Some(ns) = &self.netns {
            ns.forward_host_port(port);
        }
    }

    /// Raw HTTP on the socket, for status lines and headers.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> crate::client::RawResponse {
        crate::client::raw_request(&self.socket, method, path, &[], body)
    }

    #[track_caller]
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("berthd exited during start-up ({status}); log:\n{}", self.log());
            }
            if self.socket.exists() {
                if let Ok(resp) = crate::client::try_raw_request(&self.socket, "GET", "/_ping", &[], None) {
                    if resp.status == 200 {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "berthd did not answer within {START_TIMEOUT:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Send a signal without waiting.
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: as in `stop`.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- berthd log ({}) ----\n{}", self.namespace, self.log());
        }
        // Containers left running would make a clean stop wait for each
        // one's stop timeout; the test is over, so kill them first.
        containerd::kill_tasks_at(&self.containerd, &self.namespace);
        self.stop();
        containerd::remove_namespace_at(&self.containerd, &self.namespace);
        // A daemon killed (or one whose containers kept a namespace) leaves
        // mounts in its directory: they would outlive the test, and every
        // mount the host keeps slows the next overlay mount down.
        unmount_under(self.dir.path());
    }
}

/// Detach every mount at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut points: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let Ok(c) = std::ffi::CString::new(point) else { continue };
        // SAFETY: a valid NUL-terminated path that outlives the call.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}
