//! Thin handlers, one module per API area: parse the request, call a
//! service, encode the answer.

pub mod archive;
pub mod attach;
pub mod auth;
pub mod build;
pub mod images;
pub mod containers;
pub mod events;
pub mod exec;
pub mod networks;
pub mod swarm;
pub mod system;
pub mod unimplemented;
pub mod volumes;
