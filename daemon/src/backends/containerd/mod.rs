//! Typed wrappers over containerd's gRPC services. Proto types never leave
//! this module.

mod client;
mod error;
pub mod supervisor;

pub use client::{Containerd, ContainerdSummary, RuntimeVersion};
pub use error::{ContainerdError, ErrorKind};
