//! Host mounts berthd makes itself: containerd's mounts (a snapshot's
//! `bind` or `overlay`) read-only, for the builder to read another stage's
//! files, and the tmpfs behind a shareable container's `/dev/shm`.

use std::ffi::CString;
use std::path::Path;

use crate::backends::containerd::Mount;

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a mount argument"))
}

/// Mount `mounts` (one, as containerd's snapshotters return for a view)
/// read-only at `target`.
pub fn mount_readonly(mounts: &[Mount], target: &Path) -> std::io::Result<()> {
    let [m] = mounts else {
        return Err(std::io::Error::other(format!("expected one mount, got {}", mounts.len())));
    };
    let target_c = cstr(&target.to_string_lossy())?;
    let data: Vec<&str> = m.options.iter().map(String::as_str).filter(|o| !matches!(*o, "ro" | "rw" | "rbind" | "bind")).collect();
    let (source, fstype, flags, data) = match m.kind.as_str() {
        "bind" => (m.source.clone(), None, libc::MS_BIND | libc::MS_REC, String::new()),
        _ => (m.source.clone(), Some(m.kind.clone()), libc::MS_RDONLY, data.join(",")),
    };
    let source_c = cstr(&source)?;
    let fstype_c = fstype.as_deref().map(cstr).transpose()?;
    let data_c = cstr(&data)?;
    // SAFETY: every pointer is a valid NUL-terminated string for the call.
    let rc = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            if data.is_empty() { std::ptr::null() } else { data_c.as_ptr().cast() },
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if m.kind == "bind" {
        // A bind mount is made read-only by a remount.
        // SAFETY: as above.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                target_c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            let _ = unmount(target);
            return Err(e);
        }
    }
    Ok(())
}

/// Mount a fresh tmpfs at `target` with `options` (e.g. `mode=1777,size=…`).
pub fn mount_tmpfs(target: &Path, options: &str) -> std::io::Result<()> {
    let target_c = cstr(&target.to_string_lossy())?;
    let fstype = cstr("tmpfs")?;
    let data = cstr(options)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is a valid NUL-terminated string for the call.
    let rc = unsafe { libc::mount(fstype.as_ptr(), target_c.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Detach the mount at `target`.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    let target_c = cstr(&target.to_string_lossy())?;
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(target_c.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
