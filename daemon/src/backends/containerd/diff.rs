//! The diff service: containerd extracts a layer blob onto mounts. berthd
//! never untars layers itself.

use std::collections::HashMap;

use containerd_client::services::v1::{diff_client::DiffClient, ApplyRequest};

use super::images::OciDescriptor;
use super::snapshots::mounts_to_proto;
use super::{Containerd, ContainerdError, Mount};

impl Containerd {
    /// Apply the layer `layer` (compressed or not, as its media type says)
    /// onto `mounts`; answers the descriptor of what was applied, whose
    /// digest is the layer's diff ID (the uncompressed tar's digest).
    pub async fn diff_apply(&self, layer: &OciDescriptor, mounts: &[Mount]) -> Result<OciDescriptor, ContainerdError> {
        let resp = DiffClient::new(self.channel.clone())
            .apply(self.request(ApplyRequest {
                diff: Some(layer.into()),
                mounts: mounts_to_proto(mounts),
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(|s| ContainerdError::from_status("diff.apply", s))?
            .into_inner();
        Ok(resp.applied.map(OciDescriptor::from).unwrap_or_default())
    }
}
