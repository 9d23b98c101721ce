//! Tar streams as load, import, archive PUT and build contexts read them:
//! the header guard in front of the tar crate, every entry's header fields
//! and data read. Nothing may allocate more than the stream holds. A
//! gzip-compressed stream (load, import, layers, build contexts and ADD
//! take one) goes through the streaming decoder they use, its output capped
//! so a bomb only costs time.
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&[0x1f, 0x8b]) {
        read_all(flate2::bufread::MultiGzDecoder::new(data).take(16 << 20));
    } else {
        read_all(data);
    }
});

fn read_all(data: impl Read) {
    let mut archive = tar::Archive::new(berthd::backends::tar_guard::TarGuard::new(data));
    let Ok(entries) = archive.entries() else { return };
    for entry in entries {
        let Ok(mut entry) = entry else { return };
        let _ = entry.path();
        let _ = entry.link_name();
        let h = entry.header().clone();
        let _ = (h.mode(), h.uid(), h.gid(), h.mtime(), h.device_major(), h.device_minor());
        // PAX records, as extraction reads `mtime` and `SCHILY.xattr.*`.
        if let Ok(Some(records)) = entry.pax_extensions() {
            for r in records.flatten() {
                let _ = (r.key(), r.value());
            }
        }
        let mut sink = [0u8; 4096];
        loop {
            match entry.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
