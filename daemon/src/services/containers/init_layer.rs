//! dockerd's "init" layer: between an image and its containers' writable
//! layers, the files every container has (`/.dockerenv`, the mountpoints
//! of `/etc/hosts`, `/dev/pts`, `/proc`…), so `docker diff` and commit
//! never see them while export does. One committed snapshot per image top
//! layer, shared by its containers (its content is the same for all),
//! kept while the image is (its config blob refers to it) or a container
//! sits on it.

use std::collections::BTreeMap;

use crate::backends::containerd::content::labels;
use crate::backends::containerd::{Containerd, ErrorKind};
use crate::backends::rootfs::{self, Source};
use crate::services::ServiceError;

/// moby's initlayer.Setup: what to make when the image lacks it.
enum Make {
    Dir,
    File,
    Symlink(&'static str),
}

const INIT_FILES: &[(&str, Make)] = &[
    ("/dev/pts", Make::Dir),
    ("/dev/shm", Make::Dir),
    ("/proc", Make::Dir),
    ("/sys", Make::Dir),
    ("/.dockerenv", Make::File),
    ("/etc/resolv.conf", Make::File),
    ("/etc/hosts", Make::File),
    ("/etc/hostname", Make::File),
    ("/dev/console", Make::File),
    ("/etc/mtab", Make::Symlink("/proc/mounts")),
];

fn name_for(top_chain_id: &str) -> String {
    format!("berthd-init-{}", if top_chain_id.is_empty() { "scratch" } else { top_chain_id })
}

/// The init snapshot over `top_chain_id` ("" for scratch), made when
/// missing. `containerd` must carry the caller's lease, which holds the
/// init snapshot until a container's layer sits on it.
pub async fn ensure(containerd: &Containerd, image_config: &str, top_chain_id: &str, scratch: std::path::PathBuf) -> Result<String, ServiceError> {
    let name = name_for(top_chain_id);
    // Held before it is looked at: the last container over it may go (and
    // the GC take it) at any moment.
    containerd.lease_hold_snapshot(containerd.snapshotter(), &name).await?;
    if containerd.snapshot_stat(containerd.snapshotter(), &name).await?.is_some() {
        return Ok(name);
    }
    let key = format!("{name}-prepare-{}", uuid::Uuid::new_v4().simple());
    let mounts = containerd.snapshot_prepare(containerd.snapshotter(), &key, top_chain_id, &[]).await?;
    let made = rootfs::open(Source::Snapshot { mounts, binds: Vec::new(), scratch, writable: true }, |root| {
        for (path, make) in INIT_FILES {
            let made = match make {
                Make::Dir => root.mkdir_all(path).map(drop),
                Make::File => root.make_file(path),
                Make::Symlink(target) => root.make_symlink(path, target),
            };
            // An image with something odd there (a file where a directory
            // goes) keeps it, as dockerd's only-when-missing rule does.
            if let Err(e) = made {
                if !matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::EEXIST | libc::ELOOP)) {
                    return Err(e);
                }
            }
        }
        Ok(())
    })
    .await;
    let committed = match made {
        Ok(()) => match containerd.snapshot_commit(containerd.snapshotter(), &name, &key, &[]).await {
            // Another create made it meanwhile.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            other => other.map_err(ServiceError::from),
        },
        Err(e) => Err(ServiceError::Internal(format!("making the init layer: {e}"))),
    };
    // Committed, the prepared key is gone; otherwise it goes now.
    let _ = containerd.snapshot_remove(containerd.snapshotter(), &key).await;
    committed?;
    // Not made again for every `run --rm`: the image holds it for the GC.
    let label = format!("{}/init", labels::gc_ref_snapshot(containerd.snapshotter()));
    containerd.content_set_labels(image_config, &BTreeMap::from([(label, name.clone())])).await?;
    Ok(name)
}
