//! Container log drivers.

pub mod json_file;
