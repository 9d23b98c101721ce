//! Snapshots: the layers of unpacked images (committed, named by chain ID)
//! and the writable layers prepared on top of them.

use std::collections::HashMap;

use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, CommitSnapshotRequest, Kind, ListSnapshotsRequest,
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest, UsageRequest,
    ViewSnapshotRequest,
};
use containerd_client::types::Mount as ProtoMount;

use super::{Containerd, ContainerdError, ErrorKind, Mount};

/// Set on snapshots the unpacker creates: the chain ID it will commit as.
pub const LABEL_SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    View,
    Active,
    Committed,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub parent: String,
    pub kind: SnapshotKind,
    pub labels: HashMap<String, String>,
}

/// Disk use of one snapshot (its own layer only, not its parents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotUsage {
    pub size: i64,
    pub inodes: i64,
}

pub(super) fn mounts_from_proto(mounts: Vec<ProtoMount>) -> Vec<Mount> {
    mounts.into_iter().map(|m| Mount { kind: m.r#type, source: m.source, options: m.options }).collect()
}

pub(super) fn mounts_to_proto(mounts: &[Mount]) -> Vec<ProtoMount> {
    mounts
        .iter()
        .map(|m| ProtoMount { r#type: m.kind.clone(), source: m.source.clone(), options: m.options.clone(), ..Default::default() })
        .collect()
}

fn kind_from_proto(kind: i32) -> SnapshotKind {
    match Kind::try_from(kind) {
        Ok(Kind::View) => SnapshotKind::View,
        Ok(Kind::Active) => SnapshotKind::Active,
        Ok(Kind::Committed) => SnapshotKind::Committed,
        _ => SnapshotKind::Unknown,
    }
}

fn labels(labels: &[(&str, &str)]) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Containerd {
    /// An active (writable) snapshot `key` on `parent` ("" for none).
    pub async fn snapshot_prepare(
        &self,
        snapshotter: &str,
        key: &str,
        parent: &str,
        with_labels: &[(&str, &str)],
    ) -> Result<Vec<Mount>, ContainerdError> {
        let resp = SnapshotsClient::new(self.channel.clone())
            .prepare(self.request(PrepareSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels: labels(with_labels),
            }))
            .await
            .map_err(|s| ContainerdError::from_status("snapshots.prepare", s))?;
        Ok(mounts_from_proto(resp.into_inner().mounts))
    }

    /// A read-only view `key` of `parent`.
    pub async fn snapshot_view(&self, snapshotter: &str, key: &str, parent: &str) -> Result<Vec<Mount>, ContainerdError> {
        let resp = SnapshotsClient::new(self.channel.clone())
            .view(self.request(ViewSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(|s| ContainerdError::from_status("snapshots.view", s))?;
        Ok(mounts_from_proto(resp.into_inner().mounts))
    }

    /// Commit active snapshot `key` as `name`.
    pub async fn snapshot_commit(
        &self,
        snapshotter: &str,
        name: &str,
        key: &str,
        with_labels: &[(&str, &str)],
    ) -> Result<(), ContainerdError> {
        SnapshotsClient::new(self.channel.clone())
            .commit(self.request(CommitSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                name: name.to_string(),
                key: key.to_string(),
                labels: labels(with_labels),
                ..Default::default()
            }))
            .await
            .map_err(|s| ContainerdError::from_status("snapshots.commit", s))?;
        Ok(())
    }

    /// Remove a snapshot; absent is not an error.
    pub async fn snapshot_remove(&self, snapshotter: &str, key: &str) -> Result<(), ContainerdError> {
        match SnapshotsClient::new(self.channel.clone())
            .remove(self.request(RemoveSnapshotRequest { snapshotter: snapshotter.to_string(), key: key.to_string() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) => match ContainerdError::from_status("snapshots.remove", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }

    /// The snapshot `key`, or `None`.
    pub async fn snapshot_stat(&self, snapshotter: &str, key: &str) -> Result<Option<SnapshotInfo>, ContainerdError> {
        match SnapshotsClient::new(self.channel.clone())
            .stat(self.request(StatSnapshotRequest { snapshotter: snapshotter.to_string(), key: key.to_string() }))
            .await
        {
            Ok(resp) => Ok(resp.into_inner().info.map(|i| SnapshotInfo {
                name: i.name,
                parent: i.parent,
                kind: kind_from_proto(i.kind),
                labels: i.labels,
            })),
            Err(s) => match ContainerdError::from_status("snapshots.stat", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Disk use of the snapshot `key` alone.
    pub async fn snapshot_usage(&self, snapshotter: &str, key: &str) -> Result<SnapshotUsage, ContainerdError> {
        let resp = SnapshotsClient::new(self.channel.clone())
            .usage(self.request(UsageRequest { snapshotter: snapshotter.to_string(), key: key.to_string() }))
            .await
            .map_err(|s| ContainerdError::from_status("snapshots.usage", s))?
            .into_inner();
        Ok(SnapshotUsage { size: resp.size, inodes: resp.inodes })
    }

    /// Every snapshot in `snapshotter`.
    pub async fn snapshot_list(&self, snapshotter: &str) -> Result<Vec<SnapshotInfo>, ContainerdError> {
        let mut stream = SnapshotsClient::new(self.channel.clone())
            .list(self.request(ListSnapshotsRequest { snapshotter: snapshotter.to_string(), filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::from_status("snapshots.list", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(page) = stream.message().await.map_err(|s| ContainerdError::from_status("snapshots.list", s))? {
            out.extend(page.info.into_iter().map(|i| SnapshotInfo {
                name: i.name,
                parent: i.parent,
                kind: kind_from_proto(i.kind),
                labels: i.labels,
            }));
        }
        Ok(out)
    }
}
