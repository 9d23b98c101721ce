//! The PID file: refuse to start while another live process holds it,
//! replace a stale one, remove ours on shutdown.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("failed to start daemon, ensure docker is not running or delete {}: process with PID {pid} is still running", .path.display())]
    Running { path: PathBuf, pid: i32 },
    #[error("failed to write pid file {}: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<Self, PidFileError> {
        if let Some(pid) = read_live_pid(path) {
            return Err(PidFileError::Running { path: path.to_path_buf(), pid });
        }
        let write_err = |source| PidFileError::Write { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        crate::backends::store::atomic_write(path, std::process::id().to_string().as_bytes())
            .map_err(write_err)?;
        Ok(Self { path: path.to_path_buf() })
    }

    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The PID in the file, if that process is alive and is not us.
fn read_live_pid(path: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if pid <= 0 || pid as u32 == std::process::id() {
        return None;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_pid_refuses_and_stale_pid_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pid");
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&path, child.id().to_string()).unwrap();
        let err = PidFile::create(&path).err().unwrap();
        assert!(err.to_string().contains("is still running"), "{err}");
        child.kill().unwrap();
        child.wait().unwrap();
        let pidfile = PidFile::create(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), std::process::id().to_string());
        pidfile.remove();
        assert!(!path.exists());
        std::fs::write(&path, "garbage").unwrap();
        assert!(PidFile::create(&path).is_ok());
    }
}
