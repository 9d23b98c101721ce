//! What this build of berthd is: version, commit, build time, compiler.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("BERTHD_GIT_COMMIT");
pub const BUILD_TIME: &str = env!("BERTHD_BUILD_TIME");
pub const RUSTC_VERSION: &str = env!("BERTHD_RUSTC_VERSION");

/// `berthd -v`, shaped like `dockerd -v`.
pub fn version_line() -> String {
    format!("berthd version {VERSION}, build {GIT_COMMIT}")
}
