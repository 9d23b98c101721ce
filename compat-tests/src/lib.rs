//! Harness for compat tests: a real berthd on a real containerd, driven by
//! the stock clients.

pub mod berthd;
pub mod cli;
pub mod client;
pub mod containerd;
pub mod dockerd;
pub mod http;
pub mod images;
pub mod netns;
pub mod pty;
pub mod registry;
pub mod tls;

pub use berthd::{Berthd, BerthdBuilder};
pub use cli::CmdOutput;

/// Now as `seconds.nanoseconds`, for `docker events --until`: the CLI
/// turns durations like `0s` into whole seconds, which cuts off whatever
/// happened earlier in the current second.
pub fn now_stamp() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Poll `f` every 50 ms until it gives a value, for up to `secs` seconds
/// (servers inside containers take a moment); panics naming `what`.
#[track_caller]
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
