//! A containerd of our own, started and supervised when no system containerd
//! answers (as dockerd does), with its state under the exec-root.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{watch, Mutex};

use super::Containerd;

/// How long a freshly started containerd may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long containerd gets to exit on SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("failed to start containerd ({binary}): {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("failed to write containerd config {}: {source}", .path.display())]
    Config { path: PathBuf, source: std::io::Error },
    #[error("containerd did not answer on {} within {}s", .0.display(), START_TIMEOUT.as_secs())]
    Timeout(PathBuf),
}

/// True when a containerd answers on `socket`.
pub async fn answers(socket: &Path) -> bool {
    if tokio::net::UnixStream::connect(socket).await.is_err() {
        return false;
    }
    match Containerd::new(socket, "default") {
        Ok(c) => tokio::time::timeout(Duration::from_secs(3), c.version()).await.is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    }
}

/// Our own containerd process, restarted if it dies, stopped on shutdown.
pub struct ManagedContainerd {
    socket: PathBuf,
    child: Arc<Mutex<Option<Child>>>,
    stop: watch::Sender<bool>,
}

impl ManagedContainerd {
    pub async fn start(exec_root: &Path, data_root: &Path) -> Result<Self, SupervisorError> {
        let dir = exec_root.join("containerd");
        let socket = dir.join("containerd.sock");
        let config = dir.join("containerd.toml");
        let write = |path: &Path, text: String| {
            std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(path, text))
                .map_err(|source| SupervisorError::Config { path: path.to_path_buf(), source })
        };
        write(&config, config_toml(&dir, &data_root.join("containerd")))?;
        let child = spawn(&config, &dir)?;
        wait_until_answering(&socket).await?;
        tracing::info!(containerd.address = %socket.display(), "started managed containerd");
        let (stop, stopped) = watch::channel(false);
        let managed = Self { socket, child: Arc::new(Mutex::new(Some(child))), stop };
        tokio::spawn(supervise(managed.child.clone(), config, dir, stopped));
        Ok(managed)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// SIGTERM, then SIGKILL after the timeout.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let Some(mut child) = self.child.lock().await.take() else { return };
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) with a pid we spawned and still own.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
        tracing::info!("stopped managed containerd");
    }
}

fn config_toml(state_dir: &Path, root: &Path) -> String {
    format!(
        "version = 2\n\
         root = {root:?}\n\
         state = {state:?}\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = {grpc:?}\n\
         [ttrpc]\n  address = {ttrpc:?}\n\
         [debug]\n  address = {debug:?}\n",
        root = root.display().to_string(),
        state = state_dir.join("daemon").display().to_string(),
        grpc = state_dir.join("containerd.sock").display().to_string(),
        ttrpc = state_dir.join("containerd.sock.ttrpc").display().to_string(),
        debug = state_dir.join("containerd-debug.sock").display().to_string(),
    )
}

fn spawn(config: &Path, dir: &Path) -> Result<Child, SupervisorError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("containerd.log"))
        .map_err(|source| SupervisorError::Config { path: dir.join("containerd.log"), source })?;
    let stderr = log.try_clone().map_err(|source| SupervisorError::Config { path: dir.to_path_buf(), source })?;
    Command::new("containerd")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        // Its own process group: a ctrl-c on berthd's terminal must not
        // reach containerd before berthd has shut down cleanly.
        .process_group(0)
        .spawn()
        .map_err(|source| SupervisorError::Spawn { binary: "containerd".into(), source })
}

async fn wait_until_answering(socket: &Path) -> Result<(), SupervisorError> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let mut delay = Duration::from_millis(20);
    while tokio::time::Instant::now() < deadline {
        if answers(socket).await {
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    Err(SupervisorError::Timeout(socket.to_path_buf()))
}

/// Restart containerd when it exits without being asked to.
async fn supervise(
    child: Arc<Mutex<Option<Child>>>,
    config: PathBuf,
    dir: PathBuf,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let exited = async {
            loop {
                {
                    let mut guard = child.lock().await;
                    match guard.as_mut() {
                        Some(c) => {
                            if let Ok(Some(status)) = c.try_wait() {
                                return Some(status);
                            }
                        }
                        None => return None,
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let status = tokio::select! {
            s = exited => s,
            _ = stopped.changed() => return,
        };
        if *stopped.borrow() {
            return;
        }
        let Some(status) = status else { return };
        tracing::warn!(%status, "managed containerd exited; restarting it");
        tokio::time::sleep(Duration::from_secs(1)).await;
        match spawn(&config, &dir) {
            Ok(c) => *child.lock().await = Some(c),
            Err(e) => tracing::error!(error = %e, "could not restart containerd"),
        }
    }
}
