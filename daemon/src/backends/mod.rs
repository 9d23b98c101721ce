//! What services build on: containerd, the metadata store, the host.

pub mod cgroups;
pub mod containerd;
pub mod disk_usage;
pub mod host;
pub mod logging;
pub mod memory;
pub mod mount;
pub mod network;
pub mod oci_spec;
pub mod procps;
pub mod registry;
pub mod rootfs;
pub mod store;
pub mod tar_guard;
