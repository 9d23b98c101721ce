//! berthd: the Docker Engine API served on containerd.

pub mod backends;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod logging;
pub mod pidfile;
pub mod release;
pub mod reload;
pub mod sd_notify;
pub mod server;
pub mod services;
