//! Leases: hold what an ingestion writes (content, snapshots) against
//! containerd's garbage collector until the image record that references it
//! exists. A lease carries an expiry label, so a berthd killed mid-ingestion
//! leaves nothing that GC does not eventually remove.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::{
    leases_client::LeasesClient, AddResourceRequest, CreateRequest, DeleteRequest, ListRequest,
    Resource,
};

use super::{Containerd, ContainerdError, ErrorKind};

/// containerd's GC drops a lease after this RFC 3339 instant.
pub const LABEL_GC_EXPIRE: &str = "containerd.io/gc.expire";
/// Marks leases berthd creates, so start-up can drop those a crash left.
pub const LABEL_BERTHD_LEASE: &str = "io.berthd.lease";

/// What a lease can hold, as containerd names resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseResource<'a> {
    Content(&'a str),
    /// A snapshot key in the given snapshotter.
    Snapshot { snapshotter: &'a str, key: &'a str },
}

impl Containerd {
    /// Create a lease that expires after `expire`, labelled with `purpose`.
    pub async fn lease_create(&self, id: &str, purpose: &str, expire: Duration) -> Result<String, ContainerdError> {
        let until = chrono::Utc::now()
            + chrono::Duration::from_std(expire).unwrap_or_else(|_| chrono::Duration::hours(24));
        let labels = HashMap::from([
            (LABEL_GC_EXPIRE.to_string(), until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            (LABEL_BERTHD_LEASE.to_string(), purpose.to_string()),
        ]);
        let lease = LeasesClient::new(self.channel.clone())
            .create(self.request(CreateRequest { id: id.to_string(), labels }))
            .await
            .map_err(|s| ContainerdError::from_status("leases.create", s))?
            .into_inner()
            .lease;
        Ok(lease.map(|l| l.id).unwrap_or_else(|| id.to_string()))
    }

    /// Delete a lease; `sync` waits for the GC that follows. A lease that is
    /// already gone is not an error.
    pub async fn lease_delete(&self, id: &str, sync: bool) -> Result<(), ContainerdError> {
        match LeasesClient::new(self.channel.clone())
            .delete(self.request(DeleteRequest { id: id.to_string(), sync }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) => match ContainerdError::from_status("leases.delete", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }

    /// IDs of the leases carrying `LABEL_BERTHD_LEASE`.
    pub async fn lease_list_berthd(&self) -> Result<Vec<String>, ContainerdError> {
        let filter = format!("labels.\"{LABEL_BERTHD_LEASE}\"");
        let leases = LeasesClient::new(self.channel.clone())
            .list(self.request(ListRequest { filters: vec![filter] }))
            .await
            .map_err(|s| ContainerdError::from_status("leases.list", s))?
            .into_inner()
            .leases;
        Ok(leases.into_iter().map(|l| l.id).collect())
    }

    /// Hold snapshot `key` under this handle's lease, if it has one: from
    /// then on the GC leaves it alone, even if nothing else refers to it.
    pub async fn lease_hold_snapshot(&self, snapshotter: &str, key: &str) -> Result<(), ContainerdError> {
        match self.lease_id() {
            Some(lease) => self.lease_add_resource(lease, LeaseResource::Snapshot { snapshotter, key }).await,
            None => Ok(()),
        }
    }

    /// Add an existing object to a lease (an ingestion that finds content
    /// or a snapshot already present still has to hold it).
    pub async fn lease_add_resource(&self, lease: &str, resource: LeaseResource<'_>) -> Result<(), ContainerdError> {
        let (id, kind) = match resource {
            LeaseResource::Content(digest) => (digest.to_string(), "content".to_string()),
            LeaseResource::Snapshot { snapshotter, key } => (key.to_string(), format!("snapshots/{snapshotter}")),
        };
        LeasesClient::new(self.channel.clone())
            .add_resource(self.request(AddResourceRequest {
                id: lease.to_string(),
                resource: Some(Resource { id, r#type: kind }),
            }))
            .await
            .map_err(|s| ContainerdError::from_status("leases.add_resource", s))?;
        Ok(())
    }
}
