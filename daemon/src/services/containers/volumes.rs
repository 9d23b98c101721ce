//! The volumes a container mounts: named ones from `Binds` (`name:/path`),
//! anonymous ones for `Config.Volumes` (`-v /path` and the image's
//! `VOLUME`s). Planned before the container is recorded, resolved to host
//! directories before the spec is made (the spec generator stays pure),
//! filled from the image when new and empty, and released on removal.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use api_types::container::{ContainerConfig, HostConfig};

use super::mounts::clean;
use super::record::Container;
use super::user::RootfsFiles;
use super::ContainerService;
use crate::services::volumes::{check_driver_opts, generate_name, validate_name, LOCAL_DRIVER};
use crate::services::ServiceError;

/// One volume mounted into a container, as recorded with the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
    /// Made for this container (`-v /path`, image `VOLUME`): `rm -v` removes it.
    pub anonymous: bool,
    pub read_only: bool,
    /// The mode as given (`ro`, `rw,nocopy`, …); dockerd shows `z` when
    /// none was given for a named volume.
    pub mode: String,
    /// Fill a new, empty volume from the image (not with `nocopy`).
    pub copy_up: bool,
    /// Labels and driver options for a volume this mount creates
    /// (`--mount volume-label=…,volume-opt=…`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Mount only this path inside the volume (`volume-subpath`, API 1.45).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

impl VolumeMount {
    /// The `Mounts` entry of container inspect.
    pub fn inspect(&self, source: &Path) -> serde_json::Value {
        serde_json::json!({
            "Type": "volume", "Name": self.name, "Source": source, "Destination": self.destination,
            "Driver": LOCAL_DRIVER, "Mode": self.mode, "RW": !self.read_only, "Propagation": "",
        })
    }
}

/// The volumes a create asks for (`-v name:/dest`, `--mount type=volume`,
/// `Config.Volumes`). Pure: names are checked and anonymous ones named,
/// nothing is created. Destinations were checked by `mounts::validate`.
pub fn plan(config: &ContainerConfig, hc: &HostConfig, inherited: &HashSet<String>) -> Result<Vec<VolumeMount>, ServiceError> {
    let mut mounts = Vec::new();
    let mut destinations = inherited.clone();
    for bind in hc.binds.iter().flatten() {
        let parts: Vec<&str> = bind.split(':').collect();
        let (source, destination, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            // Malformed specs are refused by the spec generator with dockerd's text.
            _ => continue,
        };
        destinations.insert(clean(destination));
        if source.is_empty() || source.starts_with('/') {
            continue;
        }
        validate_name(source).map_err(|e| ServiceError::InvalidParameter(format!("create {source}: {e}")))?;
        if !destination.starts_with('/') {
            return Err(ServiceError::InvalidParameter(format!("invalid volume specification: '{bind}'")));
        }
        let opts: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
        mounts.push(VolumeMount {
            name: source.to_string(),
            destination: destination.to_string(),
            anonymous: false,
            read_only: opts.contains(&"ro"),
            mode: if mode.is_empty() { "z".into() } else { mode.to_string() },
            copy_up: !opts.contains(&"nocopy"),
            labels: BTreeMap::new(),
            driver_opts: None,
            subpath: String::new(),
        });
    }
    for m in hc.mounts.iter().flatten() {
        destinations.insert(clean(&m.target));
        if m.kind != "volume" {
            continue;
        }
        let anonymous = m.source.is_empty();
        let name = if anonymous { generate_name() } else { m.source.clone() };
        validate_name(&name).map_err(|e| ServiceError::InvalidParameter(format!("create {name}: {e}")))?;
        let options = m.volume_options.clone().unwrap_or_default();
        if !options.subpath.is_empty() {
            let invalid = |why: &str| ServiceError::InvalidParameter(format!("invalid mount config for type \"volume\": {why}"));
            if anonymous {
                return Err(invalid("must not set Subpath when using anonymous volumes"));
            }
            if !is_local(&options.subpath) {
                return Err(invalid("subpath must be a relative path within the volume"));
            }
        }
        let driver_opts = options.driver_config.and_then(|d| d.options).filter(|o| !o.is_empty());
        check_driver_opts(&name, driver_opts.as_ref())?;
        mounts.push(VolumeMount {
            name,
            destination: m.target.clone(),
            anonymous,
            read_only: m.read_only,
            mode: "z".into(),
            copy_up: !options.no_copy,
            labels: options.labels.unwrap_or_default(),
            driver_opts,
            subpath: options.subpath.clone(),
        });
    }
    for path in config.volumes.iter().flat_map(|v| v.keys()) {
        if !path.starts_with('/') {
            return Err(ServiceError::InvalidParameter(format!(
                "invalid mount config for type \"volume\": invalid mount path: '{path}' mount path must be absolute"
            )));
        }
        if !destinations.insert(clean(path)) {
            continue;
        }
        mounts.push(VolumeMount {
            name: generate_name(),
            destination: path.clone(),
            anonymous: true,
            read_only: false,
            mode: String::new(),
            copy_up: true,
            labels: BTreeMap::new(),
            driver_opts: None,
            subpath: String::new(),
        });
    }
    Ok(mounts)
}

