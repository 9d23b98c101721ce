//! What pull, push, import and `GET /distribution/{name}/json` share: the
//! JSON progress stream in dockerd's shapes (`pkg/progress`,
//! `streamformatter`), registry errors in dockerd's words, and descriptors
//! between the registry client and containerd.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use api_types::image::{DistributionInspect, JsonMessage, OciPlatform, ProgressDetail};
use api_types::reference::Reference;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{ImageConfig, ImageService, MAX_METADATA_BLOB};
use crate::backends::containerd::OciDescriptor;
use crate::backends::registry::{
    self, Credentials, Descriptor, ErrorKind, Manifest, RegistryClient, RegistryError, Repository,
};
use crate::services::ServiceError;

/// dockerd's progress reader reports every 512 KiB.
const PROGRESS_EVERY: u64 = 512 * 1024;

/// Bytes moved so far, and when to report them: every 512 KiB and at the end.
pub struct ByteCounter {
    pub total: u64,
    current: u64,
    reported: u64,
}

impl ByteCounter {
    pub fn new(total: u64) -> Self {
        Self { total, current: 0, reported: 0 }
    }

    /// Count `n` more bytes; the new count when it is time to report it.
    pub fn advance(&mut self, n: usize) -> Option<u64> {
        self.current += n as u64;
        if self.current - self.reported >= PROGRESS_EVERY || self.current == self.total {
            self.reported = self.current;
            return Some(self.current);
        }
        None
    }
}

/// The progress output of one pull, push or import: JSON messages for the
/// HTTP answer. Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    tx: mpsc::Sender<JsonMessage>,
    sent: Arc<AtomicBool>,
}

impl Progress {
    pub fn new(tx: mpsc::Sender<JsonMessage>) -> Self {
        Self { tx, sent: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether anything was written: errors after that go into the stream,
    /// before it they are the HTTP answer (dockerd's `output.Flushed()`).
    pub fn has_output(&self) -> bool {
        self.sent.load(Ordering::Acquire)
    }

    async fn send(&self, message: JsonMessage) {
        self.sent.store(true, Ordering::Release);
        let _ = self.tx.send(message).await;
    }

    /// `progress.Message`: a status line, with an `id` when not empty.
    pub async fn message(&self, id: &str, text: impl Into<String>) {
        self.send(JsonMessage { status: Some(text.into()), id: non_empty(id), ..Default::default() }).await;
    }

    /// `progress.Update`: an action on `id`, with an empty `progressDetail`.
    pub async fn update(&self, id: &str, action: impl Into<String>) {
        self.send(JsonMessage {
            status: Some(action.into()),
            id: non_empty(id),
            progress_detail: Some(ProgressDetail::default()),
            ..Default::default()
        })
        .await;
    }

    /// A byte count for `id` (`Downloading`, `Pushing`, `Extracting`).
    /// Dropped rather than waited for when the client reads slowly.
    pub fn bytes(&self, id: &str, action: &str, current: u64, total: u64) {
        self.sent.store(true, Ordering::Release);
        let _ = self.tx.try_send(JsonMessage {
            status: Some(action.into()),
            id: non_empty(id),
            progress_detail: Some(ProgressDetail { current: Some(current as i64), total: Some(total as i64) }),
            progress: Some(progress_bar(current, total)),
            ..Default::default()
        });
    }

    /// An `aux` message (push's `{"Tag","Digest","Size"}`).
    pub async fn aux(&self, value: serde_json::Value) {
        self.send(JsonMessage { progress_detail: Some(ProgressDetail::default()), aux: Some(value), ..Default::default() })
            .await;
    }

    /// An error inside the stream: `error` and `errorDetail`.
    pub async fn error(&self, message: impl Into<String>) {
        self.send(JsonMessage::error(message)).await;
    }

    /// Resolves when the client has gone (the answer's body was dropped).
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Run `work`; an error after output went out is reported in the
    /// stream, one before is returned (the HTTP answer). A client hang-up
    /// ends `work` early with an error.
    pub async fn run<F>(&self, work: F) -> Result<(), ServiceError>
    where
        F: std::future::Future<Output = Result<(), ServiceError>>,
    {
        let result = tokio::select! {
            r = work => r,
            _ = self.closed() => Err(cancelled()),
        };
        match result {
            Err(e) if self.has_output() => {
                tracing::debug!(error = %e, "transfer failed after progress was sent");
                self.error(e.to_string()).await;
                Ok(())
            }
            other => other,
        }
    }
}

/// The error a transfer ends with when its client hung up.
pub fn cancelled() -> ServiceError {
    ServiceError::Internal("context canceled".into())
}

fn non_empty(id: &str) -> Option<String> {
    (!id.is_empty()).then(|| id.to_string())
}

/// go-units `HumanSize`: decimal units, 4 significant digits (`%.4g`).
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g4(size), UNITS[unit])
}

