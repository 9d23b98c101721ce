//! Checks on a create's mount requests (`Binds`, `Mounts`, `Tmpfs`) with
//! dockerd's texts, before anything is made; and inspect's `Mounts` entries
//! for the bind and tmpfs ones (volumes are in `volumes.rs`).

use std::collections::HashSet;

use serde_json::{json, Value};

use api_types::container::HostConfig;
use api_types::mount::Mount;

use crate::backends::oci_spec::{parse_bind, PROPAGATIONS};
use crate::services::volumes::LOCAL_DRIVER;
use crate::services::ServiceError;

/// A destination as dockerd compares them (`/x/` is `/x`).
pub fn clean(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/".into() } else { trimmed.to_string() }
}

fn mount_error(kind: &str, msg: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidParameter(format!("invalid mount config for type \"{kind}\": {msg}"))
}

fn check_destination(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("invalid mount path: '{path}' mount path must be absolute"));
    }
    if clean(path) == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(())
}

/// One `--mount` entry, as moby's `validateMountConfig` checks it.
fn check_mount(m: &Mount) -> Result<(), ServiceError> {
    let kind = m.kind.as_str();
    if !matches!(kind, "bind" | "volume" | "tmpfs") {
        return Err(mount_error(kind, "mount type unknown"));
    }
    if m.target.is_empty() {
        return Err(mount_error(kind, "field Target must not be empty"));
    }
    check_destination(&m.target).map_err(|e| mount_error(kind, e))?;
    let forbid = |present: bool, field: &str| if present { Err(mount_error(kind, format!("field {field} must not be specified"))) } else { Ok(()) };
    match kind {
        "bind" => {
            forbid(m.volume_options.is_some(), "VolumeOptions")?;
            if m.source.is_empty() {
                return Err(mount_error(kind, "field Source must not be empty"));
            }
            if !m.source.starts_with('/') {
                return Err(mount_error(kind, format!("invalid mount path: '{}' mount path must be absolute", m.source)));
            }
            if let Some(p) = m.bind_options.as_ref().map(|b| b.propagation.as_str()).filter(|p| !p.is_empty()) {
                if !PROPAGATIONS.contains(&p) {
                    return Err(mount_error(kind, format!("invalid propagation mode: {p}")));
                }
            }
            if std::fs::symlink_metadata(&m.source).is_err() {
                return Err(mount_error(kind, format!("bind source path does not exist: {}", m.source)));
            }
        }
        "volume" => {
            forbid(m.bind_options.is_some(), "BindOptions")?;
            forbid(m.tmpfs_options.is_some(), "TmpfsOptions")?;
            if m.source.is_empty() && m.read_only {
                return Err(mount_error(kind, "must not set ReadOnly mode when using anonymous volumes"));
            }
            if let Some(driver) = volume_driver(m).filter(|d| *d != LOCAL_DRIVER) {
                let name = if m.source.is_empty() { "" } else { &m.source };
                return Err(ServiceError::NotFound(format!(
                    "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
                )));
            }
        }
        _ => {
            forbid(!m.source.is_empty(), "Source")?;
            forbid(m.bind_options.is_some(), "BindOptions")?;
            forbid(m.volume_options.is_some(), "VolumeOptions")?;
            if m.tmpfs_options.as_ref().is_some_and(|t| t.size_bytes < 0) {
                return Err(mount_error(kind, "invalid tmpfs size"));
            }
        }
    }
    Ok(())
}

fn volume_driver(m: &Mount) -> Option<&str> {
    m.volume_options.as_ref()?.driver_config.as_ref().map(|d| d.name.as_str()).filter(|n| !n.is_empty())
}

fn duplicate(dest: &str) -> ServiceError {
    ServiceError::InvalidParameter(format!("Duplicate mount point: {dest}"))
}

