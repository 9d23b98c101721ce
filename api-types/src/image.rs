//! Images: list, inspect, history, delete and prune answers, as dockerd
//! (API 1.51) sends them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::version::ApiVersion;

/// An OCI descriptor as the API shows it (`Descriptor` fields, 1.48+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<OciPlatform>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// `GET /distribution/{name}/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributionInspect {
    #[serde(rename = "Descriptor")]
    pub descriptor: OciDescriptor,
    #[serde(rename = "Platforms")]
    pub platforms: Vec<OciPlatform>,
}

/// `POST /auth`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResponse {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "IdentityToken", default)]
    pub identity_token: String,
}

/// One entry of `GET /images/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    #[serde(rename = "Containers")]
    pub containers: i64,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "Id")]
    pub id: String,
    /// The config's labels; `null` when it has none.
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "ParentId")]
    pub parent_id: String,
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    /// -1 unless `shared-size` was asked for.
    #[serde(rename = "SharedSize")]
    pub shared_size: i64,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "Descriptor", default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<OciDescriptor>,
}

impl ImageSummary {
    /// Shape for an older client: `<none>` placeholders before 1.43,
    /// `VirtualSize` before 1.44, no `Descriptor` before 1.48, `Containers`
    /// always -1 before 1.51.
    pub fn for_version(self, v: ApiVersion) -> serde_json::Value {
        let mut s = self;
        if v < ApiVersion::new(1, 43) && s.repo_tags.is_empty() && s.repo_digests.is_empty() {
            s.repo_tags.push("<none>:<none>".into());
            s.repo_digests.push("<none>@<none>".into());
        }
        if v < ApiVersion::new(1, 48) {
            s.descriptor = None;
        }
        if v < ApiVersion::new(1, 51) {
            s.containers = -1;
        }
        let size = s.size;
        let mut value = serde_json::to_value(s).unwrap_or_default();
        if v < ApiVersion::new(1, 44) {
            if let Some(map) = value.as_object_mut() {
                map.insert("VirtualSize".into(), size.into());
            }
        }
        value
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphDriver {
    #[serde(rename = "Data")]
    pub data: Option<BTreeMap<String, String>>,
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "Layers", default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMetadata {
    /// RFC 3339; `0001-01-01T00:00:00Z` when never tagged.
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    #[serde(rename = "Parent")]
    pub parent: String,
    #[serde(rename = "Comment")]
    pub comment: String,
    #[serde(rename = "Created", default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
    #[serde(rename = "Author")]
    pub author: String,
    /// The image config's `config` object, as stored.
    #[serde(rename = "Config")]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "Architecture")]
    pub architecture: String,
    #[serde(rename = "Variant", default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(rename = "Os")]
    pub os: String,
    #[serde(rename = "OsVersion", default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub rootfs: RootFs,
    #[serde(rename = "Metadata")]
    pub metadata: ImageMetadata,
    #[serde(rename = "Descriptor", default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<OciDescriptor>,
}

/// Config fields dockerd 1.50–1.51 always sends, and the larger set before.
const CONFIG_FIELDS_1_50: &[(&str, fn() -> serde_json::Value)] = &[
    ("Cmd", null),
    ("Entrypoint", null),
    ("Env", null),
    ("Labels", null),
    ("OnBuild", null),
    ("User", empty),
    ("Volumes", null),
    ("WorkingDir", empty),
];
const CONFIG_FIELDS_1_49: &[(&str, fn() -> serde_json::Value)] = &[
    ("AttachStderr", no),
    ("AttachStdin", no),
    ("AttachStdout", no),
    ("Domainname", empty),
    ("Hostname", empty),
    ("Image", empty),
    ("OpenStdin", no),
    ("StdinOnce", no),
    ("Tty", no),
];

fn null() -> serde_json::Value {
    serde_json::Value::Null
}
fn empty() -> serde_json::Value {
    serde_json::Value::String(String::new())
}
fn no() -> serde_json::Value {
    serde_json::Value::Bool(false)
}

impl ImageInspect {
    /// Shape for the client's version (server-faithful up to 1.51).
    pub fn for_version(self, v: ApiVersion) -> serde_json::Value {
        let mut s = self;
        for (key, default) in CONFIG_FIELDS_1_50 {
            s.config.entry(key.to_string()).or_insert_with(default);
        }
        if v < ApiVersion::new(1, 50) {
            for (key, default) in CONFIG_FIELDS_1_49 {
                s.config.entry(key.to_string()).or_insert_with(default);
            }
        }
        if v < ApiVersion::new(1, 48) {
            s.descriptor = None;
        }
        let size = s.size;
        let created_missing = s.created.is_none();
        let mut value = serde_json::to_value(s).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            if v < ApiVersion::new(1, 44) {
                map.insert("VirtualSize".into(), size.into());
                if created_missing {
                    map.insert("Created".into(), "0001-01-01T00:00:00Z".into());
                }
            }
            if v < ApiVersion::new(1, 45) {
                map.insert("Container".into(), "".into());
                map.insert("ContainerConfig".into(), serde_json::Value::Null);
            }
        }
        value
    }
}

/// One entry of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResponseItem {
    #[serde(rename = "Comment")]
    pub comment: String,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "CreatedBy")]
    pub created_by: String,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
}

