//! Container log drivers: which ones and their options (`driver.rs`), and
//! the json-file format with rotation that `json-file` and `local` write,
//! and the attributes json-file adds to each line (`attrs.rs`); the copier
//! process the shim runs to write a container's log (`copier.rs`).

pub mod attrs;
pub mod copier;
pub mod driver;
pub mod json_file;
