//! Registry manifests and indexes, for each media type a registry may claim.
#![no_main]
use libfuzzer_sys::fuzz_target;

use berthd::backends::registry::manifest::Manifest;

const TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else { return };
    let _ = Manifest::parse(TYPES[*first as usize % TYPES.len()], body);
});
