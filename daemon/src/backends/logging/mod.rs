//! Container log drivers: which ones and their options (`driver.rs`), and
//! the json-file format with rotation that `json-file` and `local` write.

pub mod driver;
pub mod json_file;
