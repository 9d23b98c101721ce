//! SIGHUP: read the configuration again and apply what dockerd reloads. A
//! file that does not load, or a registry setting that does not parse,
//! leaves the running configuration untouched (the reason goes to the log).

use std::sync::Arc;

use api_types::events::{EventActor, TYPE_DAEMON};

use crate::cli::Cli;
use crate::config::{self, reload};
use crate::services::images::ImageService;
use crate::services::containers::ContainerService;
use crate::services::events::EventBus;
use crate::services::system::SystemService;

/// What a reload touches.
pub struct Reloader {
    pub cli: Cli,
    pub system: Arc<SystemService>,
    pub images: Arc<ImageService>,
    pub containers: Arc<ContainerService>,
    pub events: EventBus,
}

impl Reloader {
    pub fn reload(&self) {
        crate::sd_notify::reloading();
        let running = self.system.config();
        tracing::info!(config_file = %running.config_file.display(), "Got signal to reload configuration");
        match self.try_reload(&running) {
            Ok(()) => {}
            Err(reason) => tracing::error!(error = %reason, "Error reloading configuration; keeping the running configuration"),
        }
        crate::sd_notify::ready();
    }

    fn try_reload(&self, running: &config::Config) -> Result<(), String> {
        let loaded = config::load(&self.cli).map_err(|e| e.to_string())?;
        let reloaded = reload::apply(running, &loaded);
        let next = reloaded.config;
        // The fallible part first: nothing changes unless everything parses.
        let registry = crate::daemon::registry_client(&next)?;
        self.images.set_registry(registry, next.max_concurrent_downloads, next.max_concurrent_uploads);
        self.containers.set_defaults(with_host_defaults(next.container_defaults.clone()));
        crate::logging::set_level(next.debug, &next.log_level);
        self.system.set_config(Arc::new(next));
        for change in &reloaded.changes {
            tracing::info!(key = change.key, old = %change.old, new = %change.new, "configuration changed");
        }
        let mut attributes = reloaded.attributes;
        attributes.insert("name".into(), crate::backends::host::HostInfo::read().hostname);
        let actor = EventActor { id: self.system.engine_id().to_string(), attributes };
        self.events.publish(TYPE_DAEMON, "reload", actor);
        tracing::info!(changed = reloaded.changes.len(), "Reloaded configuration");
        Ok(())
    }
}

fn with_host_defaults(defaults: config::container_defaults::ContainerDefaults) -> config::container_defaults::ContainerDefaults {
    crate::daemon::container_defaults_for_host(defaults)
}
