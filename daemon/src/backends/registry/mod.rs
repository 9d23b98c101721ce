//! The OCI Distribution client berthd pulls and pushes with (containerd
//! 1.6 has no transfer service): endpoints and mirrors, authentication,
//! manifests and platforms, verified blob transfer.

pub mod auth;
pub mod certs;
pub mod client;
pub mod endpoints;
pub mod error;
pub mod manifest;

pub use auth::Credentials;
pub use client::{BlobPush, BlobStream, Login, PlatformManifest, RegistryClient, Repository};
pub use endpoints::{Endpoint, EndpointConfig};
pub use error::{ErrorKind, RegistryError};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform, PlatformMatcher};