/// Go's `filepath.IsLocal`: relative, not empty, and never climbing above
/// where it starts.
fn is_local(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') {
        return false;
    }
    let mut depth = 0usize;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

impl ContainerService {
    /// Create missing volumes, take references, copy the image's content
    /// into new empty ones, and answer the host config the spec is made
    /// from: named-volume binds replaced by their host directories.
    pub(super) async fn attach_volumes(&self, record: &Container, files: &RootfsFiles) -> Result<HostConfig, ServiceError> {
        let mut host_config = record.host_config.clone();
        if record.volumes.is_empty() {
            return Ok(host_config);
        }
        let named: BTreeSet<&str> = record.volumes.iter().filter(|v| !v.anonymous).map(|v| v.name.as_str()).collect();
        let mut binds: Vec<String> = host_config
            .binds
            .iter()
            .flatten()
            .filter(|b| !b.split(':').next().is_some_and(|s| named.contains(s)))
            .cloned()
            .collect();
        for (i, mount) in record.volumes.iter().enumerate() {
            let (volume_path, _) = self.volumes.acquire(&mount.name, mount.anonymous, &mount.labels, mount.driver_opts.as_ref(), &record.id)?;
            // A subpath is resolved at each start and bound here (see
            // `mount_volumes`), so the spec never names a path in the volume.
            let path = if mount.subpath.is_empty() { volume_path.clone() } else { self.subpath_mountpoint(&record.id, i) };
            if mount.copy_up {
                // Into the volume's own filesystem when it has one (mounted
                // for the copy only, as dockerd's CopyImagePathToVolume).
                self.volumes.mount(&mount.name)?;
                let layers = files.layers().to_vec();
                let (dest, name, volume, subpath) = (mount.destination.clone(), mount.name.clone(), volume_path.clone(), mount.subpath.clone());
                let copied = tokio::task::spawn_blocking(move || copy_up_into(&layers, &dest, &name, &volume, &subpath)).await;
                self.volumes.unmount(&mount.name);
                copied.map_err(|e| ServiceError::Internal(format!("copying image content into volume {}: {e}", mount.name)))??;
            }
            let access = if mount.read_only { "ro" } else { "rw" };
            binds.push(format!("{}:{}:{access}", path.display(), mount.destination));
        }
        host_config.binds = Some(binds);
        let mut mounts = host_config.mounts.take().unwrap_or_default();
        mounts.retain(|m| m.kind != "volume");
        mounts.extend(record.inherited_binds.iter().cloned());
        host_config.mounts = Some(mounts);
        Ok(host_config)
    }

    /// Mount the filesystems of the container's volumes that have options
    /// and bind their subpaths (before its task starts); on failure, those
    /// mounted are let go.
    pub(super) fn mount_volumes(&self, record: &Container) -> Result<(), ServiceError> {
        for (i, v) in record.volumes.iter().enumerate() {
            let mounted = self.volumes.mount(&v.name).and_then(|path| {
                if v.subpath.is_empty() {
                    return Ok(());
                }
                let bound = self.bind_subpath(&path, &v.subpath, &self.subpath_mountpoint(&record.id, i));
                if bound.is_err() {
                    self.volumes.unmount(&v.name);
                }
                bound
            });
            if let Err(e) = mounted {
                self.unmount_volumes(&record.id, &record.volumes[..i]);
                return Err(e);
            }
        }
        Ok(())
    }

    fn bind_subpath(&self, volume: &Path, subpath: &str, target: &Path) -> Result<(), ServiceError> {
        use crate::backends::mount::{bind_fd, open_beneath, BeneathError};
        let fd = open_beneath(volume, subpath).map_err(|e| match e {
            BeneathError::NotAccessible(m) => ServiceError::NotFound(m),
            BeneathError::Escapes(m) => ServiceError::InvalidParameter(m),
            BeneathError::Other(m) => ServiceError::Internal(m),
        })?;
        bind_fd(&fd, target).map_err(|e| ServiceError::Internal(format!("failed to mount resolved path: {e}")))
    }

