//! Dockerfiles and `.dockerignore` files from a build context.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berthd::services::dockerfile::parse(text);
    // Shell-word processing of instruction arguments and here-documents.
    let vars: berthd::services::dockerfile::Vars = [("a".to_string(), "1".to_string())].into();
    for escape in ['\\', '`'] {
        let _ = berthd::services::dockerfile::process(text, &vars, escape, true);
        let _ = berthd::services::dockerfile::expand_vars(text, &vars, escape);
    }
    let ignore = berthd::services::build::context::Ignore::parse(text);
    // The last line as a context path too: deep paths against many `**`.
    let last = text.lines().last().unwrap_or_default();
    for path in ["a", "a/b/c", "deep/er/tmp", ".dockerignore", "Dockerfile", last] {
        let _ = ignore.excluded(path);
        let _ = ignore.may_include_below(path);
    }
});
