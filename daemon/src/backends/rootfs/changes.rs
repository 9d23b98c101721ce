//! `docker diff`: a snapshot's own layer against the image layers below.
//! A path in the upper layer is added (A) when no lower layer has it, else
//! changed (C); an overlay whiteout (a 0/0 character device) is a deletion
//! (D). Parent directories of changes show as changed, as dockerd reports.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

fn in_lower(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut BTreeMap<String, ChangeKind>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(upper.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child = rel.join(entry.file_name());
        let meta = entry.metadata()?;
        let path = format!("/{}", child.display());
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            out.insert(path, ChangeKind::Deleted);
            continue;
        }
        let kind = if in_lower(lowers, &child) { ChangeKind::Modified } else { ChangeKind::Added };
        // A directory copied up only because something below changed is
        // still reported as changed, as dockerd does.
        out.insert(path, kind);
        if meta.is_dir() {
            walk(upper, &child, lowers, out)?;
        }
    }
    Ok(())
}

/// The changes in `upper` over `lowers` (top first), sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> std::io::Result<Vec<Change>> {
    let mut out = BTreeMap::new();
    walk(upper, Path::new(""), lowers, &mut out)?;
    Ok(out.into_iter().map(|(path, kind)| Change { path, kind }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, lower) = (dir.path().join("upper"), dir.path().join("lower"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "x").unwrap();
        std::fs::write(upper.join("etc/passwd"), "y").unwrap();
        std::fs::write(upper.join("new"), "n").unwrap();
        let got = changes(&upper, &[lower]).unwrap();
        assert_eq!(
            got,
            [
                Change { path: "/etc".into(), kind: ChangeKind::Modified },
                Change { path: "/etc/passwd".into(), kind: ChangeKind::Modified },
                Change { path: "/new".into(), kind: ChangeKind::Added },
            ]
        );
    }
}
