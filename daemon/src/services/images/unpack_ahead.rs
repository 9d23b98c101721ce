//! Unpacking a docker-archive's layers while the rest of the archive is
//! still being read. The archive gives the layer order only in
//! `manifest.json`, which `docker save` writes after the layers, so `load`
//! used to write every blob first and unpack after. But each layer
//! directory's legacy `json` names its parent directory: once a layer's
//! ancestors are all in, it can be applied ahead, taking its blob's digest
//! as its diff ID (true of the uncompressed tars `docker save` writes).
//!
//! A guess is checked as the normal unpack checks a layer: containerd must
//! report the applied diff ID equal to the blob's digest. The snapshots are
//! named by chain ID, so when the manifest comes the normal unpack finds
//! the right ones and skips them; a wrong guess (a compressed layer, a
//! `json` that lies) leaves a snapshot nothing refers to, and the
//! ingestion's lease hands it to GC.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::unpack::Ingestion;
use super::{chain_ids, MEDIA_TYPE_DOCKER_LAYER};
use crate::backends::containerd::OciDescriptor;

/// More layers than an image may have (see `check_layer_count`): a
/// longer parent chain is a loop or nonsense.
const MAX_DEPTH: usize = 128;

/// One layer to apply: its blob, and the diff IDs from the bottom up to
/// and including its own.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Job {
    layer: OciDescriptor,
    diff_ids: Vec<String>,
}

#[derive(Default)]
struct LayerDir {
    /// `Some` once the directory's `json` was read: its parent directory.
    parent: Option<Option<String>>,
    /// `Some` once its `layer.tar` is in the content store.
    blob: Option<(String, i64)>,
}

#[derive(Deserialize)]
struct LegacyJson {
    #[serde(default)]
    parent: Option<String>,
}

/// What is known of the archive's layer directories so far; hands each
/// layer to the applier once its ancestors have been handed over.
pub(super) struct UnpackAhead {
    dirs: HashMap<String, LayerDir>,
    sent: HashSet<String>,
    jobs: mpsc::UnboundedSender<Job>,
    cancelled: Arc<AtomicBool>,
}

impl UnpackAhead {
    pub(super) fn new() -> (Self, Applier) {
        let (jobs, queue) = mpsc::unbounded_channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let ahead = Self { dirs: HashMap::new(), sent: HashSet::new(), jobs, cancelled: cancelled.clone() };
        (ahead, Applier { queue, cancelled })
    }

    /// `<dir>/json` was read; unreadable ones are ignored (the layer is
    /// then left to the normal unpack).
    pub(super) fn legacy_json(&mut self, dir: &str, bytes: &[u8]) {
        if let Ok(json) = serde_json::from_slice::<LegacyJson>(bytes) {
            self.dirs.entry(dir.to_string()).or_default().parent = Some(json.parent.filter(|p| !p.is_empty()));
            self.send_ready();
        }
    }

    /// `<dir>/layer.tar` is in the content store.
    pub(super) fn layer_blob(&mut self, dir: &str, digest: &str, size: i64) {
        self.dirs.entry(dir.to_string()).or_default().blob = Some((digest.to_string(), size));
        self.send_ready();
    }

    /// Stop: what is queued is not applied.
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Send every layer whose whole chain is known, parents first.
    fn send_ready(&mut self) {
        loop {
            let ready: Vec<(String, Job)> = self
                .dirs
                .keys()
                .filter(|dir| !self.sent.contains(*dir))
                .filter_map(|dir| self.job_for(dir).map(|job| (dir.clone(), job)))
                .collect();
            // Parents before children: a child's job is ready only once
            // its parent was sent (see `job_for`).
            let Some((dir, job)) = ready.into_iter().min_by_key(|(_, job)| job.diff_ids.len()) else { return };
            self.sent.insert(dir);
            if self.jobs.send(job).is_err() {
                return;
            }
        }
    }

