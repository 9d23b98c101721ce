//! Harness for compat tests: a real berthd on a real containerd, driven by
//! the stock clients.

pub mod berthd;
pub mod cli;
pub mod client;
pub mod containerd;
pub mod http;
pub mod images;
pub mod netns;
pub mod registry;
pub mod tls;

pub use berthd::{Berthd, BerthdBuilder};
pub use cli::CmdOutput;
