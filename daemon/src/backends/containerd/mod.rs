//! Typed wrappers over containerd's gRPC services. Proto types never leave
//! this module.

mod client;
pub mod content;
mod diff;
mod containers;
mod error;
mod events;
mod image_cache;
pub mod images;
pub mod leases;
mod processes;
mod rootfs;
pub mod snapshots;
pub mod supervisor;
mod tasks;

pub use client::{Containerd, ContainerdSummary, RuntimeVersion};
pub use containers::{NewContainer, RUNC_RUNTIME};
pub use error::{ContainerdError, ErrorKind};
pub use events::TaskEvent;
pub use content::{CommittedBlob, ContentInfo, ContentWriter};
pub use images::{ImageRecord, OciDescriptor};
pub use leases::LeaseResource;
pub use snapshots::{SnapshotInfo, SnapshotKind, SnapshotUsage};
pub use tasks::{Mount, TaskIo, TaskState};

/// The snapshotter behind dockerd's default `overlay2` (`Driver` in `/info`).
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
