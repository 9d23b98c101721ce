//! daemon.json (`--config-file`), through the strict parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berthd::config::daemon_json::parse(text);
});