/// Go's `%.4g` for 0 <= x < 1000 (no exponent form needed there).
fn format_g4(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `JSONProgress.String()` as dockerd renders it (no terminal: width 200,
/// so the bar is drawn; no start time, so no time left).
pub fn progress_bar(current: u64, total: u64) -> String {
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let percentage = ((current as f64 / total as f64 * 100.0) as i64 / 2).min(50);
    let spaces = (50 - percentage).max(0) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(percentage.max(0) as usize), " ".repeat(spaces));
    let numbers = if current > total {
        format!("{:>8}", human_size(current as f64))
    } else {
        format!("{:>8}/{}", human_size(current as f64), human_size(total as f64))
    };
    bar + &numbers
}

/// A registry descriptor as containerd takes it.
pub fn to_containerd(d: &Descriptor) -> OciDescriptor {
    OciDescriptor { media_type: d.media_type.clone(), digest: d.digest.clone(), size: d.size as i64, annotations: d.annotations.clone() }
}

/// A containerd descriptor as the registry client takes it.
pub fn to_registry(d: &OciDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size.max(0) as u64,
        urls: vec![],
        annotations: d.annotations.clone(),
        platform: None,
    }
}

/// A registry failure in Docker's categories, its text kept.
pub fn registry_error(e: RegistryError) -> ServiceError {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => ServiceError::NotFound(text),
        ErrorKind::Unauthorized => ServiceError::Unauthorized(text),
        ErrorKind::Invalid | ErrorKind::Unavailable | ErrorKind::Other => ServiceError::Internal(text),
    }
}

/// dockerd's `translatePullError`: what users read when a pull cannot
/// start (`manifest for x:nope not found: manifest unknown: …`).
pub fn pull_error(e: RegistryError, reference: &Reference) -> ServiceError {
    let code = e.codes().first().map(|c| c.code.as_str()).unwrap_or_default();
    let denied = code == "DENIED" || code == "UNAUTHORIZED" || (code.is_empty() && e.kind() == ErrorKind::Unauthorized);
    if denied {
        return ServiceError::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
            reference.familiar_name()
        ));
    }
    match code {
        "MANIFEST_UNKNOWN" => ServiceError::NotFound(format!("manifest for {} not found: {e}", reference.familiar_string())),
        "NAME_UNKNOWN" => ServiceError::NotFound(format!("repository {} not found: {e}", reference.familiar_name())),
        _ => registry_error(e),
    }
}

/// Read a small blob (a config) whole, verified.
pub async fn read_small_blob(repo: &Repository, desc: &Descriptor) -> Result<Bytes, RegistryError> {
    if desc.size > MAX_METADATA_BLOB as u64 {
        return Err(RegistryError::new(ErrorKind::Invalid, format!("blob {} is too large ({} bytes)", desc.digest, desc.size)));
    }
    let mut stream = repo.fetch_blob(desc).await?;
    let mut out = BytesMut::with_capacity(desc.size as usize);
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out.freeze())
}

/// The reference a pull or `/distribution` asks the registry for: the
/// digest, else the tag, else `latest`.
pub fn tag_or_digest(reference: &Reference) -> String {
    reference
        .digest
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| api_types::reference::DEFAULT_TAG.to_string())
}

fn api_platform(p: &registry::Platform) -> OciPlatform {
    OciPlatform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        os_version: p.os_version.clone(),
        variant: p.variant.clone(),
    }
}

impl ImageService {
    /// The daemon's registry client.
    pub(crate) fn registry(&self) -> Result<RegistryClient, ServiceError> {
        self.distribution()
            .map(|d| d.registry.clone())
            .ok_or_else(|| ServiceError::Internal("no registry client configured".into()))
    }

    /// A download (or upload) slot for `id`; says `Waiting` when it has
    /// to wait for one.
    pub(crate) async fn transfer_slot(
        &self,
        upload: bool,
        id: &str,
        progress: &Progress,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        let d = self.distribution().ok_or_else(|| ServiceError::Internal("no registry client configured".into()))?;
        let slots = if upload { d.uploads.clone() } else { d.downloads.clone() };
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        progress.update(id, "Waiting").await;
        slots.acquire_owned().await.map_err(|_| cancelled())
    }

