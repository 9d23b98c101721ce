//! The Docker Engine API as Rust types: wire shapes, API versions and the
//! error body. Only serde; no I/O.

pub mod common;
pub mod container;
pub mod events;
pub mod exec;
pub mod filters;
pub mod image;
pub mod mount;
pub mod network;
pub mod reference;
pub mod stats;
pub mod system;
pub mod version;
pub mod volume;
