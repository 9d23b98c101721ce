//! containerd's container records: metadata that ties a spec, a snapshot
//! and a runtime together (no process yet).

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::{
    containers_client::ContainersClient, Container, CreateContainerRequest, DeleteContainerRequest,
    GetContainerRequest, ListContainersRequest, UpdateContainerRequest,
};
use prost_types::Any;

use super::{Containerd, ContainerdError};

/// The runc shim, v2 API.
pub const RUNC_RUNTIME: &str = "io.containerd.runc.v2";
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// What a containerd container is made of.
pub struct NewContainer<'a> {
    pub id: &'a str,
    pub image: &'a str,
    pub snapshot_key: &'a str,
    pub spec: &'a serde_json::Value,
    pub labels: std::collections::HashMap<String, String>,
    /// The OCI runtime binary the runc shim runs instead of `runc`.
    pub runtime_binary: Option<&'a str>,
}

/// The runc shim's options (`containerd.runc.v1.Options`); only the field
/// berthd sets.
#[derive(Clone, PartialEq, prost::Message)]
struct RuncOptions {
    #[prost(string, tag = "6")]
    binary_name: String,
}

const RUNC_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

impl Containerd {
    pub async fn container_create(&self, c: NewContainer<'_>) -> Result<(), ContainerdError> {
        let spec = serde_json::to_vec(c.spec).map_err(|e| ContainerdError::invalid("containers.create", e))?;
        let container = Container {
            id: c.id.to_string(),
            labels: c.labels,
            image: c.image.to_string(),
            runtime: Some(Runtime {
                name: RUNC_RUNTIME.to_string(),
                options: c.runtime_binary.map(|binary| Any {
                    type_url: RUNC_OPTIONS_TYPE_URL.to_string(),
                    value: prost::Message::encode_to_vec(&RuncOptions { binary_name: binary.to_string() }),
                }),
            }),
            spec: Some(Any { type_url: SPEC_TYPE_URL.to_string(), value: spec }),
            snapshotter: self.snapshotter.clone(),
            snapshot_key: c.snapshot_key.to_string(),
            ..Default::default()
        };
        ContainersClient::new(self.channel.clone())
            .create(self.request(CreateContainerRequest { container: Some(container) }))
            .await
            .map_err(|s| ContainerdError::from_status("containers.create", s))?;
        Ok(())
    }

    /// Delete the record; a missing one is not an error.
    pub async fn container_delete(&self, id: &str) -> Result<(), ContainerdError> {
        match ContainersClient::new(self.channel.clone())
            .delete(self.request(DeleteContainerRequest { id: id.to_string() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(ContainerdError::from_status("containers.delete", s)),
        }
    }

    /// IDs of every container in our namespace.
    pub async fn container_ids(&self) -> Result<Vec<String>, ContainerdError> {
        self.container_ids_filtered(vec![]).await
    }

    /// IDs of the containers labelled `key=value` (ours, in our namespace).
    pub async fn container_ids_owned_by(&self, key: &str, value: &str) -> Result<Vec<String>, ContainerdError> {
        self.container_ids_filtered(vec![format!("labels.\"{key}\"=={value}")]).await
    }

    async fn container_ids_filtered(&self, filters: Vec<String>) -> Result<Vec<String>, ContainerdError> {
        Ok(ContainersClient::new(self.channel.clone())
            .list(self.request(ListContainersRequest { filters }))
            .await
            .map_err(|s| ContainerdError::from_status("containers.list", s))?
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    /// Replace `linux.resources` in the container's stored spec (what the
    /// next task starts with), keeping the device rules.
    pub async fn container_set_resources(&self, id: &str, resources: &serde_json::Value) -> Result<(), ContainerdError> {
        self.container_edit_spec(id, |spec| {
            let devices = spec["linux"]["resources"]["devices"].take();
            spec["linux"]["resources"] = resources.clone();
            spec["linux"]["resources"]["devices"] = devices;
        })
        .await
    }

    /// Change the container's stored spec in place (read, edit, write back).
    pub async fn container_edit_spec(
        &self,
        id: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Result<(), ContainerdError> {
        let mut client = ContainersClient::new(self.channel.clone());
        let mut container = client
            .get(self.request(GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(|s| ContainerdError::from_status("containers.get", s))?
            .into_inner()
            .container
            .ok_or_else(|| ContainerdError::invalid("containers.get", "no container in the answer"))?;
        let any = container.spec.as_mut().ok_or_else(|| ContainerdError::invalid("containers.get", "container has no spec"))?;
        let mut spec: serde_json::Value =
            serde_json::from_slice(&any.value).map_err(|e| ContainerdError::invalid("containers.update", e))?;
        edit(&mut spec);
        any.value = serde_json::to_vec(&spec).map_err(|e| ContainerdError::invalid("containers.update", e))?;
        let mask = prost_types::FieldMask { paths: vec!["spec".into()] };
        client
            .update(self.request(UpdateContainerRequest { container: Some(container), update_mask: Some(mask) }))
            .await
            .map_err(|s| ContainerdError::from_status("containers.update", s))?;
        Ok(())
    }
}
