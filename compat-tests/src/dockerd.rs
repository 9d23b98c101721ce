//! The reference dockerd (Debian's docker.io, `scripts/setup.sh --tests`
//! installs it) for cross-checks: its own data-root, exec-root, socket and
//! containerd namespaces, no bridge and no iptables, so it touches nothing
//! of the host's and runs beside other tests. Missing, it fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::berthd::unique_name;
use crate::cli::CmdOutput;
use crate::containerd;

pub const DOCKERD: &str = "/usr/sbin/dockerd";

pub struct ReferenceDockerd {
    dir: tempfile::TempDir,
    data_root: PathBuf,
    socket: PathBuf,
    namespace: String,
    child: Option<Child>,
}

impl ReferenceDockerd {
    /// Start it and wait until it answers `/_ping`.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_on(None)
    }

    /// Start it on `data_root` (kept when it stops: a later one can take it
    /// over), or on a data-root of its own.
    #[track_caller]
    pub fn start_on(data_root: Option<&Path>) -> Self {
        assert!(
            Path::new(DOCKERD).is_file(),
            "{DOCKERD} is missing: install Debian's docker.io (scripts/setup.sh --tests does)"
        );
        let dir = tempfile::Builder::new().prefix("berth-ref-").tempdir().expect("temporary directory");
        let root = dir.path();
        let namespace = unique_name("berth-ref");
        std::fs::write(root.join("daemon.json"), b"{}\n").unwrap();
        let log = std::fs::File::create(root.join("dockerd.log")).unwrap();
        let socket = root.join("docker.sock");
        let data_root = data_root.map(Path::to_path_buf).unwrap_or_else(|| root.join("data"));
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--containerd", containerd::SOCKET])
            .args(["--containerd-namespace", &namespace])
            .args(["--containerd-plugins-namespace", &format!("{namespace}-plugins")])
            .args(["--bridge", "none", "--iptables=false", "--ip-masq=false", "--shutdown-timeout", "2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {DOCKERD}: {e}"));
        let mut daemon = ReferenceDockerd { dir, data_root, socket, namespace, child: Some(child) };
        daemon.wait_ready();
        daemon
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("dockerd exited during start-up ({status}); log:\n{}", self.log());
            }
            if self.socket.exists() {
                if let Ok(resp) = crate::client::try_raw_request(&self.socket, "GET", "/_ping", &[], None) {
                    if resp.status == 200 {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "dockerd did not answer within 60s; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn docker(&self, args: &[&str]) -> CmdOutput {
        crate::cli::docker(&self.host(), self.dir.path(), args, None)
    }

    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> CmdOutput {
        crate::cli::docker(&self.host(), self.dir.path(), args, Some(input))
    }
}

impl Drop for ReferenceDockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling a child we spawned and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        containerd::remove_namespace(&self.namespace);
        containerd::remove_namespace(&format!("{}-plugins", self.namespace));
    }
}