    /// Where a volume's subpath is bound for the runtime.
    fn subpath_mountpoint(&self, id: &str, index: usize) -> PathBuf {
        self.container_dir(id).join("subpaths").join(index.to_string())
    }

    /// Let go of what `mount_volumes` mounted (a start that failed, an
    /// exit, a removal).
    pub(super) fn unmount_volumes(&self, id: &str, mounts: &[VolumeMount]) {
        for (i, v) in mounts.iter().enumerate() {
            self.volumes.unmount(&v.name);
            self.unbind_subpath(id, i, v);
        }
    }

    /// Unbind a subpath; needed before the container's directory goes,
    /// which must never reach into a volume.
    pub(super) fn unbind_subpath(&self, id: &str, index: usize, v: &VolumeMount) {
        if !v.subpath.is_empty() {
            crate::backends::mount::unmount_all(&self.subpath_mountpoint(id, index));
        }
    }

    /// Drop the container's references; with `remove_anonymous`, remove its
    /// anonymous volumes too (`rm -v`, `--rm`), unless another container
    /// uses them.
    pub(super) async fn detach_volumes(&self, record: &Container, remove_anonymous: bool) {
        for mount in &record.volumes {
            self.volumes.release(&mount.name, &record.id);
        }
        if !remove_anonymous {
            return;
        }
        for mount in record.volumes.iter().filter(|m| m.anonymous) {
            if let Err(e) = self.volumes.remove(&mount.name, true).await {
                tracing::warn!(container.id = %record.id, volume.name = %mount.name, error = %e, "keeping anonymous volume");
            }
        }
    }

    /// The `Mounts` of inspect and list: binds, tmpfs, volumes, inherited binds.
    pub(super) fn mount_points(&self, record: &Container) -> Vec<serde_json::Value> {
        let own = super::mounts::inspect_entries(&record.host_config);
        let volumes = record.volumes.iter().map(|m| m.inspect(&self.volumes.data_path(&m.name)));
        let inherited = record.inherited_binds.iter().map(super::mounts::bind_entry);
        own.into_iter().chain(volumes).chain(inherited).collect()
    }
}

/// Copy-up for a volume mount, as moby's `populateVolume`: only for a
/// directory in the image; with a subpath, into that part of the volume
/// (resolved as at start) when it exists, and a subpath that leaves the
/// volume fails the create. Blocking.
fn copy_up_into(layers: &[PathBuf], dest: &str, name: &str, volume: &Path, subpath: &str) -> Result<(), ServiceError> {
    use crate::backends::mount::{open_beneath, BeneathError};
    let failed = |e: std::io::Error| ServiceError::Internal(format!("copying image content into volume {name}: {e}"));
    if subpath.is_empty() {
        return copy_up(layers, dest, volume).map_err(failed);
    }
    if !image_has_dir(layers, dest) {
        return Ok(());
    }
    let held = match open_beneath(volume, subpath) {
        Ok(fd) => fd,
        // Made later, or never: start reports it.
        Err(BeneathError::NotAccessible(_)) => return Ok(()),
        Err(BeneathError::Escapes(m)) => return Err(ServiceError::InvalidParameter(format!("failed to populate volume: {m}"))),
        Err(BeneathError::Other(m)) => return Err(ServiceError::Internal(format!("failed to populate volume: {m}"))),
    };
    // Through the handle: exactly the directory that was checked.
    let target = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held)));
    copy_up(layers, dest, &target).map_err(failed)
}

/// Whether the image (its layers, top first) has a directory at `dest`.
fn image_has_dir(layers: &[PathBuf], dest: &str) -> bool {
    let rel = dest.trim_start_matches('/');
    for layer in layers {
        match std::fs::symlink_metadata(layer.join(rel)) {
            Ok(m) => return m.is_dir(),
            Err(_) => continue,
        }
    }
    false
}

/// Copy the image's directory at `dest` into the volume directory `target`
/// when the volume is empty, merging the layers (top first) as overlayfs
/// would: whiteouts hide, opaque directories stop the merge. Ownership and
/// modes are kept. Blocking.
pub fn copy_up(layers: &[PathBuf], dest: &str, target: &Path) -> std::io::Result<()> {
    if std::fs::read_dir(target)?.next().is_some() {
        return Ok(());
    }
    let rel = PathBuf::from(dest.trim_start_matches('/'));
    copy_dir(layers, &rel, target, true)
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    xattr_is_y(path, "trusted.overlay.opaque") || xattr_is_y(path, "user.overlay.opaque")
}

fn xattr_is_y(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (std::ffi::CString::new(path.as_os_str().as_bytes()), std::ffi::CString::new(name)) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // buffer's length is passed with it.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    len == 1 && buf[0] == b'y'
}

