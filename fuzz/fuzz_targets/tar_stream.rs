//! Tar streams as load, import, archive PUT and build contexts read them:
//! the header guard in front of the tar crate, every entry's header fields
//! and data read. Nothing may allocate more than the stream holds.
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut archive = tar::Archive::new(berthd::backends::tar_guard::TarGuard::new(data));
    let Ok(entries) = archive.entries() else { return };
    for entry in entries {
        let Ok(mut entry) = entry else { return };
        let _ = entry.path();
        let _ = entry.link_name();
        let h = entry.header().clone();
        let _ = (h.mode(), h.uid(), h.gid(), h.mtime(), h.device_major(), h.device_minor());
        let mut sink = [0u8; 4096];
        loop {
            match entry.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});
