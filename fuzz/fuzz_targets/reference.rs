//! Image references as clients send them (`docker pull NAME`, `fromImage`,
//! tags), `--platform` specifiers and `docker images -f reference=PATTERN`
//! (the glob before the first newline, the name after it).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = berthd::services::images::parse_reference(text) {
        // A parsed reference prints and parses back to itself.
        let shown = r.to_string();
        let again = berthd::services::images::parse_reference(&shown).expect("a printed reference parses");
        assert_eq!(again.to_string(), shown);
    }
    let _ = berthd::services::images::new_image_reference(text, "latest", "tag");
    let _ = berthd::backends::registry::manifest::Platform::parse(text);
    if let Some((pattern, name)) = text.split_once('\n') {
        let _ = berthd::services::images::glob_match(pattern, name);
    }
});