    /// The job for `dir` if its blob and every ancestor's are known and its
    /// parent was sent already (so a loop never is).
    fn job_for(&self, dir: &str) -> Option<Job> {
        let entry = self.dirs.get(dir)?;
        let (digest, size) = entry.blob.clone()?;
        if let Some(parent) = entry.parent.as_ref()? {
            if !self.sent.contains(parent) {
                return None;
            }
        }
        let diff_ids = self.chain_below(dir)?;
        Some(Job { layer: OciDescriptor { media_type: MEDIA_TYPE_DOCKER_LAYER.into(), digest, size, ..Default::default() }, diff_ids })
    }

    /// The diff IDs of `dir` and its ancestors, bottom first.
    fn chain_below(&self, dir: &str) -> Option<Vec<String>> {
        let mut chain = Vec::new();
        let mut current = Some(dir.to_string());
        while let Some(d) = current {
            let entry = self.dirs.get(&d)?;
            chain.push(entry.blob.as_ref()?.0.clone());
            if chain.len() > MAX_DEPTH {
                return None;
            }
            current = entry.parent.clone()?;
        }
        chain.reverse();
        Some(chain)
    }
}

/// Applies the layers `UnpackAhead` hands over, in order, until it is
/// dropped or cancelled.
pub(super) struct Applier {
    queue: mpsc::UnboundedReceiver<Job>,
    cancelled: Arc<AtomicBool>,
}

impl Applier {
    pub(super) async fn run(mut self, ingest: &Ingestion) {
        let mut failed: HashSet<String> = HashSet::new();
        while let Some(job) = self.queue.recv().await {
            if self.cancelled.load(Ordering::SeqCst) {
                return;
            }
            let chains = chain_ids(&job.diff_ids);
            let (chain, parent) = match chains.as_slice() {
                [.., parent, chain] => (chain, parent.as_str()),
                [chain] => (chain, ""),
                [] => continue,
            };
            if !parent.is_empty() && failed.contains(parent) {
                failed.insert(chain.clone());
                continue;
            }
            let diff_id = &job.layer.digest;
            match ingest.apply_layer(&job.layer, diff_id, parent, chain).await {
                Ok(()) => tracing::debug!(layer = %job.layer.digest, "layer unpacked ahead of the manifest"),
                Err(e) => {
                    tracing::debug!(layer = %job.layer.digest, error = %e, "unpacking ahead of the manifest did not work out");
                    failed.insert(chain.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn drain(queue: &mut mpsc::UnboundedReceiver<Job>) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        while let Ok(job) = queue.try_recv() {
            assert_eq!(&job.layer.digest, job.diff_ids.last().unwrap());
            out.push(job.diff_ids);
        }
        out
    }

    #[test]
    fn layers_are_handed_over_once_their_ancestors_are() {
        let (mut ahead, mut applier) = UnpackAhead::new();
        // The top layer first, as a lexical `docker save` may order them.
        ahead.legacy_json("c", br#"{"id":"c","parent":"b"}"#);
        ahead.layer_blob("c", &digest(3), 30);
        ahead.legacy_json("a", br#"{"id":"a"}"#);
        assert!(drain(&mut applier.queue).is_empty());
        ahead.layer_blob("a", &digest(1), 10);
        assert_eq!(drain(&mut applier.queue), vec![vec![digest(1)]]);
        ahead.layer_blob("b", &digest(2), 20);
        assert!(drain(&mut applier.queue).is_empty());
        ahead.legacy_json("b", br#"{"id":"b","parent":"a"}"#);
        assert_eq!(
            drain(&mut applier.queue),
            vec![vec![digest(1), digest(2)], vec![digest(1), digest(2), digest(3)]]
        );
    }

    #[test]
    fn loops_unknown_parents_and_bad_json_hand_nothing_over() {
        let (mut ahead, mut applier) = UnpackAhead::new();
        ahead.legacy_json("x", br#"{"parent":"y"}"#);
        ahead.legacy_json("y", br#"{"parent":"x"}"#);
        ahead.layer_blob("x", &digest(1), 1);
        ahead.layer_blob("y", &digest(2), 1);
        ahead.legacy_json("z", br#"{"parent":"nowhere"}"#);
        ahead.layer_blob("z", &digest(3), 1);
        ahead.legacy_json("w", b"not json");
        ahead.layer_blob("w", &digest(4), 1);
        assert!(drain(&mut applier.queue).is_empty());
    }
}
