//! Host devices given to a container (`--device`) and extra device cgroup
//! rules (`--device-cgroup-rule`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

use super::host_extras::DeviceMapping;

/// A device node as the spec's `linux.devices` lists it, with the cgroup
/// rule that lets the container use it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedDevice {
    pub node: Value,
    pub rule: Value,
}

/// Look the host devices up (a directory gives every device under it), as
/// dockerd does when the container is created.
pub fn resolve(mappings: &[DeviceMapping]) -> Result<Vec<ResolvedDevice>, String> {
    let mut out = Vec::new();
    for m in mappings {
        let host = Path::new(&m.path_on_host);
        let in_container = if m.path_in_container.is_empty() { m.path_on_host.as_str() } else { m.path_in_container.as_str() };
        let access = if m.cgroup_permissions.is_empty() { "rwm" } else { m.cgroup_permissions.as_str() };
        if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(format!("invalid device cgroup permissions: {access}"));
        }
        let meta = std::fs::metadata(host).map_err(|e| {
            format!("error gathering device information while adding custom device \"{}\": {}", m.path_on_host, io_text(&e))
        })?;
        if meta.is_dir() {
            walk(host, Path::new(in_container), access, &mut out);
        } else {
            let dev = node(Path::new(in_container), access, &meta).ok_or_else(|| {
                format!("error gathering device information while adding custom device \"{}\": not a device node", m.path_on_host)
            })?;
            out.push(dev);
        }
    }
    Ok(out)
}

/// Every device under the host's `/dev`, for privileged containers (as
/// runc's `GetDevices`: the per-container pseudo filesystems are skipped).
pub fn host_devices() -> Vec<ResolvedDevice> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/dev") else { return out };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if matches!(name.to_str(), Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev" | "console")) {
            continue;
        }
        let host = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&host) else { continue };
        if meta.is_dir() {
            walk(&host, &host, "rwm", &mut out);
        } else if let Some(dev) = node(&host, "rwm", &meta) {
            out.push(dev);
        }
    }
    out
}

fn walk(host_dir: &Path, container_dir: &Path, access: &str, out: &mut Vec<ResolvedDevice>) {
    let Ok(entries) = std::fs::read_dir(host_dir) else { return };
    for entry in entries.flatten() {
        let host = entry.path();
        let inside = container_dir.join(entry.file_name());
        let Ok(meta) = std::fs::symlink_metadata(&host) else { continue };
        if meta.is_dir() {
            walk(&host, &inside, access, out);
        } else if let Some(dev) = node(&inside, access, &meta) {
            out.push(dev);
        }
    }
}

fn node(inside: &Path, access: &str, meta: &std::fs::Metadata) -> Option<ResolvedDevice> {
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    Some(ResolvedDevice {
        node: json!({
            "path": inside, "type": kind, "major": major, "minor": minor,
            "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
        }),
        rule: json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}),
    })
}

/// `c 1:3 mr`, `a *:* rwm`: the cgroup rule as the spec writes it.
pub fn parse_cgroup_rule(text: &str) -> Result<Value, String> {
    let bad = || format!("invalid device cgroup rule format: '{text}'");
    let mut parts = text.split_whitespace();
    let (Some(kind), Some(numbers), Some(access), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !matches!(kind, "a" | "b" | "c") || access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(bad());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |s: &str| -> Result<Value, String> {
        if s == "*" {
            Ok(Value::Null)
        } else {
            s.parse::<i64>().map(Value::from).map_err(|_| bad())
        }
    };
    let mut rule = json!({"allow": true, "type": kind, "access": access});
    for (key, value) in [("major", number(major)?), ("minor", number(minor)?)] {
        if !value.is_null() {
            rule[key] = value;
        }
    }
    Ok(rule)
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_rules() {
        assert_eq!(parse_cgroup_rule("c 1:3 mr").unwrap(), json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mr"}));
        assert_eq!(parse_cgroup_rule("a *:* rwm").unwrap(), json!({"allow": true, "type": "a", "access": "rwm"}));
        assert_eq!(parse_cgroup_rule("x 1:3 zz").unwrap_err(), "invalid device cgroup rule format: 'x 1:3 zz'");
        assert!(parse_cgroup_rule("c 1 r").is_err());
    }

    #[test]
    fn null_device_resolves_and_missing_ones_fail() {
        let m = |p: &str| DeviceMapping { path_on_host: p.into(), path_in_container: "/dev/x".into(), cgroup_permissions: "rw".into() };
        let devs = resolve(&[m("/dev/null")]).unwrap();
        assert_eq!(devs[0].node["path"], "/dev/x");
        assert_eq!(devs[0].node["major"], 1);
        assert_eq!(devs[0].rule["access"], "rw");
        assert_eq!(
            resolve(&[m("/dev/nope")]).unwrap_err(),
            "error gathering device information while adding custom device \"/dev/nope\": no such file or directory"
        );
    }
}
