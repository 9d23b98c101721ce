//! Thin handlers, one module per API area: parse the request, call a
//! service, encode the answer.

pub mod auth;
pub mod images;
pub mod containers;
pub mod exec;
pub mod swarm;
pub mod system;
pub mod unimplemented;
