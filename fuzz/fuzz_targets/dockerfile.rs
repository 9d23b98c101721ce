//! Dockerfiles and `.dockerignore` files from a build context.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berthd::services::dockerfile::parse(text);
    let ignore = berthd::services::build::context::Ignore::parse(text);
    for path in ["a", "a/b/c", "deep/er/tmp", ".dockerignore", "Dockerfile"] {
        let _ = ignore.excluded(path);
        let _ = ignore.may_include_below(path);
    }
});
