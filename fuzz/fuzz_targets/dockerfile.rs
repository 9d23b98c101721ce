//! Dockerfiles and `.dockerignore` files from a build context.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berthd::services::dockerfile::parse(text);
    let ignore = berthd::services::build::context::Ignore::parse(text);
    // The last line as a context path too: deep paths against many `**`.
    let last = text.lines().last().unwrap_or_default();
    for path in ["a", "a/b/c", "deep/er/tmp", ".dockerignore", "Dockerfile", last] {
        let _ = ignore.excluded(path);
        let _ = ignore.may_include_below(path);
    }
});
