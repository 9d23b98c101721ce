//! Container metadata on disk: one JSON document per container under
//! `<data-root>/containers/<id>/config.v2.json`, written crash-safely.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

const FILE: &str = "config.v2.json";

#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: PathBuf,
}

impl ContainerStore {
    pub fn new(data_root: &Path) -> Self {
        Self { root: data_root.join("containers") }
    }

    /// The container's own directory (logs, hosts files live there too).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn save<T: Serialize>(&self, id: &str, record: &T) -> std::io::Result<()> {
        let data = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        super::atomic_write(&self.dir(id).join(FILE), &data)
    }

    /// Every stored record; unreadable ones are reported and skipped so one
    /// corrupt file cannot stop the daemon.
    pub fn load_all<T: DeserializeOwned>(&self) -> std::io::Result<Vec<T>> {
        let mut records = Vec::new();
        for dir in super::entries(&self.root)? {
            match super::read_record(&dir.join(FILE), "container") {
                super::Stored::Record(record) => records.push(record),
                // A create that crashed before its first write: nothing to keep.
                super::Stored::Missing => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                super::Stored::Unreadable => {}
            }
        }
        Ok(records)
    }

    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.dir(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(dir.path());
        store.save("abc", &serde_json::json!({"Id": "abc"})).unwrap();
        std::fs::create_dir_all(store.dir("crashed")).unwrap();
        let all: Vec<serde_json::Value> = store.load_all().unwrap();
        assert_eq!(all, vec![serde_json::json!({"Id": "abc"})]);
        assert!(!store.dir("crashed").exists());
        store.remove("abc").unwrap();
        assert!(store.load_all::<serde_json::Value>().unwrap().is_empty());
    }
}
