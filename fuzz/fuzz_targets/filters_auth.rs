//! The `filters` query parameter, `X-Registry-Auth`, `POST /auth` bodies and
//! registries' `WWW-Authenticate` challenges.
#![no_main]
use libfuzzer_sys::fuzz_target;

use berthd::server::extract::QueryPairs;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = berthd::server::routes::images::parse_filters(&QueryPairs(vec![("filters".into(), text.clone())]));
    let _ = berthd::services::images::auth::AuthConfig::from_header(Some(&text));
    let _ = berthd::services::images::auth::AuthConfig::from_json(data);
    let _ = berthd::backends::registry::auth::parse_challenges(&text);
});
