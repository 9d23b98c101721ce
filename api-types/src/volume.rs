//! Volumes: the create body and the volume, list and prune shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::null_default;

/// One volume, as `GET /volumes/{name}` and `POST /volumes/create` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// RFC 3339, seconds precision.
    pub created_at: String,
    pub driver: String,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    pub mountpoint: String,
    pub name: String,
    /// The driver options as given; `null` when none were.
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
    /// Only in `/system/df`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsageData>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeUsageData {
    /// Bytes; -1 when not computed.
    pub size: i64,
    /// Containers referring to the volume; -1 when not computed.
    pub ref_count: i64,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeListResponse {
    pub volumes: Vec<Volume>,
    /// `null` when there are none, as dockerd sends.
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/create` body (tolerant: unknown fields and nulls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeCreateOptions {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub driver: String,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_volume_spec: Option<serde_json::Value>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneResponse {
    /// `null` when nothing was removed, as dockerd sends.
    pub volumes_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_dockerd() {
        let v = Volume {
            created_at: "2024-01-02T03:04:05Z".into(),
            driver: "local".into(),
            mountpoint: "/var/lib/docker/volumes/v/_data".into(),
            name: "v".into(),
            scope: "local".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"CreatedAt": "2024-01-02T03:04:05Z", "Driver": "local", "Labels": {},
                "Mountpoint": "/var/lib/docker/volumes/v/_data", "Name": "v", "Options": null, "Scope": "local"})
        );
        let list = VolumeListResponse::default();
        assert_eq!(serde_json::to_string(&list).unwrap(), r#"{"Volumes":[],"Warnings":null}"#);
        let prune = VolumePruneResponse::default();
        assert_eq!(serde_json::to_string(&prune).unwrap(), r#"{"VolumesDeleted":null,"SpaceReclaimed":0}"#);
    }

    #[test]
    fn create_body_is_tolerant() {
        let o: VolumeCreateOptions = serde_json::from_str(r#"{"Name":null,"Labels":null,"Extra":1}"#).unwrap();
        assert_eq!(o, VolumeCreateOptions::default());
    }
}