/// One `Binds` entry as moby's `parseMountRaw` checks it, in its order and
/// words, for host paths and named volumes alike; returns the destination.
fn check_bind_spec(spec: &str) -> Result<&str, ServiceError> {
    let invalid = || ServiceError::InvalidParameter(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        // `/foo:rw` is a destination and a mode: no volume.
        [_, d] if valid_mode(d) => return Err(invalid()),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if !valid_mode(mode) {
        return Err(ServiceError::InvalidParameter(format!("invalid mode: {mode}")));
    }
    let kind = if source.starts_with('/') { "bind" } else { "volume" };
    let wrapped = |msg: String| {
        ServiceError::InvalidParameter(format!("invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": {msg}"))
    };
    check_destination(destination).map_err(wrapped)?;
    let opts: Vec<&str> = mode.split(',').collect();
    // `nocopy` is a volume option, a propagation a bind option.
    if kind == "bind" && opts.contains(&"nocopy") {
        return Err(wrapped("field VolumeOptions must not be specified".into()));
    }
    if kind == "volume" && opts.iter().any(|o| PROPAGATIONS.contains(o)) {
        return Err(wrapped("field BindOptions must not be specified".into()));
    }
    Ok(destination)
}

/// moby's `linuxValidMountMode`: known options, at most one of each kind.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let kinds: [&[&str]; 5] = [&["rw", "ro"], &["z", "Z"], PROPAGATIONS, &["nocopy"], &["consistent", "cached", "delegated"]];
    let mut counts = [0; 5];
    for opt in mode.split(',') {
        match kinds.iter().position(|k| k.contains(&opt)) {
            Some(i) => counts[i] += 1,
            None => return false,
        }
    }
    counts.iter().all(|c| *c <= 1)
}

/// Every destination absolute and not `/`, no two binds or mounts on one
/// destination (dockerd lets `Tmpfs` share one with `Mounts`, not with
/// `Binds`), `--mount` fields valid for their type and bind sources present.
pub fn validate(hc: &HostConfig) -> Result<(), ServiceError> {
    let tmpfs: HashSet<String> = hc.tmpfs.iter().flatten().map(|(d, _)| clean(d)).collect();
    for dest in hc.tmpfs.iter().flatten().map(|(d, _)| d) {
        check_destination(dest).map_err(ServiceError::InvalidParameter)?;
    }
    let mut taken = HashSet::new();
    for spec in hc.binds.iter().flatten() {
        let destination = check_bind_spec(spec)?;
        if spec.starts_with('/') {
            parse_bind(spec).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        }
        let dest = clean(destination);
        if tmpfs.contains(&dest) || !taken.insert(dest.clone()) {
            return Err(duplicate(&dest));
        }
    }
    for m in hc.mounts.iter().flatten() {
        check_mount(m)?;
        if !taken.insert(clean(&m.target)) {
            return Err(duplicate(&m.target));
        }
    }
    Ok(())
}

/// dockerd's validateBindDaemonRoot: a `--mount` bind whose source is in
/// the data root (or holds it) must not keep private copies of the mounts
/// there (volume filesystems, container roots), which would keep them busy:
/// without a propagation it gets `rslave`; one other than `rslave` or
/// `rshared` is refused.
pub fn bind_daemon_root(hc: &mut HostConfig, data_root: &std::path::Path) -> Result<(), ServiceError> {
    let root = data_root.display().to_string();
    for m in hc.mounts.iter_mut().flatten() {
        if m.kind != "bind" || !(m.source.starts_with(&root) || root.starts_with(&m.source)) {
            continue;
        }
        let options = m.bind_options.get_or_insert_with(Default::default);
        match options.propagation.as_str() {
            "" => options.propagation = "rslave".into(),
            "rslave" | "rshared" => {}
            other => {
                return Err(ServiceError::InvalidParameter(format!(
                    "invalid mount config: must use either propagation mode \"rslave\" or \"rshared\" when mount source is within the daemon root, daemon root: {root:?}, bind mount source: {:?}, propagation: {other:?}",
                    m.source
                )))
            }
        }
    }
    Ok(())
}

/// Create missing host directories for `-v /host:/dest` (dockerd does;
/// `--mount` refuses them instead, in `validate`).
pub fn create_bind_sources(hc: &HostConfig) -> Result<(), ServiceError> {
    for spec in hc.binds.iter().flatten() {
        let Ok(bind) = parse_bind(spec) else { continue };
        if std::fs::symlink_metadata(&bind.source).is_err() {
            std::fs::create_dir_all(&bind.source).map_err(|e| {
                ServiceError::InvalidParameter(format!("error while creating mount source path '{}': {e}", bind.source.display()))
            })?;
        }
    }
    Ok(())
}

/// Inspect's entry for a `--mount` bind or tmpfs (and an inherited bind).
pub fn bind_entry(m: &Mount) -> Value {
    if m.kind == "tmpfs" {
        return json!({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": "", "RW": !m.read_only, "Propagation": ""});
    }
    let propagation = m.bind_options.as_ref().map(|b| b.propagation.as_str()).filter(|p| !p.is_empty()).unwrap_or("rprivate");
    json!({"Type": "bind", "Source": m.source, "Destination": m.target, "Mode": "", "RW": !m.read_only, "Propagation": propagation})
}

/// Inspect's entries for host-path binds (`-v /h:/d` and `--mount
/// type=bind`) and `--mount type=tmpfs`, in that order.
pub fn inspect_entries(hc: &HostConfig) -> Vec<Value> {
    let binds = hc.binds.iter().flatten().filter_map(|b| parse_bind(b).ok()).map(|b| {
        json!({
            "Type": "bind", "Source": b.source, "Destination": b.destination,
            "Mode": b.mode, "RW": !b.read_only, "Propagation": b.propagation,
        })
    });
    let mounts = hc.mounts.iter().flatten().filter(|m| m.kind != "volume").map(bind_entry);
    binds.chain(mounts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_modes_as_moby_counts_them() {
        for good in ["", "ro", "rw,Z,rshared", "nocopy,ro,z,cached"] {
            assert!(valid_mode(good), "{good}");
        }
        for bad in ["bogus", "ro,rw", "z,Z", "shared,private", "cached,delegated", "ro,"] {
            assert!(!valid_mode(bad), "{bad}");
        }
        let text = |spec| match check_bind_spec(spec) {
            Err(ServiceError::InvalidParameter(t)) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(text("v:/x:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(text("/tmp:rw"), "invalid volume specification: '/tmp:rw'");
        assert!(text("v:/").ends_with("'v:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"));
        assert!(text("/a:/x:nocopy").ends_with("field VolumeOptions must not be specified"));
        assert!(text("v:/x:shared").ends_with("field BindOptions must not be specified"));
    }

    fn hc(value: Value) -> HostConfig {
        serde_json::from_value(value).unwrap()
    }

    fn err(value: Value) -> String {
        validate(&hc(value)).unwrap_err().to_string()
    }

    #[test]
    fn dockerd_texts_for_bad_mounts() {
        assert_eq!(
            err(json!({"Mounts": [{"Type": "bind", "Source": "/nonexistent-berthd", "Target": "/x"}]})),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berthd"
        );
        assert_eq!(
            err(json!({"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "x"}]})),
            "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute"
        );
        assert_eq!(err(json!({"Mounts": [{"Type": "foo", "Target": "/x"}]})), "invalid mount config for type \"foo\": mount type unknown");
        assert_eq!(
            err(json!({"Mounts": [{"Type": "tmpfs", "Target": "/x", "Source": "/y"}]})),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            err(json!({"Mounts": [{"Type": "volume", "Target": "/x", "ReadOnly": true}]})),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
        );
        assert_eq!(
            err(json!({"Mounts": [{"Type": "volume", "Source": "v1", "Target": "/"}]})),
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        );
        assert_eq!(err(json!({"Tmpfs": {"rel": ""}})), "invalid mount path: 'rel' mount path must be absolute");
    }

    #[test]
    fn duplicates_follow_dockerd() {
        let dup = "Duplicate mount point: /x";
        assert_eq!(err(json!({"Binds": ["/tmp:/x", "v1:/x/"]})), dup);
        assert_eq!(err(json!({"Binds": ["/tmp:/x"], "Mounts": [{"Type": "tmpfs", "Target": "/x"}]})), dup);
        assert_eq!(err(json!({"Binds": ["/tmp:/x"], "Tmpfs": {"/x": ""}})), dup);
        // dockerd lets a --tmpfs share a --mount's destination.
        assert!(validate(&hc(json!({"Tmpfs": {"/x": ""}, "Mounts": [{"Type": "tmpfs", "Target": "/x"}]}))).is_ok());
    }

    #[test]
    fn inspect_shows_binds_and_tmpfs() {
        let entries = inspect_entries(&hc(json!({
            "Binds": ["/h:/b:ro"],
            "Mounts": [{"Type": "bind", "Source": "/h", "Target": "/m", "ReadOnly": true, "BindOptions": {"Propagation": "rslave"}},
                       {"Type": "tmpfs", "Target": "/t"}]
        })));
        assert_eq!(entries[0], json!({"Type": "bind", "Source": "/h", "Destination": "/b", "Mode": "ro", "RW": false, "Propagation": "rprivate"}));
        assert_eq!(entries[1], json!({"Type": "bind", "Source": "/h", "Destination": "/m", "Mode": "", "RW": false, "Propagation": "rslave"}));
        assert_eq!(entries[2], json!({"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": true, "Propagation": ""}));
    }
}
