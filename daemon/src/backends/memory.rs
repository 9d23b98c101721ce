//! Handing freed memory back to the system. glibc keeps what a burst of
//! work freed (reading a big log leaves tens of MiB) in its arenas for
//! reuse; an idle daemon should not hold on to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a burst gets to finish (a client reading several logs in a
/// row) before the trim: one trim after it, not one per read.
const SETTLE: Duration = Duration::from_secs(1);

/// Return the free heap pages to the kernel once the current burst of work
/// has settled. Calls while a trim is pending share it. Needs a runtime.
pub fn release_freed_soon() {
    static PENDING: AtomicBool = AtomicBool::new(false);
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(SETTLE).await;
        PENDING.store(false, Ordering::Release);
        // It walks every arena: a few ms on a big heap, off the workers.
        let _ = tokio::task::spawn_blocking(trim).await;
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes the allocator's own locks; it only
    // releases pages that hold no live allocation.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
