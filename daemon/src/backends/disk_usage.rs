//! Disk use of a directory tree as containerd's snapshotters count it
//! (continuity's `fs.DiskUsage`): allocated blocks of every entry, the
//! root included, links not followed, a hard-linked file once.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated under `root`. Entries that vanish during the walk (a
/// running container deleting files) are skipped; a missing root is
/// `NotFound`. Blocking: call off the async runtime.
pub fn disk_usage(root: &Path) -> io::Result<i64> {
    let meta = std::fs::symlink_metadata(root)?;
    let mut seen = HashSet::new();
    let mut total = allocated(&meta, &mut seen);
    if meta.is_dir() {
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                // DirEntry::metadata does not follow a symlink.
                let Ok(meta) = entry.metadata() else { continue };
                total += allocated(&meta, &mut seen);
                if meta.is_dir() {
                    dirs.push(entry.path());
                }
            }
        }
    }
    Ok(total)
}

/// `st_blocks` in bytes; a file with several links counts at its first.
fn allocated(meta: &std::fs::Metadata, seen: &mut HashSet<(u64, u64)>) -> i64 {
    if !meta.is_dir() && meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    meta.blocks() as i64 * 512
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_once_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), vec![1u8; 5000]).unwrap();
        std::fs::hard_link(root.join("a/b/f"), root.join("a/g")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("l")).unwrap();
        let blocks = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().blocks() as i64 * 512;
        let expected = blocks("") + blocks("a") + blocks("a/b") + blocks("a/b/f") + blocks("l");
        assert_eq!(disk_usage(root).unwrap(), expected);
        assert_eq!(disk_usage(&root.join("gone")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