    /// `GET /distribution/{name}/json`: the manifest descriptor the
    /// registry has for `name` and the platforms it covers.
    pub async fn distribution_inspect(&self, name: &str, credentials: &Credentials) -> Result<DistributionInspect, ServiceError> {
        let reference = super::parse_reference(name)?.with_default_tag();
        let (repo, desc) = self.registry()?.resolve(&reference, credentials).await.map_err(|e| pull_error(e, &reference))?;
        let body = repo.fetch_manifest(&desc).await.map_err(registry_error)?;
        let platforms = match Manifest::parse(&desc.media_type, &body).map_err(registry_error)? {
            Manifest::Index(index) => index.manifests.iter().filter_map(|m| m.platform.as_ref()).map(api_platform).collect(),
            Manifest::Image(manifest) => {
                let config = read_small_blob(&repo, &manifest.config).await.map_err(registry_error)?;
                let config: ImageConfig = serde_json::from_slice(&config)
                    .map_err(|e| ServiceError::Internal(format!("invalid image config {}: {e}", manifest.config.digest)))?;
                vec![OciPlatform {
                    architecture: config.architecture,
                    os: config.os,
                    os_version: config.os_version.unwrap_or_default(),
                    variant: config.variant.unwrap_or_default(),
                }]
            }
        };
        Ok(DistributionInspect {
            descriptor: api_types::image::OciDescriptor {
                media_type: desc.media_type,
                digest: desc.digest,
                size: desc.size as i64,
                annotations: None,
                platform: None,
            },
            platforms,
        })
    }

    /// `POST /auth`: check credentials against `server` (an address as the
    /// CLI sends it: `https://index.docker.io/v1/`, `127.0.0.1:5000`).
    /// Answers the identity token, if the registry issued one.
    pub async fn login(&self, server: &str, credentials: &Credentials) -> Result<String, ServiceError> {
        let domain = login_domain(server)?;
        match self.registry()?.login(&domain, credentials).await {
            Ok(login) => Ok(login.identity_token.unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::Unauthorized => Err(ServiceError::Unauthorized(e.to_string())),
            Err(e) => Err(registry_error(e)),
        }
    }

    /// What `docker search` gets from a daemon that cannot reach the index.
    /// berthd runs without access to an index, so this is the error an
    /// offline dockerd gives.
    pub fn search(&self, term: &str, limit: u32) -> Result<(), ServiceError> {
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("q", term).append_pair("n", &limit.to_string()).finish();
        Err(ServiceError::Internal(format!(
            "Get \"https://index.docker.io/v1/search?{query}\": dial tcp: lookup index.docker.io: no such host"
        )))
    }
}

/// The registry domain a login is for: `https://index.docker.io/v1/` and
/// friends are Docker Hub (`docker.io`); otherwise the host of the address.
pub fn login_domain(server: &str) -> Result<String, ServiceError> {
    let trimmed = server.trim();
    if trimmed.is_empty() {
        return Ok(api_types::reference::DEFAULT_DOMAIN.to_string());
    }
    let without_scheme = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")).unwrap_or(trimmed);
    let host = without_scheme.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(ServiceError::InvalidParameter(format!("unable to parse server address: {server}")));
    }
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => api_types::reference::DEFAULT_DOMAIN.to_string(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(512.0), "512B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1_048_576.0), "1.049MB");
        assert_eq!(human_size(2_100_000.0), "2.1MB");
        assert_eq!(human_size(999_950.0), "1000kB");
        assert_eq!(human_size(123_456_789.0), "123.5MB");
    }

    #[test]
    fn bars_follow_jsonprogress() {
        assert_eq!(progress_bar(0, 0), "");
        let half = progress_bar(500_000, 1_000_000);
        assert_eq!(half, format!("[{}>{}]    500kB/1MB", "=".repeat(25), " ".repeat(25)));
        let done = progress_bar(1_000_000, 1_000_000);
        assert!(done.starts_with(&format!("[{}>]", "=".repeat(50))), "{done}");
    }

    #[test]
    fn login_addresses_map_to_domains() {
        assert_eq!(login_domain("https://index.docker.io/v1/").unwrap(), "docker.io");
        assert_eq!(login_domain("").unwrap(), "docker.io");
        assert_eq!(login_domain("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        assert_eq!(login_domain("http://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000");
    }

    #[test]
    fn pull_errors_read_as_dockerd() {
        let r = Reference::parse_normalized("127.0.0.1:5000/x:nope").unwrap();
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let e = pull_error(RegistryError::from_response(404, body, "x"), &r);
        assert_eq!(e.to_string(), "manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: manifest unknown");
        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        let e = pull_error(RegistryError::from_response(403, body, "x"), &r);
        assert_eq!(
            e.to_string(),
            "pull access denied for 127.0.0.1:5000/x, repository does not exist or may require 'docker login': \
             denied: requested access to the resource is denied"
        );
        assert!(matches!(e, ServiceError::NotFound(_)));
    }
}
