//! The content store: blobs addressed by digest. Reads stream; writes go
//! through containerd's Write session and are verified against the expected
//! digest and size, here and by containerd on commit.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use containerd_client::services::v1::{
    content_client::ContentClient, AbortRequest, DeleteContentRequest, Info, InfoRequest,
    ListContentRequest, ReadContentRequest, UpdateRequest, WriteAction, WriteContentRequest,
    WriteContentResponse,
};
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tonic::Streaming;

use super::images::time_from_proto;
use super::{Containerd, ContainerdError, ErrorKind};

/// The size of one Write message; containerd's Go client uses 1 MiB too.
pub const WRITE_CHUNK: usize = 1 << 20;

/// Content labels containerd's own client sets, so its GC and tools agree.
pub mod labels {
    /// On a manifest: its config. On an index: `…m.N` per manifest. On a
    /// manifest: `…l.N` per layer.
    pub const GC_REF_CONFIG: &str = "containerd.io/gc.ref.content.config";
    pub const GC_REF_LAYER_PREFIX: &str = "containerd.io/gc.ref.content.l.";
    pub const GC_REF_MANIFEST_PREFIX: &str = "containerd.io/gc.ref.content.m.";
    /// On a config blob: the top snapshot (chain ID) of the unpacked image.
    pub fn gc_ref_snapshot(snapshotter: &str) -> String {
        format!("containerd.io/gc.ref.snapshot.{snapshotter}")
    }
    /// On a (compressed) layer blob: the digest of its uncompressed tar.
    pub const UNCOMPRESSED: &str = "containerd.io/uncompressed";
    /// On pulled blobs: `containerd.io/distribution.source.<registry host>` →
    /// repository path(s), comma separated.
    pub const DISTRIBUTION_SOURCE_PREFIX: &str = "containerd.io/distribution.source.";
}

