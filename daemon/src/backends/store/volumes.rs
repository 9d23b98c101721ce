//! Volume metadata and data on disk, laid out as dockerd's `local` driver
//! does: `<data-root>/volumes/<name>/_data`, with our record beside it in
//! `<name>/volume.json`, written crash-safely before the data directory.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

const FILE: &str = "volume.json";
const DATA: &str = "_data";

#[derive(Debug, Clone)]
pub struct VolumeStore {
    root: PathBuf,
}

/// One volume found on disk. `record` is `None` for a directory with data
/// but no record of ours (for example one left by dockerd).
pub struct StoredVolume<T> {
    pub name: String,
    pub record: Option<T>,
    pub modified: Option<std::time::SystemTime>,
}

impl VolumeStore {
    pub fn new(data_root: &Path) -> Self {
        Self { root: data_root.join("volumes") }
    }

    /// The directory a container mounts.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join(DATA)
    }

    /// Record first, then the (empty) data directory; an existing data
    /// directory is kept.
    pub fn create<T: Serialize>(&self, name: &str, record: &T) -> std::io::Result<()> {
        let data = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        super::atomic_write(&self.root.join(name).join(FILE), &data)?;
        let path = self.data_path(name);
        std::fs::create_dir_all(&path)?;
        Ok(())
    }

    /// Every volume on disk; unreadable records are reported and the volume
    /// kept with default metadata, and leftovers of interrupted creates and
    /// removals are cleaned up.
    pub fn load_all<T: DeserializeOwned>(&self) -> std::io::Result<Vec<StoredVolume<T>>> {
        let mut volumes = Vec::new();
        for path in super::entries(&self.root)? {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !path.is_dir() {
                continue;
            }
            if name.starts_with('.') {
                // A removal that was interrupted after its rename.
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            let data = path.join(DATA);
            // An unreadable record keeps the volume, with default metadata.
            let record = match super::read_record(&path.join(FILE), "volume") {
                super::Stored::Record(r) => Some(r),
                super::Stored::Missing if !data.exists() => {
                    // A create that crashed before its record was written.
                    let _ = std::fs::remove_dir_all(&path);
                    continue;
                }
                super::Stored::Missing | super::Stored::Unreadable => None,
            };
            if !data.exists() {
                std::fs::create_dir_all(&data)?;
            }
            let modified = std::fs::metadata(&data).and_then(|m| m.modified()).ok();
            volumes.push(StoredVolume { name, record, modified });
        }
        Ok(volumes)
    }

    /// Take the volume out of sight in one rename, so a crash never leaves
    /// half a volume, then delete it. Blocking: call off the async runtime.
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        let dir = self.root.join(name);
        let doomed = self.root.join(format!(".{name}.{}.removing", uuid::Uuid::new_v4().simple()));
        match std::fs::rename(&dir, &doomed) {
            Ok(()) => std::fs::remove_dir_all(&doomed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Bytes used by the volume's data (apparent sizes, links not followed).
    /// Blocking: call off the async runtime.
    pub fn size(&self, name: &str) -> u64 {
        dir_size(&self.data_path(name))
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path());
        store.create("vol", &serde_json::json!({"Name": "vol"})).unwrap();
        std::fs::write(store.data_path("vol").join("f"), b"12345").unwrap();
        // dockerd's layout without our record, and a crashed create.
        std::fs::create_dir_all(store.data_path("fromdockerd")).unwrap();
        std::fs::create_dir_all(dir.path().join("volumes/crashed")).unwrap();
        let mut all: Vec<StoredVolume<serde_json::Value>> = store.load_all().unwrap();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["fromdockerd", "vol"]);
        assert!(all[0].record.is_none() && all[1].record.is_some());
        assert!(!dir.path().join("volumes/crashed").exists());
        assert_eq!(store.size("vol"), 5);
        store.remove("vol").unwrap();
        assert!(!dir.path().join("volumes/vol").exists());
        assert_eq!(std::fs::read_dir(dir.path().join("volumes")).unwrap().count(), 1);
    }
}
