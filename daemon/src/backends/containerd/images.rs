//! containerd's image records: a name pointing at a target descriptor
//! (manifest or index) in the content store.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use containerd_client::services::v1::{
    images_client::ImagesClient, CreateImageRequest, DeleteImageRequest, GetImageRequest, Image,
    ListImagesRequest, UpdateImageRequest,
};
use containerd_client::types::Descriptor as ProtoDescriptor;

use super::{Containerd, ContainerdError, ErrorKind};

/// An OCI content descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    pub annotations: BTreeMap<String, String>,
}

/// One image record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub target: OciDescriptor,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ImageRecord {
    pub fn new(name: impl Into<String>, target: OciDescriptor) -> Self {
        Self { name: name.into(), target, labels: BTreeMap::new(), created_at: None, updated_at: None }
    }
}

impl From<ProtoDescriptor> for OciDescriptor {
    fn from(d: ProtoDescriptor) -> Self {
        Self { media_type: d.media_type, digest: d.digest, size: d.size, annotations: d.annotations.into_iter().collect() }
    }
}

impl From<&OciDescriptor> for ProtoDescriptor {
    fn from(d: &OciDescriptor) -> Self {
        Self {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            annotations: d.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>(),
        }
    }
}

pub(super) fn time_from_proto(t: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
}

fn time_to_proto(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(|t| prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

fn from_proto(image: Image) -> ImageRecord {
    ImageRecord {
        name: image.name,
        target: image.target.map(OciDescriptor::from).unwrap_or_default(),
        labels: image.labels.into_iter().collect(),
        created_at: time_from_proto(image.created_at),
        updated_at: time_from_proto(image.updated_at),
    }
}

fn to_proto(record: &ImageRecord) -> Image {
    Image {
        name: record.name.clone(),
        labels: record.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        target: Some((&record.target).into()),
        created_at: time_to_proto(record.created_at),
        updated_at: time_to_proto(record.updated_at),
    }
}

/// A containerd filter expression quoting `value` as a string literal.
pub fn quote_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Containerd {
    /// Image records matching any of `filters` (containerd filter syntax;
    /// none means all, kept between changes: `image_cache.rs`).
    pub async fn image_list(&self, filters: &[String]) -> Result<Vec<ImageRecord>, ContainerdError> {
        if filters.is_empty() {
            return Ok(self.image_records().await?.as_ref().clone());
        }
        self.image_list_uncached(filters).await
    }

    pub(super) async fn image_list_uncached(&self, filters: &[String]) -> Result<Vec<ImageRecord>, ContainerdError> {
        let images = ImagesClient::new(self.channel.clone())
            .list(self.request(ListImagesRequest { filters: filters.to_vec() }))
            .await
            .map_err(|s| ContainerdError::from_status("images.list", s))?
            .into_inner()
            .images;
        Ok(images.into_iter().map(from_proto).collect())
    }

    /// The record named `name`, or `None`.
    pub async fn image_get(&self, name: &str) -> Result<Option<ImageRecord>, ContainerdError> {
        match ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest { name: name.to_string() }))
            .await
        {
            Ok(resp) => Ok(resp.into_inner().image.map(from_proto)),
            Err(s) => match ContainerdError::from_status("images.get", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Create a record; `AlreadyExists` when the name is taken.
    pub async fn image_create(&self, record: &ImageRecord) -> Result<ImageRecord, ContainerdError> {
        let created = ImagesClient::new(self.channel.clone())
            .create(self.request(CreateImageRequest { image: Some(to_proto(record)), source_date_epoch: None }))
            .await;
        self.image_cache.changed();
        let image = created
            .map_err(|s| ContainerdError::from_status("images.create", s))?
            .into_inner()
            .image;
        Ok(image.map(from_proto).unwrap_or_else(|| record.clone()))
    }

    /// Replace the target (and labels) of an existing record.
    pub async fn image_update(&self, record: &ImageRecord) -> Result<ImageRecord, ContainerdError> {
        let mask = prost_types::FieldMask { paths: vec!["target".into(), "labels".into()] };
        let updated = ImagesClient::new(self.channel.clone())
            .update(self.request(UpdateImageRequest {
                image: Some(to_proto(record)),
                update_mask: Some(mask),
                source_date_epoch: None,
            }))
            .await;
        self.image_cache.changed();
        let image = updated
            .map_err(|s| ContainerdError::from_status("images.update", s))?
            .into_inner()
            .image;
        Ok(image.map(from_proto).unwrap_or_else(|| record.clone()))
    }

    /// Delete a record; `sync` waits for the garbage collection it triggers.
    /// A record already gone is not an error.
    pub async fn image_delete(&self, name: &str, sync: bool) -> Result<(), ContainerdError> {
        let deleted = ImagesClient::new(self.channel.clone())
            .delete(self.request(DeleteImageRequest { name: name.to_string(), sync, target: None }))
            .await;
        self.image_cache.changed();
        match deleted {
            Ok(_) => Ok(()),
            Err(s) => match ContainerdError::from_status("images.delete", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_quoted() {
        assert_eq!(quote_filter_value("docker.io/a:b"), "\"docker.io/a:b\"");
        assert_eq!(quote_filter_value("a\"b"), "\"a\\\"b\"");
    }
}
