//! Registry credentials as clients send them: `X-Registry-Auth` (base64url
//! JSON) on pull and push, the same JSON as `POST /auth`'s body. Nothing
//! here is ever logged: `AuthConfig` has no `Debug`.

use base64::Engine as _;
use serde::Deserialize;

use crate::backends::registry::Credentials;

/// dockerd's `registry.AuthConfig`.
#[derive(Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `base64(username:password)`, as the CLI's config file keeps it.
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default)]
    pub identitytoken: String,
    #[serde(default)]
    pub registrytoken: String,
}

impl AuthConfig {
    /// `X-Registry-Auth`. As dockerd, an invalid header counts as no
    /// credentials (a pull must not fail over it).
    pub fn from_header(header: Option<&str>) -> Self {
        let Some(raw) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return Self::default();
        };
        let decoded = base64::engine::general_purpose::URL_SAFE
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw));
        match decoded {
            Ok(bytes) => Self::from_json(&bytes).unwrap_or_default(),
            Err(_) => Self::default(),
        }
    }

    /// The JSON body of `POST /auth`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
    }

    /// What the registry client authenticates with; `auth` is decoded
    /// when no username was given.
    pub fn credentials(&self) -> Credentials {
        let (mut username, mut password) = (self.username.clone(), self.password.clone());
        if username.is_empty() && !self.auth.is_empty() {
            if let Some((u, p)) = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
            {
                username = u;
                password = p;
            }
        }
        Credentials {
            username,
            password,
            identity_token: self.identitytoken.clone(),
            registry_token: self.registrytoken.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    #[test]
    fn header_decodes_base64url_json() {
        let c = AuthConfig::from_header(Some(&encode(r#"{"username":"u","password":"p?>","serveraddress":"h"}"#))).credentials();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        let c = AuthConfig::from_header(Some(&encode(r#"{"identitytoken":"t"}"#))).credentials();
        assert_eq!(c.identity_token, "t");
    }

    #[test]
    fn auth_field_is_the_fallback() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        let c = AuthConfig::from_header(Some(&encode(&format!(r#"{{"auth":"{auth}"}}"#)))).credentials();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "s3cret:x"));
    }

    #[test]
    fn missing_or_invalid_headers_are_anonymous() {
        assert!(AuthConfig::from_header(None).credentials().is_anonymous());
        assert!(AuthConfig::from_header(Some("e30=")).credentials().is_anonymous());
        assert!(AuthConfig::from_header(Some("!!!")).credentials().is_anonymous());
        assert!(AuthConfig::from_header(Some(&encode("not json"))).credentials().is_anonymous());
    }
}
