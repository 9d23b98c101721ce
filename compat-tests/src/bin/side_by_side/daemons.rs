//! The two daemons under comparison, each in its own network namespace, and
//! the guards that take everything down again (also on panic).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use compat_tests::berthd::unique_name;
use compat_tests::{containerd, Berthd};

/// Where dockerd comes from (Debian's `docker.io`).
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// `ip netns add NAME` with loopback up; `ip netns del` on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns> {
        run_checked(Command::new("ip").args(["netns", "add", name]))?;
        let netns = Netns { name: name.to_owned() };
        run_checked(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        Ok(netns)
    }

    /// `/var/run/netns/NAME`, for `nsenter --net=` and `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `cmd`, failing with its stderr when it fails.
pub fn run_checked(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Berthd,
    Dockerd,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Berthd => "berthd",
            Kind::Dockerd => "dockerd",
        }
    }
}

/// The reference dockerd: temporary data-root, exec-root, socket, pidfile,
/// containerd namespaces; its default bridge and iptables rules live in its
/// own network namespace, as berthd's do.
struct Dockerd {
    dir: tempfile::TempDir,
    netns: PathBuf,
    socket: PathBuf,
    namespace: String,
    plugins_namespace: String,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Dockerd {
    fn spawn(netns: &Netns) -> Result<Dockerd> {
        ensure!(
            Path::new(DOCKERD).is_file(),
            "{DOCKERD} is missing: install Debian's docker.io (scripts/setup.sh --bench does)"
        );
        let dir = tempfile::Builder::new().prefix("berth-bench-dockerd-").tempdir()?;
        let root = dir.path();
        let namespace = unique_name("berth-bench-dockerd");
        let plugins_namespace = format!("{namespace}-plugins");
        std::fs::write(root.join("daemon.json"), serde_json::to_vec_pretty(&daemon_json())?)?;
        let mut dockerd = Dockerd {
            socket: root.join("docker.sock"),
            log_path: root.join("dockerd.log"),
            netns: netns.path(),
            dir,
            namespace,
            plugins_namespace,
            child: None,
        };
        dockerd.launch()?;
        Ok(dockerd)
    }

    /// Starts dockerd on this instance's directories (again, after a stop).
    fn launch(&mut self) -> Result<()> {
        let root = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns.display()))
            .arg(DOCKERD)
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--containerd", containerd::SOCKET])
            .args(["--containerd-namespace", &self.namespace])
            .args(["--containerd-plugins-namespace", &self.plugins_namespace])
            .args(["--ip6tables=false"])
            .args(["--shutdown-timeout", "2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().context("spawning dockerd under nsenter")?);
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("dockerd exited during start-up ({status}); log:\n{}", self.log());
            }
            if self.socket.exists() {
                if let Ok(resp) = compat_tests::client::try_raw_request(&self.socket, "GET", "/_ping", &[], None) {
                    if resp.status == 200 {
                        return Ok(());
                    }
                }
            }
            ensure!(Instant::now() < deadline, "dockerd did not answer within 60s; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("dockerd did not stop within 40s; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
        containerd::remove_namespace(&self.namespace);
        containerd::remove_namespace(&self.plugins_namespace);
        unmount_under(self.dir.path());
    }
}

enum Inner {
    /// The running berthd, and the stopped ones it succeeded (they own the
    /// data-root's temp dir, so they go last).
    Berthd(Box<Berthd>, Vec<Berthd>),
    Dockerd(Dockerd),
}

/// One daemon under test. Field order is drop order: daemon, then its
/// network namespace, then the client config.
pub struct Daemon {
    inner: Inner,
    _sweep: NamespaceSweep,
    netns: Netns,
    client_config: tempfile::TempDir,
    pub kind: Kind,
    pub socket: PathBuf,
    pub pid: u32,
    /// Wall time from spawn to the first 200 on `/_ping`.
    pub startup: Duration,
}

impl Daemon {
    pub fn start(kind: Kind) -> Result<Daemon> {
        let netns = Netns::create(&unique_name(&format!("berth-bench-{}", kind.label())))?;
        let client_config = tempfile::Builder::new().prefix("berth-bench-cli-").tempdir()?;
        compat_tests::berthd::link_cli_plugins(client_config.path());
        let started = Instant::now();
        let (inner, socket, pid, namespaces) = match kind {
            Kind::Berthd => {
                let nsenter = format!("--net={}", netns.path().display());
                let berthd = Berthd::builder()
                    .wrapped_in(["nsenter", nsenter.as_str()])
                    .daemon_json(daemon_json())
                    .start();
                let pid = berthd.pid().context("berthd has no pid")?;
                let socket = berthd.socket.clone();
                let namespaces = vec![berthd.namespace.clone()];
                (Inner::Berthd(Box::new(berthd), Vec::new()), socket, pid, namespaces)
            }
            Kind::Dockerd => {
                let mut dockerd = Dockerd::spawn(&netns)?;
                dockerd.wait_ready()?;
                let pid = dockerd.child.as_ref().map(Child::id).context("dockerd has no pid")?;
                let socket = dockerd.socket.clone();
                let namespaces = vec![dockerd.namespace.clone(), dockerd.plugins_namespace.clone()];
                (Inner::Dockerd(dockerd), socket, pid, namespaces)
            }
        };
        let startup = started.elapsed();
        Ok(Daemon { inner, _sweep: NamespaceSweep(namespaces), netns, client_config, kind, socket, pid, startup })
    }

