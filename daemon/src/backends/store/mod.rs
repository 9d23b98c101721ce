//! Crash-safe metadata under the data-root.

pub mod containers;
pub mod networks;
pub mod volumes;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// The paths in a store directory; a store never written to has none.
fn entries(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(root) {
        Ok(dir) => Ok(dir.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// One JSON record as found at start-up.
enum Stored<T> {
    Record(T),
    /// No file: a create that crashed before its first write.
    Missing,
    /// There but unusable; already logged, so one bad file cannot stop the
    /// daemon.
    Unreadable,
}

fn read_record<T: DeserializeOwned>(path: &Path, kind: &str) -> Stored<T> {
    match std::fs::read(path).map(|b| serde_json::from_slice::<T>(&b)) {
        Ok(Ok(record)) => Stored::Record(record),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::Missing,
        Ok(Err(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable {kind} record");
            Stored::Unreadable
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read {kind} record");
            Stored::Unreadable
        }
    }
}

/// Write `data` to `path` so that a crash leaves either the old or the new
/// content, never a torn file: write a temporary file, fsync, rename, fsync
/// the directory.
pub fn atomic_write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let (tmp, mut file) = tempfile_in(dir, path)?;
    let written = file.write_all(data).and_then(|_| file.sync_all()).and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        // A full disk must not leave temporary files behind as well.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()
}

fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    Ok((tmp, file))
}

/// The daemon's stable identity, created on first start (dockerd's
/// `engine-id`): a UUID kept in `<data-root>/engine-id`.
pub fn engine_id(data_root: &Path) -> std::io::Result<String> {
    let path = data_root.join("engine-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Ok(_) => create_engine_id(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_engine_id(&path),
        Err(e) => Err(e),
    }
}

fn create_engine_id(path: &Path) -> std::io::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    atomic_write(path, id.as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = engine_id(dir.path()).unwrap();
        assert_eq!(first.len(), 36);
        assert_eq!(engine_id(dir.path()).unwrap(), first);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
