//! The one shared gRPC channel to containerd and the calls made on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient,
    namespaces_client::NamespacesClient,
    version_client::VersionClient, CreateNamespaceRequest,
    ListContainersRequest, ListContentRequest, Namespace,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

use super::error::{ContainerdError, ErrorKind};
use super::TaskState;

/// A handle on containerd: cheap to clone, all clones share one channel.
#[derive(Clone)]
pub struct Containerd {
    pub(super) channel: Channel,
    namespace: String,
    address: PathBuf,
    /// Every call made through this handle runs under this lease (see
    /// `leases.rs`), so what it creates survives GC until the lease goes.
    lease: Option<String>,
    /// Where images are unpacked and containers get their rootfs
    /// (`storage-driver`).
    pub(super) snapshotter: String,
    /// Calls that must run to their end (see `to_completion`); shared by
    /// every clone of this handle.
    uninterruptible: tokio_util::task::TaskTracker,
    /// The image records between changes (`image_cache.rs`); shared too.
    pub(super) image_cache: std::sync::Arc<super::image_cache::ImageCache>,
}

/// containerd's own version, as `/version` reports it.
#[derive(Debug, Clone, Default)]
pub struct RuntimeVersion {
    pub version: String,
    pub revision: String,
}

/// Counts that `/info` reports, read from containerd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerdSummary {
    pub containers: u64,
    pub running: u64,
    pub paused: u64,
    pub stopped: u64,
    pub images: u64,
}

impl Containerd {
    /// A lazily connected channel: it dials on first use and redials after
    /// containerd restarts, so one channel serves the daemon's whole life.
    pub fn new(address: &Path, namespace: &str) -> Result<Self, ContainerdError> {
        let socket = address.to_path_buf();
        let channel = Endpoint::from_static("http://[::]")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?)) }
            }));
        Ok(Self {
            channel,
            namespace: namespace.to_string(),
            address: address.to_path_buf(),
            lease: None,
            snapshotter: super::DEFAULT_SNAPSHOTTER.to_string(),
            uninterruptible: tokio_util::task::TaskTracker::new(),
            image_cache: Default::default(),
        })
    }

    /// Runs `call` to its end even when the caller goes away (a client
    /// that hangs up, the daemon stopping): containerd abandons a task
    /// delete cancelled midway with the runc container gone but its shim
    /// left running, for good. `settle` waits for these calls.
    pub(super) async fn to_completion<T: Send + 'static>(
        &self,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        self.uninterruptible.spawn(call).await
    }

    /// At shutdown: wait (up to `within`) for calls that must not be cut.
    pub async fn settle(&self, within: Duration) {
        self.uninterruptible.close();
        if tokio::time::timeout(within, self.uninterruptible.wait()).await.is_err() {
            tracing::warn!(calls = self.uninterruptible.len(), "containerd calls still running at shutdown");
        }
    }

    /// A handle on another snapshotter (from `storage-driver`).
    pub fn with_snapshotter(self, snapshotter: &str) -> Self {
        Self { snapshotter: snapshotter.to_string(), ..self }
    }

    pub fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    /// Whether containerd has this handle's snapshotter, loaded without
    /// error (`storage-driver` names one at start).
    pub async fn snapshotter_available(&self) -> Result<bool, ContainerdError> {
        use containerd_client::services::v1::{introspection_client::IntrospectionClient, PluginsRequest};
        let filter = format!("type==io.containerd.snapshotter.v1,id=={}", self.snapshotter);
        let plugins = IntrospectionClient::new(self.channel.clone())
            .plugins(PluginsRequest { filters: vec![filter] })
            .await
            .map_err(|s| ContainerdError::from_status("introspection.plugins", s))?
            .into_inner()
            .plugins;
        Ok(plugins.iter().any(|p| p.init_err.is_none()))
    }

    pub fn address(&self) -> &Path {
        &self.address
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The lease this handle's calls run under, if any.
    pub(super) fn lease_id(&self) -> Option<&str> {
        self.lease.as_deref()
    }

    /// A handle whose calls all run under `lease`.
    pub fn with_lease(&self, lease: &str) -> Self {
        Self { lease: Some(lease.to_string()), ..self.clone() }
    }

    pub(super) fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        if let Ok(ns) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", ns);
        }
        if let Some(lease) = self.lease.as_deref().and_then(|l| l.parse().ok()) {
            req.metadata_mut().insert("containerd-lease", lease);
        }
        req
    }

    pub async fn version(&self) -> Result<RuntimeVersion, ContainerdError> {
        let resp = VersionClient::new(self.channel.clone())
            .version(())
            .await
            .map_err(|s| ContainerdError::from_status("version", s))?
            .into_inner();
        Ok(RuntimeVersion { version: resp.version, revision: resp.revision })
    }

    /// Create our namespace unless it exists. (containerd 1.6 answers
    /// `Get` for a missing namespace without an error, so always create.)
    pub async fn ensure_namespace(&self) -> Result<(), ContainerdError> {
        let create = CreateNamespaceRequest {
            namespace: Some(Namespace { name: self.namespace.clone(), labels: Default::default() }),
        };
        match NamespacesClient::new(self.channel.clone()).create(self.request(create)).await {
            Ok(_) => Ok(()),
            Err(s) => match ContainerdError::from_status("namespaces.create", s) {
                e if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Containers by task state, and images, in our namespace.
    pub async fn summary(&self) -> Result<ContainerdSummary, ContainerdError> {
        let containers = ContainersClient::new(self.channel.clone())
            .list(self.request(ListContainersRequest { filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::from_status("containers.list", s))?
            .into_inner()
            .containers;
        let tasks = self.task_states().await?;
        let images = self.image_records().await?;
        let count = |wanted: TaskState| tasks.values().filter(|(state, _)| *state == wanted).count() as u64;
        let total = containers.len() as u64;
        let running = count(TaskState::Running);
        let paused = count(TaskState::Paused);
        Ok(ContainerdSummary {
            containers: total,
            running,
            paused,
            stopped: total.saturating_sub(running + paused),
            images: images.len() as u64,
        })
    }

    /// Bytes held in the content store for our namespace.
    pub async fn content_size(&self) -> Result<i64, ContainerdError> {
        let mut stream = ContentClient::new(self.channel.clone())
            .list(self.request(ListContentRequest { filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::from_status("content.list", s))?
            .into_inner();
        let mut total = 0i64;
        while let Some(page) = stream
            .message()
            .await
            .map_err(|s| ContainerdError::from_status("content.list", s))?
        {
            total += page.info.iter().map(|i| i.size).sum::<i64>();
        }
        Ok(total)
    }
}
