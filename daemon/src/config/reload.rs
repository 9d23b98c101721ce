//! What SIGHUP changes: dockerd's `Daemon.Reload` rules on a freshly loaded
//! configuration. Pure: applying the result is the daemon's job.

use std::collections::BTreeMap;

use super::container_defaults::ContainerDefaults;
use super::Config;

/// The configuration to run with after a reload, what changed (for the log)
/// and the attributes of the daemon `reload` event.
#[derive(Debug)]
pub struct Reloaded {
    pub config: Config,
    pub changes: Vec<Change>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub old: String,
    pub new: String,
}

/// Start from `running`; take from `loaded` each reloadable key its file
/// sets (a key the file leaves out keeps its running value, as dockerd's
/// `IsValueSet`), except the transfer limits, which fall back to their
/// defaults.
pub fn apply(running: &Config, loaded: &Config) -> Reloaded {
    let set = |key: &str| loaded.file_keys.contains(key);
    let mut next = running.clone();
    if set("debug") {
        next.debug = loaded.debug;
    }
    if set("log-level") {
        next.log_level = loaded.log_level.clone();
    }
    next.max_concurrent_downloads = loaded.max_concurrent_downloads;
    next.max_concurrent_uploads = loaded.max_concurrent_uploads;
    if set("shutdown-timeout") {
        next.shutdown_timeout = loaded.shutdown_timeout;
    }
    if set("labels") {
        next.labels = loaded.labels.clone();
    }
    if set("insecure-registries") {
        next.insecure_registries = loaded.insecure_registries.clone();
    }
    if set("registry-mirrors") {
        next.registry_mirrors = loaded.registry_mirrors.clone();
    }
    if set("live-restore") {
        next.live_restore = loaded.live_restore;
    }
    reload_container_defaults(&mut next.container_defaults, &loaded.container_defaults, set);
    let changes = changes(running, &next);
    let attributes = attributes(&next);
    Reloaded { config: next, changes, attributes }
}

/// dockerd's `reloadPlatform`: runtimes and the namespace/shm defaults.
fn reload_container_defaults(next: &mut ContainerDefaults, loaded: &ContainerDefaults, set: impl Fn(&str) -> bool) {
    if set("default-runtime") {
        next.default_runtime = loaded.default_runtime.clone();
    }
    if set("runtimes") {
        next.runtimes = loaded.runtimes.clone();
    }
    if set("default-shm-size") {
        next.shm_size = loaded.shm_size;
    }
    if set("default-ipc-mode") {
        next.ipc_mode = loaded.ipc_mode.clone();
    }
    if set("default-cgroupns-mode") {
        next.cgroupns_mode = loaded.cgroupns_mode.clone();
    }
}

/// The reloadable values by dockerd's key, as the event and the log show them.
fn reloadable(c: &Config) -> Vec<(&'static str, String)> {
    let d = &c.container_defaults;
    vec![
        ("debug", c.debug.to_string()),
        ("log-level", c.log_level.clone()),
        ("max-concurrent-downloads", c.max_concurrent_downloads.to_string()),
        ("max-concurrent-uploads", c.max_concurrent_uploads.to_string()),
        ("shutdown-timeout", c.shutdown_timeout.to_string()),
        ("labels", json_list(&c.labels)),
        ("insecure-registries", json_list(&c.insecure_registries)),
        ("registry-mirrors", json_list(&c.registry_mirrors)),
        ("live-restore", c.live_restore.to_string()),
        ("runtimes", d.runtimes.iter().map(|(name, rt)| format!("{name}:{}", rt.path)).collect::<Vec<_>>().join(" ")),
        ("default-runtime", d.default_runtime.clone()),
        ("default-shm-size", shm_size(d.shm_size).to_string()),
        ("default-ipc-mode", d.ipc_mode.clone()),
        ("default-cgroupns-mode", d.cgroupns_mode.clone()),
    ]
}

fn changes(old: &Config, new: &Config) -> Vec<Change> {
    reloadable(old)
        .into_iter()
        .zip(reloadable(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((key, old), (_, new))| Change { key, old, new })
        .collect()
}

/// The `reload` event's attributes: dockerd's keys (log-level is not one of
/// them) plus the two it always reports at their fixed values here.
fn attributes(c: &Config) -> BTreeMap<String, String> {
    let mut attrs: BTreeMap<String, String> =
        reloadable(c).into_iter().filter(|(k, _)| *k != "log-level").map(|(k, v)| (k.to_string(), v)).collect();
    attrs.insert("max-download-attempts".into(), "5".into());
    attrs.insert("features".into(), "map[]".into());
    attrs
}

/// dockerd's 64 MiB when unset.
fn shm_size(configured: i64) -> i64 {
    if configured > 0 {
        configured
    } else {
        64 * 1024 * 1024
    }
}

/// Lists as dockerd's `marshalAttributeSlice`: JSON, `[]` when empty.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn load(json: &str) -> Config {
        let parsed = crate::config::daemon_json::parse(json).unwrap();
        let cli = Cli::try_parse_from(["berthd"]).unwrap();
        crate::config::merge::merge(&cli, parsed, std::path::Path::new("f")).unwrap()
    }

    #[test]
    fn keys_the_file_sets_change_and_others_keep_running_values() {
        let running = load(r#"{"labels": ["a=1"], "debug": true, "max-concurrent-downloads": 7}"#);
        let loaded = load(r#"{"registry-mirrors": ["https://m.example"]}"#);
        let r = apply(&running, &loaded);
        assert_eq!(r.config.labels, ["a=1"]);
        assert!(r.config.debug);
        assert_eq!(r.config.registry_mirrors, ["https://m.example/"]);
        // Transfer limits fall back to their defaults.
        assert_eq!(r.config.max_concurrent_downloads, 3);
        let keys: Vec<&str> = r.changes.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["max-concurrent-downloads", "registry-mirrors"]);
        assert_eq!(r.attributes["registry-mirrors"], r#"["https://m.example/"]"#);
        assert_eq!(r.attributes["labels"], r#"["a=1"]"#);
        assert_eq!(r.attributes["debug"], "true");
        assert!(!r.attributes.contains_key("log-level"));
    }

    #[test]
    fn keys_that_are_not_reloadable_keep_running_values() {
        let running = load(r#"{"log-driver": "json-file"}"#);
        let loaded = load(r#"{"log-driver": "local", "data-root": "/elsewhere", "live-restore": true}"#);
        let r = apply(&running, &loaded);
        assert_eq!(r.config.container_defaults.log_driver, "json-file");
        assert_eq!(r.config.data_root, running.data_root);
        assert!(r.config.live_restore);
    }
}
