//! `Config.User` → uid, gid and supplementary groups, resolved against the
//! container's own `/etc/passwd` and `/etc/group` as dockerd does.

use std::path::PathBuf;

use crate::backends::containerd::Mount;
use crate::backends::oci_spec::ProcessUser;
use crate::services::ServiceError;

/// Reads files of a container's root filesystem straight from the
/// snapshot's layer directories, without mounting it.
pub struct RootfsFiles {
    layers: Vec<PathBuf>,
}

impl RootfsFiles {
    pub fn new(mounts: &[Mount]) -> Self {
        let mut layers = Vec::new();
        for m in mounts {
            match m.kind.as_str() {
                "overlay" => {
                    for opt in &m.options {
                        if let Some(upper) = opt.strip_prefix("upperdir=") {
                            layers.insert(0, PathBuf::from(upper));
                        } else if let Some(lowers) = opt.strip_prefix("lowerdir=") {
                            layers.extend(lowers.split(':').map(PathBuf::from));
                        }
                    }
                }
                _ => layers.push(PathBuf::from(&m.source)),
            }
        }
        Self { layers }
    }

    /// The layer directories, topmost first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// The topmost copy of `path` (absolute inside the container).
    pub fn read(&self, path: &str) -> Option<String> {
        let rel = path.trim_start_matches('/');
        self.layers.iter().find_map(|l| std::fs::read_to_string(l.join(rel)).ok())
    }
}

struct Entry {
    name: String,
    id: u32,
    gid: u32,
    members: Vec<String>,
}

fn parse_db(text: &str, is_group: bool) -> Vec<Entry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let id = f.get(2)?.parse().ok()?;
            Some(if is_group {
                Entry {
                    name: f[0].to_string(),
                    id,
                    gid: id,
                    members: f.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default(),
                }
            } else {
                Entry { name: f[0].to_string(), id, gid: f.get(3)?.parse().ok()?, members: vec![] }
            })
        })
        .collect()
}

pub fn resolve(user: &str, group_add: &[String], files: &RootfsFiles) -> Result<ProcessUser, ServiceError> {
    let passwd = parse_db(&files.read("/etc/passwd").unwrap_or_default(), false);
    let groups = parse_db(&files.read("/etc/group").unwrap_or_default(), true);
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let (uid, mut gid, name) = match passwd.iter().find(|e| e.name == user_part || e.id.to_string() == user_part) {
        Some(e) => (e.id, e.gid, Some(e.name.clone())),
        None => match user_part.parse::<u32>() {
            Ok(uid) => (uid, 0, None),
            Err(_) => {
                return Err(ServiceError::InvalidParameter(format!(
                    "unable to find user {user_part}: no matching entries in passwd file"
                )))
            }
        },
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = lookup_group(g, &groups)?;
    }
    // The primary group is an additional group too, as dockerd sets it
    // (moby's fix for CVE-2022-36109): a process that drops it keeps it.
    let mut additional: Vec<u32> = vec![gid];
    if let (Some(n), None) = (&name, group_part) {
        additional.extend(groups.iter().filter(|g| g.members.contains(n)).map(|g| g.gid));
    }
    for g in group_add {
        let id = lookup_group(g, &groups)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ProcessUser { uid, gid, additional_gids: additional })
}

fn lookup_group(group: &str, groups: &[Entry]) -> Result<u32, ServiceError> {
    if let Some(e) = groups.iter().find(|e| e.name == group) {
        return Ok(e.gid);
    }
    group.parse().map_err(|_| {
        ServiceError::InvalidParameter(format!("unable to find group {group}: no matching entries in group file"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tempfile::TempDir, RootfsFiles) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nwww:x:34:\nstaff:x:50:www\n").unwrap();
        let files = RootfsFiles::new(&[Mount { kind: "bind".into(), source: dir.path().display().to_string(), options: vec![] }]);
        (dir, files)
    }

    #[test]
    fn names_numbers_and_groups() {
        let (_d, f) = files();
        assert_eq!(resolve("", &[], &f).unwrap(), ProcessUser { uid: 0, gid: 0, additional_gids: vec![0] });
        assert_eq!(resolve("www", &[], &f).unwrap(), ProcessUser { uid: 33, gid: 34, additional_gids: vec![34, 50] });
        assert_eq!(resolve("1000:1000", &[], &f).unwrap(), ProcessUser { uid: 1000, gid: 1000, additional_gids: vec![1000] });
        assert_eq!(resolve("www:root", &["staff".into()], &f).unwrap().gid, 0);
        assert_eq!(resolve("www:root", &["staff".into()], &f).unwrap().additional_gids, vec![0, 50]);
        assert!(resolve("nobody", &[], &f).unwrap_err().to_string().contains("unable to find user nobody"));
        assert!(resolve("0:nogroup", &[], &f).is_err());
    }

    #[test]
    fn overlay_layers_are_searched_top_down() {
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec!["workdir=/w".into(), "upperdir=/up".into(), "lowerdir=/l1:/l2".into()],
        };
        let f = RootfsFiles::new(&[m]);
        assert_eq!(f.layers, vec![PathBuf::from("/up"), "/l1".into(), "/l2".into()]);
    }
}
