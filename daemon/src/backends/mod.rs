//! What services build on: containerd, the metadata store, the host.

pub mod containerd;
pub mod host;
pub mod oci_spec;
pub mod store;
