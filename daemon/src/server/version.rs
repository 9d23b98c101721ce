//! The `/vX.Y` path prefix: strip it, check it against the served range,
//! hand the version to handlers, and set dockerd's response headers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::header::{HeaderValue, SERVER};
use axum::http::request::Parts;
use axum::http::{HeaderName, Request, Uri};
use axum::response::{IntoResponse, Response};
use tower::Service;

use api_types::version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION};

use super::error::ApiError;
use crate::release;

/// The API version a request was made with; unprefixed requests get the
/// maximum, as with dockerd.
#[derive(Debug, Clone, Copy)]
pub struct Version(pub ApiVersion);

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Version>().copied().unwrap_or(Version(MAX_API_VERSION)))
    }
}

/// Version negotiation around the router: the prefix is stripped and
/// checked before routing sees the path, and every answer gets dockerd's
/// headers. A plain service rather than `middleware::from_fn`, which boxes
/// the inner service and the future and clones the service per request:
/// this runs for every request, `/_ping` floods included.
#[derive(Clone)]
pub struct Negotiate<S> {
    inner: S,
}

impl<S> Negotiate<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<Request<B>> for Negotiate<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Negotiated<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let version = match strip_prefix(req.uri()) {
            Ok(None) => Ok(MAX_API_VERSION),
            Ok(Some((version, uri))) => check_range(&version).map(|v| {
                *req.uri_mut() = uri;
                v
            }),
            Err(e) => Err(e),
        };
        match version {
            Ok(v) => {
                req.extensions_mut().insert(Version(v));
                Negotiated::Routed(self.inner.call(req))
            }
            Err(e) => Negotiated::Refused(Some(e.into_response())),
        }
    }
}

/// The answer of [`Negotiate`]: routed, or refused for its version.
pub enum Negotiated<F> {
    Routed(F),
    Refused(Option<Response>),
}

impl<F: Future<Output = Result<Response, Infallible>> + Unpin> Future for Negotiated<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match self.get_mut() {
            Negotiated::Routed(routed) => match Pin::new(routed).poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => return Poll::Pending,
            },
            // Polled once: hyper does not poll a finished future again.
            Negotiated::Refused(refusal) => refusal.take().unwrap_or_default(),
        };
        let headers = response.headers_mut();
        headers.insert(HeaderName::from_static("api-version"), HeaderValue::from_static(MAX_VERSION_TEXT));
        headers.insert(HeaderName::from_static("docker-experimental"), HeaderValue::from_static("false"));
        headers.insert(HeaderName::from_static("ostype"), HeaderValue::from_static("linux"));
        headers.insert(SERVER, SERVER_HEADER.clone());
        Poll::Ready(Ok(response))
    }
}

const MAX_VERSION_TEXT: &str = "1.51";

/// `Server`, as dockerd sends it, built once.
static SERVER_HEADER: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&format!("Docker/{} (linux)", release::VERSION)).unwrap_or(HeaderValue::from_static("Docker"))
});

/// `/v1.47/containers/json` → ("1.47", "/containers/json"). A first
/// segment of `v` and digits and dots is a version, as in dockerd's router;
/// anything else is no version.
pub(super) fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let (segment, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let is_version = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    is_version.then_some((segment, tail))
}

/// `/v1.47/containers/json` → ("1.47", `/containers/json`), query kept.
/// A path without a version is left for routing (and usually ends in 404).
fn strip_prefix(uri: &Uri) -> Result<Option<(String, Uri)>, ApiError> {
    let Some((segment, tail)) = split_version(uri.path()) else { return Ok(None) };
    if tail.is_empty() || tail == "/" {
        return Err(ApiError::RouteNotFound);
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| ApiError::RouteNotFound)?);
    let uri = Uri::from_parts(parts).map_err(|_| ApiError::RouteNotFound)?;
    Ok(Some((segment.to_string(), uri)))
}

/// Compare as dockerd does: dot-separated numbers, missing parts are zero.
fn check_range(text: &str) -> Result<ApiVersion, ApiError> {
    let mut parts = text.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
    let version = ApiVersion::new(parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let finer_than_minor = parts.any(|p| p > 0);
    if version > MAX_API_VERSION || (version == MAX_API_VERSION && finer_than_minor) {
        return Err(ApiError::BadRequest(format!(
            "client version {text} is too new. Maximum supported API version is {MAX_API_VERSION}"
        )));
    }
    if version < MIN_API_VERSION {
        return Err(ApiError::BadRequest(format!(
            "client version {text} is too old. Minimum supported API version is {MIN_API_VERSION}, \
             please upgrade your client to a newer version"
        )));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(path: &str) -> Option<(String, String)> {
        strip_prefix(&path.parse().unwrap()).unwrap().map(|(v, u)| (v, u.to_string()))
    }

    #[test]
    fn header_constant_matches_max() {
        assert_eq!(MAX_VERSION_TEXT, MAX_API_VERSION.to_string());
    }

    #[test]
    fn prefixes_are_stripped_with_query_kept() {
        assert_eq!(strip("/v1.47/containers/json?all=1"), Some(("1.47".into(), "/containers/json?all=1".into())));
        assert_eq!(strip("/_ping"), None);
        assert_eq!(strip("/volumes"), None);
        assert_eq!(strip("/vabc/version"), None);
    }

    #[test]
    fn range_checks_use_dockerd_texts() {
        assert_eq!(check_range("1.41").unwrap(), ApiVersion::new(1, 41));
        assert_eq!(check_range("1.24").unwrap(), MIN_API_VERSION);
        assert_eq!(
            check_range("1.99").unwrap_err().to_string(),
            "client version 1.99 is too new. Maximum supported API version is 1.51"
        );
        assert!(check_range("1.12").unwrap_err().to_string().starts_with("client version 1.12 is too old."));
        assert!(check_range("2").is_err());
    }
}
