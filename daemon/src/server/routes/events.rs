//! `GET /events` (SystemEvents): newline-delimited JSON, past events for
//! `since`/`until` first, then live ones; the headers go out at once.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::Response;

use api_types::filters::Filters;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::QueryPairs;
use crate::services::Services;

/// `GET /events` (SystemEvents).
pub async fn system_events(State(svc): State<Services>, query: QueryPairs) -> ApiResult<Response> {
    let bound = |key: &str| query.get(key).filter(|v| !v.is_empty()).map(parse_event_time).transpose();
    let (since, until) = (bound("since")?, bound("until")?);
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::BadRequest(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                query.get("since").unwrap_or_default(),
                query.get("until").unwrap_or_default()
            )));
        }
    }
    let filters = Filters::parse(query.get("filters").unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let subscription = svc.events.subscribe(since, until, filters);
    let lines = futures_util::stream::unfold(subscription, |mut sub| async move {
        let event = sub.next().await?;
        let mut line = serde_json::to_vec(&*event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), sub))
    });
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A `since`/`until` value as Unix nanoseconds: `seconds[.fraction]` (what
/// the CLI sends, as Go's `timetypes.ParseTimestamps` reads it) or RFC 3339.
fn parse_event_time(value: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::BadRequest(format!("invalid timestamp {value:?}: expected seconds[.nanoseconds] or RFC 3339"));
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    secs.checked_mul(1_000_000_000).and_then(|s| s.checked_add(nanos)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times() {
        assert_eq!(parse_event_time("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_event_time("1700000000.5").unwrap(), 1_700_000_000_500_000_000);
        assert_eq!(parse_event_time("1700000000.000000123").unwrap(), 1_700_000_000_000_000_123);
        assert_eq!(parse_event_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000_000_000);
        assert!(parse_event_time("soon").is_err());
        assert!(parse_event_time("1.x").is_err());
    }
}
