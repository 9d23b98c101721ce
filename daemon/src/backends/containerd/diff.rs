//! The diff service: containerd extracts a layer blob onto mounts. berthd
//! never untars layers itself.

use std::collections::HashMap;

use containerd_client::services::v1::{diff_client::DiffClient, ApplyRequest, DiffRequest};

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

    /// Compute the changes from `lower` to `upper` as a layer blob in the
    /// content store (containerd's walking differ), of `media_type` (an
    /// OCI layer type). Answers the blob's descriptor.
    pub async fn diff_compare(
        &self,
        lower: &[Mount],
        upper: &[Mount],
        media_type: &str,
        reference: &str,
    ) -> Result<OciDescriptor, ContainerdError> {
        let resp = DiffClient::new(self.channel.clone())
            .diff(self.request(DiffRequest {
                left: mounts_to_proto(lower),
                right: mounts_to_proto(upper),
                media_type: media_type.to_string(),
                r#ref: reference.to_string(),
                labels: HashMap::new(),
                source_date_epoch: None,
            }))
            .await
            .map_err(|s| ContainerdError::from_status("diff.diff", s))?
            .into_inner();
        resp.diff
            .map(OciDescriptor::from)
            .ok_or_else(|| ContainerdError::from_status("diff.diff", tonic::Status::internal("no descriptor in diff response")))
    }
}