/// Merge directory `rel` of `layers` into `target` (which exists).
fn copy_dir(layers: &[PathBuf], rel: &Path, target: &Path, is_root: bool) -> std::io::Result<()> {
    // The layers that contribute to this directory, top first.
    let mut contributing = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let path = layer.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                if contributing.is_empty() {
                    std::fs::set_permissions(target, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
                    if is_root {
                        // The top may be a handle's /proc/self/fd path: followed.
                        std::os::unix::fs::chown(target, Some(m.uid()), Some(m.gid()))?;
                    } else {
                        std::os::unix::fs::lchown(target, Some(m.uid()), Some(m.gid()))?;
                    }
                }
                contributing.push(i);
                if is_opaque(&path) {
                    break;
                }
            }
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    if contributing.is_empty() && !is_root {
        return Ok(());
    }
    let mut seen = HashSet::new();
    for &i in &contributing {
        for entry in std::fs::read_dir(layers[i].join(rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if !seen.insert(name.clone()) {
                continue;
            }
            let meta = entry.metadata()?;
            if is_whiteout(&meta) {
                continue;
            }
            let child_rel = rel.join(&name);
            let child_target = target.join(&name);
            let ft = meta.file_type();
            if ft.is_dir() {
                std::fs::create_dir(&child_target)?;
                copy_dir(&layers[i..], &child_rel, &child_target, false)?;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &child_target)?;
                std::os::unix::fs::lchown(&child_target, Some(meta.uid()), Some(meta.gid()))?;
            } else if ft.is_file() {
                std::fs::copy(entry.path(), &child_target)?;
                std::os::unix::fs::lchown(&child_target, Some(meta.uid()), Some(meta.gid()))?;
                std::fs::set_permissions(&child_target, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            }
            // Devices, fifos and sockets in image directories are not copied.
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_volumes_and_skips_binds() {
        let config = ContainerConfig {
            volumes: Some([("/anon".to_string(), serde_json::json!({})), ("/named".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        };
        let hc = HostConfig {
            binds: Some(vec!["data:/named:ro,nocopy".into(), "/host:/bind".into(), "other:/other".into()]),
            ..Default::default()
        };
        let planned = plan(&config, &hc, &HashSet::new()).unwrap();
        assert_eq!(planned.len(), 3);
        assert_eq!(
            (planned[0].name.as_str(), planned[0].read_only, planned[0].copy_up, planned[0].mode.as_str()),
            ("data", true, false, "ro,nocopy")
        );
        assert_eq!((planned[1].name.as_str(), planned[1].mode.as_str()), ("other", "z"));
        assert!(planned[2].anonymous && planned[2].name.len() == 64 && planned[2].destination == "/anon");
        let bad = HostConfig { binds: Some(vec!["a/b:/x".into()]), ..Default::default() };
        assert!(matches!(plan(&ContainerConfig::default(), &bad, &HashSet::new()), Err(ServiceError::InvalidParameter(_))));
    }

    #[test]
    fn copy_up_merges_layers_with_whiteouts_and_opaque_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let (top, bottom, target) = (dir.path().join("top"), dir.path().join("bottom"), dir.path().join("vol"));
        for d in [&top.join("etc/sub"), &bottom.join("etc/sub"), &bottom.join("etc/gone"), &target] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(bottom.join("etc/a"), "old").unwrap();
        std::fs::write(top.join("etc/a"), "new").unwrap();
        std::fs::write(bottom.join("etc/b"), "b").unwrap();
        std::fs::write(bottom.join("etc/sub/lower"), "l").unwrap();
        std::fs::write(top.join("etc/sub/upper"), "u").unwrap();
        std::os::unix::fs::symlink("a", top.join("etc/link")).unwrap();
        std::fs::set_permissions(bottom.join("etc/b"), std::fs::Permissions::from_mode(0o600)).unwrap();
        copy_up(&[top.clone(), bottom.clone()], "/etc", &target).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(target.join("sub/lower")).unwrap(), "l");
        assert_eq!(std::fs::read_to_string(target.join("sub/upper")).unwrap(), "u");
        assert_eq!(std::fs::read_link(target.join("link")).unwrap(), PathBuf::from("a"));
        assert_eq!(std::fs::metadata(target.join("b")).unwrap().mode() & 0o777, 0o600);
        assert!(target.join("gone").is_dir());
        // A volume with content is left alone.
        std::fs::write(bottom.join("etc/later"), "x").unwrap();
        copy_up(&[top, bottom], "/etc", &target).unwrap();
        assert!(!target.join("later").exists());
    }
}
