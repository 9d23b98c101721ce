//! Registry errors: HTTP statuses, the distribution error body
//! (`{"errors":[{"code","message"}]}`) and transport failures, mapped once
//! to kinds services act on.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Unknown repository, manifest, tag or blob.
    NotFound,
    /// Missing, wrong or insufficient credentials (401, 403, `DENIED`).
    Unauthorized,
    /// The registry refused what we sent, or sent content that does not
    /// verify (digest or size mismatch, unparsable manifest).
    Invalid,
    /// Cannot reach the registry, it is overloaded, rate-limited, or the
    /// connection broke mid-transfer.
    Unavailable,
    Other,
}

/// One entry of the distribution error body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ErrorCode {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for ErrorCode {
    /// distribution's `errcode.Error` text: `manifest unknown: <message>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = if self.code.is_empty() { "unknown".to_owned() } else { self.code.to_lowercase().replace('_', " ") };
        if self.message.is_empty() {
            f.write_str(&code)
        } else {
            write!(f, "{code}: {}", self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    codes: Vec<ErrorCode>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorCode>,
}

impl RegistryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), status: None, codes: Vec::new() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The registry's error codes (`MANIFEST_UNKNOWN`, `DENIED`, …).
    pub fn codes(&self) -> &[ErrorCode] {
        &self.codes
    }

    /// True when the registry answered with a distribution error code (as
    /// opposed to a bare status or a transport failure). dockerd stops at
    /// such an answer from the upstream registry but moves on from a mirror.
    pub fn has_error_code(&self) -> bool {
        !self.codes.is_empty()
    }

    /// An answer with a status we did not expect. `body` is read for the
    /// distribution error JSON; `what` says what was asked, for context
    /// when the body says nothing (`HEAD https://…/manifests/latest`).
    pub fn from_response(status: u16, body: &[u8], what: &str) -> Self {
        let codes = serde_json::from_slice::<ErrorBody>(body).map(|b| b.errors).unwrap_or_default();
        let kind = kind_for(status, &codes);
        let message = match codes.as_slice() {
            [] => format!("unexpected status from {what}: {}", status_text(status)),
            [one] => one.to_string(),
            many => {
                // errcode.Errors: "errors:\n<e1>\n<e2>\n"
                let mut s = String::from("errors:\n");
                for e in many {
                    s.push_str(&e.to_string());
                    s.push('\n');
                }
                s
            }
        };
        Self { kind, message, status: Some(status), codes }
    }

    /// A request that got no answer. `what` is Go's shape, `Get "url"`, so
    /// the text reads as dockerd's: `Get "https://h/v2/": connection refused`.
    pub fn transport(what: &str, err: &reqwest::Error) -> Self {
        // reqwest reports a body cut short while streaming as a decode
        // error; bodies are only ever read as bytes here, so it is the
        // connection either way.
        let kind = if err.is_connect() || err.is_timeout() || err.is_request() || err.is_body() || err.is_decode() {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Other
        };
        Self::new(kind, format!("{what}: {}", error_chain(err)))
    }

    pub(crate) fn with_context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
}

/// The status → kind table, with the error code taking precedence.
fn kind_for(status: u16, codes: &[ErrorCode]) -> ErrorKind {
    if let Some(first) = codes.first() {
        match first.code.as_str() {
            "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN" => {
                return ErrorKind::NotFound
            }
            "UNAUTHORIZED" | "DENIED" => return ErrorKind::Unauthorized,
            "TOOMANYREQUESTS" | "UNAVAILABLE" => return ErrorKind::Unavailable,
            "MANIFEST_INVALID" | "MANIFEST_BLOB_UNKNOWN" | "MANIFEST_UNVERIFIED" | "NAME_INVALID"
            | "TAG_INVALID" | "DIGEST_INVALID" | "SIZE_INVALID" | "BLOB_UPLOAD_INVALID"
            | "RANGE_INVALID" | "PAGINATION_NUMBER_INVALID" | "UNSUPPORTED" => {
                return ErrorKind::Invalid
            }
            _ => {}
        }
    }
    match status {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::Unauthorized,
        400 | 405 | 411 | 413 | 415 | 416 | 422 => ErrorKind::Invalid,
        408 | 429 | 502 | 503 | 504 => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// reqwest's own text is terse ("error sending request"); the cause chain
/// carries the useful part ("Connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_kinds_and_docker_texts() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let e = RegistryError::from_response(404, body, "GET m");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "manifest unknown: manifest unknown");
        assert!(e.has_error_code());

        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        let e = RegistryError::from_response(403, body, "GET m");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.to_string(), "denied: requested access to the resource is denied");

        let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#;
        let e = RegistryError::from_response(429, body, "GET m");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.to_string(), "toomanyrequests: You have reached your pull rate limit.");

        // The code wins over the status.
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert_eq!(RegistryError::from_response(400, body, "x").kind(), ErrorKind::Unauthorized);
        let body = br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#;
        assert_eq!(RegistryError::from_response(400, body, "x").kind(), ErrorKind::Invalid);
    }

    #[test]
    fn several_codes_are_listed() {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"a"},{"code":"SIZE_INVALID","message":"b"}]}"#;
        let e = RegistryError::from_response(404, body, "x");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "errors:\nblob unknown: a\nsize invalid: b\n");
        assert_eq!(e.codes().len(), 2);
    }

    #[test]
    fn bare_statuses_map_by_status() {
        for (status, kind) in [
            (404, ErrorKind::NotFound),
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Unauthorized),
            (400, ErrorKind::Invalid),
            (429, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
            (500, ErrorKind::Other),
        ] {
            let e = RegistryError::from_response(status, b"<html>nope</html>", "HEAD https://h/v2/x/manifests/t");
            assert_eq!(e.kind(), kind, "{status}");
            assert_eq!(e.status(), Some(status));
            assert!(!e.has_error_code());
        }
        let e = RegistryError::from_response(500, b"", "HEAD https://h/v2/");
        assert_eq!(e.to_string(), "unexpected status from HEAD https://h/v2/: 500 Internal Server Error");
    }

    #[test]
    fn unknown_and_empty_codes_still_read() {
        let body = br#"{"errors":[{"code":"WEIRD_THING","message":"m"}]}"#;
        let e = RegistryError::from_response(500, body, "x");
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(e.to_string(), "weird thing: m");
        let body = br#"{"errors":[{"message":"m"}]}"#;
        assert_eq!(RegistryError::from_response(500, body, "x").to_string(), "unknown: m");
    }
}
