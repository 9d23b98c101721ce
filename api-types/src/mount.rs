//! `HostConfig.Mounts` entries (`--mount`): echoed in inspect as sent, with
//! Go's `omitempty` (empty fields left out).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::null_default;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    #[serde(rename = "Type", default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    /// Fields berthd does not act on, kept as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub non_recursive: bool,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub create_mountpoint: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub no_copy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<VolumeDriver>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeDriver {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub size_bytes: i64,
    /// Go's `os.FileMode`: the permission bits (and, rarely, Go's type bits).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub mode: i64,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_the_cli_sends() {
        let sent = serde_json::json!([
            {"Type": "bind", "Source": "/h", "Target": "/b", "ReadOnly": true, "BindOptions": {"Propagation": "rslave"}},
            {"Type": "volume", "Source": "vro", "Target": "/vro", "VolumeOptions": {"NoCopy": true, "DriverConfig": {}}},
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 960}}
        ]);
        let mounts: Vec<Mount> = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(mounts[2].tmpfs_options.as_ref().unwrap().mode, 0o1700);
        assert_eq!(serde_json::to_value(&mounts).unwrap(), sent);
    }
}
