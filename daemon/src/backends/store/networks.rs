//! Network metadata on disk: one JSON document per network under
//! `<data-root>/networks/<id>.json`, written crash-safely.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, Clone)]
pub struct NetworkStore {
    root: PathBuf,
}

impl NetworkStore {
    pub fn new(data_root: &Path) -> Self {
        Self { root: data_root.join("networks") }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.json"))
    }

    pub fn save<T: Serialize>(&self, id: &str, record: &T) -> std::io::Result<()> {
        let data = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        super::atomic_write(&self.path(id), &data)
    }

    /// Every stored record; unreadable ones are reported and skipped.
    pub fn load_all<T: DeserializeOwned>(&self) -> std::io::Result<Vec<T>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path).map(|b| serde_json::from_slice::<T>(&b)) {
                Ok(Ok(record)) => records.push(record),
                Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "skipping unreadable network record"),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping network record"),
            }
        }
        Ok(records)
    }

    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
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
        let store = NetworkStore::new(dir.path());
        store.save("abc", &serde_json::json!({"Id": "abc"})).unwrap();
        let all: Vec<serde_json::Value> = store.load_all().unwrap();
        assert_eq!(all, vec![serde_json::json!({"Id": "abc"})]);
        store.remove("abc").unwrap();
        store.remove("abc").unwrap();
        assert!(store.load_all::<serde_json::Value>().unwrap().is_empty());
    }
}