    pub fn label(&self) -> &'static str {
        self.kind.label()
    }

    pub fn netns_path(&self) -> PathBuf {
        self.netns.path()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log(&self) -> String {
        match &self.inner {
            Inner::Berthd(b, _) => b.log(),
            Inner::Dockerd(d) => d.log(),
        }
    }

    /// The stock CLI bound to this daemon, with an isolated client config.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(compat_tests::cli::docker_binary());
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.client_config.path())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        cmd
    }

    /// `docker ARGS`; stdout on success, the error with stderr otherwise.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        let out = self.checked(args, self.docker_command(args).stdin(Stdio::null()).output()?)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `docker ARGS` with stdout thrown away (saves, big listings).
    pub fn docker_discard(&self, args: &[&str]) -> Result<()> {
        let mut cmd = self.docker_command(args);
        cmd.stdout(Stdio::null());
        self.checked(args, cmd.stdin(Stdio::null()).stderr(Stdio::piped()).output()?)?;
        Ok(())
    }

    /// `docker ARGS < file`.
    pub fn docker_stdin_file(&self, args: &[&str], file: &Path) -> Result<()> {
        let mut cmd = self.docker_command(args);
        let input = std::fs::File::open(file)?;
        self.checked(args, cmd.stdin(input).stdout(Stdio::null()).stderr(Stdio::piped()).output()?)?;
        Ok(())
    }

    /// `out` of `docker ARGS` if it succeeded, else the error with its stderr.
    pub fn checked(&self, args: &[&str], out: Output) -> Result<Output> {
        ensure!(
            out.status.success(),
            "docker {} on {} failed ({}): {}",
            args.join(" "),
            self.label(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(out)
    }

    pub fn client(&self) -> bollard::Docker {
        compat_tests::client::connect(&self.socket)
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }

    /// PSS (KiB) of the processes the daemon keeps per container beside
    /// containerd's shims: berthd's log copiers (their command line names
    /// a config under the daemon's directory). dockerd has none.
    pub fn helpers_pss_kib(&self) -> Result<u64> {
        let Inner::Berthd(berthd, _) = &self.inner else { return Ok(0) };
        let dir = berthd.dir().display().to_string();
        let mut total = 0;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let path = entry.path();
            let Ok(cmdline) = std::fs::read(path.join("cmdline")) else { continue };
            let cmdline = String::from_utf8_lossy(&cmdline);
            if !(cmdline.contains("log-copier") && cmdline.contains(&dir)) {
                continue;
            }
            let Ok(rollup) = std::fs::read_to_string(path.join("smaps_rollup")) else { continue };
            total += rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// utime + stime of the daemon process (all threads) and of the
    /// children it has waited for (dockerd unpacks `docker cp` archives in
    /// a child; both daemons run iptables and the like), in ms.
    pub fn cpu_ms(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("bad /proc/PID/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state); utime is field 14, stime 15,
        // cutime 16, cstime 17.
        let mut ticks_used = 0.0;
        for (i, name) in [(11, "utime"), (12, "stime"), (13, "cutime"), (14, "cstime")] {
            ticks_used += fields.get(i).with_context(|| format!("no {name}"))?.parse::<f64>()?;
        }
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Ok(ticks_used * 1000.0 / ticks)
    }

    /// Checks the daemon is still alive (a crash under load is a finding).
    pub fn ensure_alive(&self) -> Result<()> {
        ensure!(
            Path::new(&format!("/proc/{}", self.pid)).exists(),
            "{} (pid {}) is gone; log tail:\n{}",
            self.label(),
            self.pid,
            tail(&self.log(), 30)
        );
        Ok(())
    }
}

impl Daemon {
    /// Stops the daemon (SIGTERM; with live-restore its containers keep
    /// running) and starts it again on the same data; the time from spawn to
    /// the first 200 on `/_ping`.
    pub fn restart(&mut self) -> Result<Duration> {
        let netns = self.netns.path();
        let (started, pid) = match &mut self.inner {
            Inner::Berthd(current, previous) => {
                current.stop();
                let nsenter = format!("--net={}", netns.display());
                let started = Instant::now();
                let next = Berthd::builder()
                    .wrapped_in(["nsenter", nsenter.as_str()])
                    .daemon_json(daemon_json())
                    .args(["--data-root", &current.data_root.display().to_string()])
                    .args(["--exec-root", &current.exec_root.display().to_string()])
                    .args(["--containerd-namespace", &current.namespace])
                    .start();
                let pid = next.pid().context("berthd has no pid")?;
                self.socket = next.socket.clone();
                previous.push(std::mem::replace(&mut **current, next));
                (started, pid)
            }
            Inner::Dockerd(d) => {
                d.stop();
                let started = Instant::now();
                d.launch()?;
                d.wait_ready()?;
                (started, d.child.as_ref().map(Child::id).context("dockerd has no pid")?)
            }
        };
        let elapsed = started.elapsed();
        self.pid = pid;
        Ok(elapsed)
    }
}

/// Both daemons keep containers running across their own restarts, so the
/// start-up with running containers can be measured.
fn daemon_json() -> serde_json::Value {
    serde_json::json!({ "live-restore": true })
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Inner::Berthd(b, previous) = &mut self.inner {
            b.stop();
            for p in previous.iter().chain([&**b]) {
                unmount_under(p.dir());
            }
        }
    }
}

/// Makes sure the daemon's containerd namespaces are gone: containerd
/// refuses to remove a namespace while its GC still holds objects in it, so
/// the daemon guards' one attempt can fail; retry for a few seconds.
struct NamespaceSweep(Vec<String>);

impl Drop for NamespaceSweep {
    fn drop(&mut self) {
        for namespace in &self.0 {
            for _ in 0..20 {
                let listed = Command::new("ctr")
                    .args(["--address", containerd::SOCKET, "namespaces", "ls", "-q"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == namespace))
                    .unwrap_or(false);
                if !listed {
                    break;
                }
                containerd::remove_namespace(namespace);
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Lazily unmounts whatever a daemon left mounted under `dir`, deepest
/// first, so the temp dir can be removed.
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).stderr(Stdio::null()).status();
    }
}

/// Runs `f` on a fresh thread that has joined the network namespace at
/// `netns` (children it spawns are born there too).
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let file = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        ensure!(rc == 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}
