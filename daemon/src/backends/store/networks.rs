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
        Ok(super::entries(&self.root)?
            .into_iter()
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .filter_map(|path| match super::read_record(&path, "network") {
                super::Stored::Record(record) => Some(record),
                super::Stored::Missing | super::Stored::Unreadable => None,
            })
            .collect())
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