/// What the content store knows about one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentInfo {
    pub digest: String,
    pub size: i64,
    pub labels: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn info_from_proto(info: Info) -> ContentInfo {
    ContentInfo {
        digest: info.digest,
        size: info.size,
        labels: info.labels.into_iter().collect(),
        created_at: time_from_proto(info.created_at),
        updated_at: time_from_proto(info.updated_at),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Containerd {
    /// Info on one blob, or `None` when it is absent.
    pub async fn content_info(&self, digest: &str) -> Result<Option<ContentInfo>, ContainerdError> {
        match ContentClient::new(self.channel.clone())
            .info(self.request(InfoRequest { digest: digest.to_string() }))
            .await
        {
            Ok(resp) => Ok(resp.into_inner().info.map(info_from_proto)),
            Err(s) => match ContainerdError::from_status("content.info", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Every blob matching any of `filters` (none: all).
    pub async fn content_list(&self, filters: &[String]) -> Result<Vec<ContentInfo>, ContainerdError> {
        let mut stream = ContentClient::new(self.channel.clone())
            .list(self.request(ListContentRequest { filters: filters.to_vec() }))
            .await
            .map_err(|s| ContainerdError::from_status("content.list", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(page) = stream.message().await.map_err(|s| ContainerdError::from_status("content.list", s))? {
            out.extend(page.info.into_iter().map(info_from_proto));
        }
        Ok(out)
    }

    /// Delete a blob; absent is not an error.
    pub async fn content_delete(&self, digest: &str) -> Result<(), ContainerdError> {
        match ContentClient::new(self.channel.clone())
            .delete(self.request(DeleteContentRequest { digest: digest.to_string() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) => match ContainerdError::from_status("content.delete", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Set (merge) labels on a blob; other labels stay. An empty value
    /// removes that label.
    pub async fn content_set_labels(
        &self,
        digest: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ContainerdError> {
        if labels.is_empty() {
            return Ok(());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        let info = Info {
            digest: digest.to_string(),
            labels: labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect(),
            ..Default::default()
        };
        ContentClient::new(self.channel.clone())
            .update(self.request(UpdateRequest { info: Some(info), update_mask: Some(prost_types::FieldMask { paths }) }))
            .await
            .map_err(|s| ContainerdError::from_status("content.update", s))?;
        Ok(())
    }

    /// A blob as a stream of chunks, from `offset` on.
    pub async fn content_read(
        &self,
        digest: &str,
        offset: i64,
    ) -> Result<impl Stream<Item = Result<Bytes, ContainerdError>> + Send + 'static, ContainerdError> {
        let stream = ContentClient::new(self.channel.clone())
            .read(self.request(ReadContentRequest { digest: digest.to_string(), offset, size: 0 }))
            .await
            .map_err(|s| ContainerdError::from_status("content.read", s))?
            .into_inner();
        Ok(stream.map(|r| {
            r.map(|m| Bytes::from(m.data)).map_err(|s| ContainerdError::from_status("content.read", s))
        }))
    }

    /// The first `n` bytes of a blob; `n` must not exceed its size.
    pub async fn content_read_head(&self, digest: &str, n: usize) -> Result<Vec<u8>, ContainerdError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.request(ReadContentRequest { digest: digest.to_string(), offset: 0, size: n as i64 }))
            .await
            .map_err(|s| ContainerdError::from_status("content.read", s))?
            .into_inner();
        let mut out = Vec::with_capacity(n);
        while let Some(m) = stream.message().await.map_err(|s| ContainerdError::from_status("content.read", s))? {
            out.extend_from_slice(&m.data);
            if out.len() >= n {
                break;
            }
        }
        out.truncate(n);
        Ok(out)
    }

    /// A small blob (manifest, config, index) read whole; refuses blobs over
    /// `limit` bytes.
    pub async fn content_read_all(&self, digest: &str, limit: usize) -> Result<Vec<u8>, ContainerdError> {
        let mut stream = Box::pin(self.content_read(digest, 0).await?);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() > limit {
                return Err(ContainerdError::invalid("content.read", format!("blob {digest} is larger than {limit} bytes")));
            }
        }
        Ok(out)
    }

    /// Open a Write session under `reference` (unique per ingestion).
    /// `expected` (digest, size) is verified on commit when given.
    pub async fn content_writer(
        &self,
        reference: &str,
        expected: Option<(&str, i64)>,
    ) -> Result<ContentWriter, ContainerdError> {
        let (tx, rx) = mpsc::channel::<WriteContentRequest>(4);
        let (expected_digest, total) = expected.map(|(d, s)| (d.to_string(), s)).unwrap_or_default();
        let stat = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.to_string(),
            total,
            expected: expected_digest.clone(),
            ..Default::default()
        };
        tx.send(stat).await.map_err(|_| closed("content.write"))?;
        let requests = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let mut responses = ContentClient::new(self.channel.clone())
            .write(self.request(requests))
            .await
            .map_err(|s| ContainerdError::from_status("content.write", s))?
            .into_inner();
        let first = next_response(&mut responses).await?;
        let mut writer = ContentWriter {
            containerd: self.clone(),
            reference: reference.to_string(),
            tx: Some(tx),
            responses,
            offset: 0,
            hasher: Sha256::new(),
            expected: expected.map(|(d, s)| (d.to_string(), s)),
            present: false,
        };
        // containerd already holds the expected blob (shared content from
        // another namespace): the data is only hashed here, and the commit
        // makes the blob ours.
        if first.offset != 0 && expected.is_some_and(|(_, size)| size == first.offset) {
            writer.present = true;
            return Ok(writer);
        }
        if first.offset != 0 {
            // A leftover ingest under this ref: start it over.
            writer.abort().await;
            return Err(ContainerdError::invalid("content.write", format!("ingest {reference} already has {} bytes", first.offset)));
        }
        Ok(writer)
    }

    /// Write a whole in-memory blob. Content already present is fine.
    pub async fn content_write_blob(
        &self,
        reference: &str,
        data: &[u8],
        labels: &BTreeMap<String, String>,
    ) -> Result<String, ContainerdError> {
        let digest = sha256_digest(data);
        let mut writer = self.content_writer(reference, Some((&digest, data.len() as i64))).await?;
        for chunk in data.chunks(WRITE_CHUNK) {
            writer.write(chunk).await?;
        }
        writer.commit(labels).await?;
        Ok(digest)
    }

    /// Drop an unfinished ingest.
    pub async fn content_abort(&self, reference: &str) {
        let _ = ContentClient::new(self.channel.clone())
            .abort(self.request(AbortRequest { r#ref: reference.to_string() }))
            .await;
    }
}

fn closed(op: &'static str) -> ContainerdError {
    ContainerdError { kind: ErrorKind::Unavailable, op, message: "write session closed by containerd".into() }
}

async fn next_response(responses: &mut Streaming<WriteContentResponse>) -> Result<WriteContentResponse, ContainerdError> {
    match responses.message().await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(closed("content.write")),
        Err(s) => Err(ContainerdError::from_status("content.write", s)),
    }
}

/// A blob being written. Each message is acknowledged before the next is
/// sent, which keeps memory flat whatever the blob's size.
pub struct ContentWriter {
    containerd: Containerd,
    reference: String,
    tx: Option<mpsc::Sender<WriteContentRequest>>,
    responses: Streaming<WriteContentResponse>,
    offset: i64,
    hasher: Sha256,
    expected: Option<(String, i64)>,
    /// containerd has all the data already; writes are only hashed.
    present: bool,
}

/// A committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlob {
    pub digest: String,
    pub size: i64,
}

impl ContentWriter {
    pub fn offset(&self) -> i64 {
        self.offset
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), ContainerdError> {
        if data.is_empty() {
            return Ok(());
        }
        self.hasher.update(data);
        if self.present {
            self.offset += data.len() as i64;
            return Ok(());
        }
        let req = WriteContentRequest {
            action: WriteAction::Write as i32,
            offset: self.offset,
            data: data.to_vec(),
            ..Default::default()
        };
        let tx = self.tx.as_ref().ok_or_else(|| closed("content.write"))?;
        tx.send(req).await.map_err(|_| closed("content.write"))?;
        let resp = next_response(&mut self.responses).await?;
        self.offset += data.len() as i64;
        if resp.offset != self.offset {
            return Err(ContainerdError::invalid(
                "content.write",
                format!("short write to {}: {} of {} bytes", self.reference, resp.offset, self.offset),
            ));
        }
        Ok(())
    }

    /// Verify and commit. The digest is what was written; when an expected
    /// digest or size was given and differs, nothing is committed. Content
    /// that already existed counts as committed.
    pub async fn commit(mut self, labels: &BTreeMap<String, String>) -> Result<CommittedBlob, ContainerdError> {
        let digest = format!("sha256:{}", hex::encode(std::mem::take(&mut self.hasher).finalize()));
        if let Some((want, size)) = self.expected.clone() {
            if size != self.offset {
                let got = self.offset;
                self.abort().await;
                return Err(ContainerdError::invalid(
                    "content.commit",
                    format!("size mismatch for {want}: expected {size} bytes, got {got}"),
                ));
            }
            if want != digest {
                self.abort().await;
                return Err(ContainerdError::invalid(
                    "content.commit",
                    format!("digest mismatch: expected {want}, got {digest}"),
                ));
            }
        }
        let req = WriteContentRequest {
            action: WriteAction::Commit as i32,
            total: self.offset,
            offset: self.offset,
            expected: digest.clone(),
            labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>(),
            ..Default::default()
        };
        let tx = self.tx.take().ok_or_else(|| closed("content.commit"))?;
        let sent = tx.send(req).await;
        drop(tx);
        let result = match sent {
            Ok(()) => next_response(&mut self.responses).await.map(|_| ()),
            Err(_) => Err(closed("content.commit")),
        };
        match result {
            Ok(()) => Ok(CommittedBlob { digest, size: self.offset }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if !labels.is_empty() {
                    self.containerd.content_set_labels(&digest, labels).await?;
                }
                // Content that was already there is not held by our lease
                // yet: without this, GC after an unrelated delete could take
                // it before the image that needs it is recorded.
                if let Some(lease) = self.containerd.lease_id().map(str::to_string) {
                    self.containerd.lease_add_resource(&lease, super::leases::LeaseResource::Content(&digest)).await?;
                }
                Ok(CommittedBlob { digest, size: self.offset })
            }
            Err(e) => {
                self.containerd.content_abort(&self.reference).await;
                Err(e)
            }
        }
    }

    /// Give up: close the session and drop the partial ingest.
    pub async fn abort(mut self) {
        self.tx.take();
        self.containerd.content_abort(&self.reference).await;
    }
}
