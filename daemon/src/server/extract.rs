//! Request extractors that reject bad input with Docker-style 400s instead
//! of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest JSON body accepted (create configs with big env/labels fit).
pub const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// A JSON request body. An empty body decodes as `null`, which
/// `Option`/defaulted types accept.
pub struct DockerJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for DockerJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        decode_json(&read_json_body(req.into_body()).await?).map(DockerJson)
    }
}

/// A JSON body's bytes, undecoded (for bodies decoded by a service).
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        read_json_body(req.into_body()).await.map(JsonBytes)
    }
}

/// Read a JSON body of at most `MAX_JSON_BODY` bytes; a bigger one is a
/// Docker-style 400, not axum's plain-text 413.
pub async fn read_json_body(body: axum::body::Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_JSON_BODY).await.map_err(|e| {
        if is_length_limit(&e) {
            ApiError::BadRequest(format!("request body is larger than {MAX_JSON_BODY} bytes"))
        } else {
            ApiError::BadRequest(format!("failed to read request body: {e}"))
        }
    })
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = err.source();
    }
    false
}

pub fn decode_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"null" } else { bytes };
    serde_json::from_slice(text).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// Query parameters decoded into a struct (single-valued keys).
pub struct DockerQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for DockerQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(DockerQuery)
            .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))
    }
}

/// The raw query, for parameters Docker repeats (`type=a&type=b`).
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Docker's lenient boolean: absent, "", "0", "no", "false" and "none"
    /// are false; anything else is true.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none")
        })
    }

    /// An integer parameter; a malformed one is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))),
        }
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(QueryPairs(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(rename = "Name")]
        name: String,
    }

    #[test]
    fn docker_booleans() {
        let q = QueryPairs(vec![("a".into(), "1".into()), ("b".into(), "False".into()), ("c".into(), "yes".into())]);
        assert!(q.bool("a") && !q.bool("b") && q.bool("c") && !q.bool("missing"));
        assert_eq!(QueryPairs(vec![("t".into(), "5".into())]).int("t").unwrap(), Some(5));
        assert!(QueryPairs(vec![("t".into(), "x".into())]).int("t").is_err());
    }

    #[test]
    fn json_errors_are_bad_requests() {
        let err = decode_json::<Body>(&Bytes::from_static(b"{bad")).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(ref m) if m.starts_with("invalid JSON")), "{err}");
        assert!(decode_json::<Option<Body>>(&Bytes::from_static(b"")).unwrap().is_none());
        assert_eq!(
            decode_json::<Body>(&Bytes::from_static(br#"{"Name":"x","Extra":1}"#)).unwrap(),
            Body { name: "x".into() }
        );
    }
}
