//! Start-up and shutdown: the order in which the daemon comes up and goes
//! down.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::backends::containerd::supervisor::{self, ManagedContainerd};
use crate::backends::containerd::Containerd;
use crate::backends::registry::RegistryClient;
use crate::backends::store;
use crate::config::{Config, DEFAULT_CONTAINERD_SOCKET};
use crate::pidfile::PidFile;
use crate::server::{self, listeners};
use crate::services::containers::ContainerService;
use crate::services::events::EventBus;
use crate::services::networks::{DnsDefaults, NetworkService};
use crate::services::volumes::VolumeService;
use crate::services::{images::ImageService, system::SystemService, Services};

/// Load the TLS material now so that `--validate` and start-up report a bad
/// certificate the same way.
pub fn check_tls(config: &Config) -> Result<(), String> {
    match &config.tls {
        Some(tls) => server::tls::acceptor(tls).map(|_| ()).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// The registry client for `registry-mirrors` and `insecure-registries`;
/// a bad value stops start-up with dockerd's text.
pub fn registry_client(config: &Config) -> Result<RegistryClient, String> {
    RegistryClient::new(&config.registry_mirrors, &config.insecure_registries).map_err(|e| {
        if e.to_string().starts_with("invalid mirror") {
            format!(
                "unable to configure the Docker daemon with file {}: merged configuration validation from file and command line flags failed: {e}",
                config.config_file.display()
            )
        } else {
            format!("failed to start daemon: {e}")
        }
    })
}

pub async fn run(config: Config, cli: crate::cli::Cli) -> Result<()> {
    tracing::info!(version = crate::release::VERSION, "starting up");
    for key in &config.ignored_keys {
        tracing::warn!(key = %key, "daemon.json key is not supported by berthd yet and is ignored");
    }
    check_tls(&config).map_err(anyhow::Error::msg)?;
    if let Err(e) = crate::backends::host::raise_open_files_limit() {
        tracing::warn!(error = %e, "could not raise the open files limit");
    }
    let registry = registry_client(&config).map_err(anyhow::Error::msg)?;
    let pidfile = PidFile::create(&config.pidfile)?;
    let mut managed = None;
    let result = serve_until_signal(&config, cli, registry, &mut managed).await;
    if let Some(m) = managed {
        m.shutdown().await;
    }
    pidfile.remove();
    if result.is_ok() {
        tracing::info!("daemon shutdown complete");
    }
    result
}

async fn serve_until_signal(
    config: &Config,
    cli: crate::cli::Cli,
    registry: RegistryClient,
    managed: &mut Option<ManagedContainerd>,
) -> Result<()> {
    for dir in [&config.data_root, &config.exec_root] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let address = containerd_address(config, managed).await?;
    let containerd = Containerd::new(&address, &config.containerd_namespace)?.with_snapshotter(&config.snapshotter);
    containerd
        .ensure_namespace()
        .await
        .with_context(|| format!("failed to dial containerd at {}", address.display()))?;
    // dockerd's words for a graph driver it cannot use.
    if !containerd.snapshotter_available().await.context("asking containerd for its snapshotters")? {
        anyhow::bail!("error initializing graphdriver: driver not supported: {}", config.snapshotter);
    }
    containerd.watch_images();
    let begun = std::time::Instant::now();
    let engine_id = store::engine_id(&config.data_root)
        .with_context(|| format!("reading engine ID under {}", config.data_root.display()))?;
    let config = Arc::new(config.clone());
    let events = EventBus::new();
    let images = Arc::new(ImageService::new(containerd.clone()).with_events(events.clone()).with_registry(
        registry,
        config.max_concurrent_downloads,
        config.max_concurrent_uploads,
    ));
    if let Err(e) = images.reconcile().await {
        tracing::warn!(error = %e, "could not drop leases left by interrupted image ingestions");
    }
    let volumes = Arc::new(VolumeService::load(&config.data_root).context("loading volumes")?.with_events(events.clone()));
    let networks = Arc::new(
        NetworkService::load(config.data_root.clone(), config.exec_root.clone(), config.network.clone(), events.clone())
            .await
            .context("loading networks")?
            .with_dns_defaults(DnsDefaults {
                servers: config.dns.clone(),
                search: config.dns_search.clone(),
                options: config.dns_opts.clone(),
            }),
    );
    tracing::debug!(took_ms = begun.elapsed().as_millis() as u64, "images, volumes and networks loaded");
    let containers = ContainerService::load(containerd.clone(), images.clone(), config.data_root.clone(), config.exec_root.clone(), events.clone(), volumes.clone(), networks.clone(), container_defaults(&config))
        .await
        .context("loading containers")?;
    let system = Arc::new(SystemService::new(config.clone(), containerd.clone(), engine_id).with_images(images.clone()).with_volumes(volumes.clone()).with_containers(containers.clone()));
    let reloader = crate::reload::Reloader {
        cli,
        system: system.clone(),
        images: images.clone(),
        containers: containers.clone(),
        events: events.clone(),
    };
    let services = Services {
        system: system.clone(),
        build: Arc::new(crate::services::build::BuildService::new(images.clone(), containers.clone(), &config.data_root)),
        images,
        containers: containers.clone(),
        networks: networks.clone(),
        volumes,
        events,
    };
    let app = server::router::build(services);
    let bound = listeners::bind_all(&config).await.context("failed to load listeners")?;
    if let Some(addr) = &config.metrics_addr {
        let listener = server::metrics::bind(addr).await.map_err(anyhow::Error::msg)?;
        tracing::info!(addr = %addr, "serving metrics");
        server::metrics::serve(listener, system.clone());
    }
    let sockets: Vec<PathBuf> = bound
        .iter()
        .filter_map(|l| match l {
            server::Listener::Unix { path, .. } => path.clone(),
            _ => None,
        })
        .collect();
    let (stop, stopped) = watch::channel(false);
    // Installed before the first request is served: a SIGINT or SIGTERM
    // that comes right after would otherwise still kill the process.
    let signals = Signals::install();
    tokio::spawn(async move {
        wait_for_signal(signals, &reloader).await;
        let _ = stop.send(true);
    });
    tracing::info!(
        containerd.address = %address.display(),
        containerd.namespace = %config.containerd_namespace,
        "daemon has completed initialization"
    );
    crate::sd_notify::ready();
    let in_flight = server::serve(bound, app, stopped).await;
    // The settings in force now: a reload may have changed them.
    let config = system.config();
    containers.shutdown(config.live_restore, config.shutdown_timeout).await;
    networks.shutdown(config.live_restore).await;
    in_flight.wait().await;
    containerd.settle(std::time::Duration::from_secs(10)).await;
    listeners::remove_sockets(&sockets);
    Ok(())
}

/// `--containerd` if given; else the system containerd if it answers; else
/// one of our own.
async fn containerd_address(config: &Config, managed: &mut Option<ManagedContainerd>) -> Result<PathBuf> {
    if let Some(address) = &config.containerd {
        return Ok(address.clone());
    }
    let system = PathBuf::from(DEFAULT_CONTAINERD_SOCKET);
    if supervisor::answers(&system).await {
        return Ok(system);
    }
    tracing::info!("no containerd answers at {}; starting our own", system.display());
    let own = ManagedContainerd::start(&config.exec_root, &config.data_root).await?;
    let socket = own.socket().to_path_buf();
    *managed = Some(own);
    Ok(socket)
}

/// The signals berthd handles; each is caught from the moment its stream
/// is made.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Option<Self> {
        let (Ok(term), Ok(int), Ok(hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            tracing::error!("cannot install signal handlers; stop berthd with SIGKILL");
            return None;
        };
        Some(Self { term, int, hup })
    }
}

/// Reload on SIGHUP until SIGTERM or SIGINT.
async fn wait_for_signal(signals: Option<Signals>, reloader: &crate::reload::Reloader) {
    let Some(Signals { mut term, mut int, mut hup }) = signals else {
        return std::future::pending().await;
    };
    let name = loop {
        tokio::select! {
            _ = term.recv() => break "terminated",
            _ = int.recv() => break "interrupt",
            _ = hup.recv() => reloader.reload(),
        }
    };
    tracing::info!("processing signal '{name}'");
    crate::sd_notify::stopping();
}

/// The configured container defaults, with the host's default cgroup
/// namespace mode filled in (dockerd: host on cgroup v1, private on v2).
fn container_defaults(config: &Config) -> crate::config::container_defaults::ContainerDefaults {
    container_defaults_for_host(config.container_defaults.clone())
}

pub fn container_defaults_for_host(
    mut defaults: crate::config::container_defaults::ContainerDefaults,
) -> crate::config::container_defaults::ContainerDefaults {
    if defaults.cgroupns_mode.is_empty() {
        let v2 = crate::backends::host::cgroup_version() == "2";
        defaults.cgroupns_mode = if v2 { "private" } else { "host" }.to_string();
    }
    defaults
}
