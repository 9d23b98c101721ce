//! Reading what running an image needs: the image record's target, and the
//! manifest and config blobs behind it.

use containerd_client::services::v1::{
    content_client::ContentClient, images_client::ImagesClient, GetImageRequest, ReadContentRequest,
};

use super::{Containerd, ContainerdError, ErrorKind};

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

/// Manifests and configs are small; anything bigger is not one.
const MAX_METADATA_BLOB: i64 = 8 * 1024 * 1024;

impl Containerd {
    /// The target of the image record `name`, `None` if there is no such record.
    pub async fn image_target(&self, name: &str) -> Result<Option<Descriptor>, ContainerdError> {
        match ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest { name: name.to_string() }))
            .await
        {
            Ok(resp) => Ok(resp.into_inner().image.and_then(|i| i.target).map(|t| Descriptor {
                media_type: t.media_type,
                digest: t.digest,
                size: t.size,
            })),
            Err(s) => match ContainerdError::from_status("images.get", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// A small blob (manifest, index, config) read whole.
    pub async fn metadata_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, ContainerdError> {
        if desc.size > MAX_METADATA_BLOB {
            return Err(ContainerdError::invalid("content.read", format!("{} is too large for metadata", desc.digest)));
        }
        let req = ReadContentRequest { digest: desc.digest.clone(), offset: 0, size: 0 };
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("content.read", s))?
            .into_inner();
        let mut data = Vec::with_capacity(desc.size.max(0) as usize);
        while let Some(chunk) = stream.message().await.map_err(|s| ContainerdError::from_status("content.read", s))? {
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }
}
