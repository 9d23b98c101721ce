//! A container's writable layer: an active snapshot on top of its image's
//! top layer, keyed by the container ID.

use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};

use super::{Containerd, ContainerdError, ErrorKind, Mount};

fn mounts_from(proto: Vec<containerd_client::types::Mount>) -> Vec<Mount> {
    proto.into_iter().map(|m| Mount { kind: m.r#type, source: m.source, options: m.options }).collect()
}

impl Containerd {
    /// Prepare the writable snapshot `key` over `parent` (a chain ID); an
    /// existing one is reused (a retry after a crash).
    pub async fn rootfs_prepare(&self, key: &str, parent: &str) -> Result<Vec<Mount>, ContainerdError> {
        let req = PrepareSnapshotRequest {
            snapshotter: self.snapshotter.clone(),
            key: key.to_string(),
            parent: parent.to_string(),
            labels: Default::default(),
        };
        match SnapshotsClient::new(self.channel.clone()).prepare(self.request(req)).await {
            Ok(resp) => Ok(mounts_from(resp.into_inner().mounts)),
            Err(s) => match ContainerdError::from_status("snapshots.prepare", s) {
                e if e.kind() == ErrorKind::AlreadyExists => self.rootfs_mounts(key).await,
                e => Err(e),
            },
        }
    }

    pub async fn rootfs_mounts(&self, key: &str) -> Result<Vec<Mount>, ContainerdError> {
        let req = MountsRequest { snapshotter: self.snapshotter.clone(), key: key.to_string() };
        Ok(mounts_from(
            SnapshotsClient::new(self.channel.clone())
                .mounts(self.request(req))
                .await
                .map_err(|s| ContainerdError::from_status("snapshots.mounts", s))?
                .into_inner()
                .mounts,
        ))
    }

    /// Remove the writable snapshot; a missing one is not an error.
    pub async fn rootfs_remove(&self, key: &str) -> Result<(), ContainerdError> {
        let req = RemoveSnapshotRequest { snapshotter: self.snapshotter.clone(), key: key.to_string() };
        match SnapshotsClient::new(self.channel.clone()).remove(self.request(req)).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(ContainerdError::from_status("snapshots.remove", s)),
        }
    }
}