/// One line of a delete or prune answer: either an untag or a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDeleteResponseItem {
    #[serde(rename = "Untagged", default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(rename = "Deleted", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

impl ImageDeleteResponseItem {
    pub fn untagged(reference: impl Into<String>) -> Self {
        Self { untagged: Some(reference.into()), deleted: None }
    }
    pub fn deleted(id: impl Into<String>) -> Self {
        Self { untagged: None, deleted: Some(id.into()) }
    }
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesPruneResponse {
    /// `null` when nothing was deleted, as dockerd sends it.
    #[serde(rename = "ImagesDeleted")]
    pub images_deleted: Option<Vec<ImageDeleteResponseItem>>,
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// One message of a JSON progress stream (load, import, pull, push).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "progressDetail", default, skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "errorDetail", default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
}

impl JsonMessage {
    pub fn stream(text: impl Into<String>) -> Self {
        Self { stream: Some(text.into()), ..Default::default() }
    }
    /// An error inside a stream: both `error` and `errorDetail`.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self { error_detail: Some(ErrorDetail { message: message.clone() }), error: Some(message), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_dockerd_empty_values() {
        let s = ImageSummary {
            containers: 0,
            created: 1,
            id: "sha256:x".into(),
            labels: None,
            parent_id: String::new(),
            repo_digests: vec![],
            repo_tags: vec![],
            shared_size: -1,
            size: 2,
            descriptor: None,
        };
        let v = s.clone().for_version(ApiVersion::new(1, 51));
        assert_eq!(v["Labels"], serde_json::Value::Null);
        assert_eq!(v["RepoTags"], serde_json::json!([]));
        assert!(v.get("VirtualSize").is_none());
        let old = s.for_version(ApiVersion::new(1, 41));
        assert_eq!(old["RepoTags"], serde_json::json!(["<none>:<none>"]));
        assert_eq!(old["VirtualSize"], 2);
        assert_eq!(old["Containers"], -1);
    }

    #[test]
    fn delete_items_carry_one_field() {
        let v = serde_json::to_string(&ImageDeleteResponseItem::untagged("a:b")).unwrap();
        assert_eq!(v, r#"{"Untagged":"a:b"}"#);
        let p = serde_json::to_string(&ImagesPruneResponse::default()).unwrap();
        assert_eq!(p, r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#);
    }

    #[test]
    fn stream_errors_have_both_fields() {
        let v = serde_json::to_value(JsonMessage::error("boom")).unwrap();
        assert_eq!(v, serde_json::json!({"errorDetail":{"message":"boom"},"error":"boom"}));
    }
}
