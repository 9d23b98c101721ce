//! `POST /images/prune`: dangling images, or with `dangling=false` every
//! image no container uses.

use std::collections::BTreeMap;

use api_types::image::ImagesPruneResponse;

use super::list::{bool_filter, labels_match};
use super::ImageService;
use crate::services::ServiceError;

const FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

#[derive(Debug, Clone, Default)]
pub struct ImagePruneOptions {
    pub filters: BTreeMap<String, Vec<String>>,
}

/// `until`: a Unix timestamp, an RFC 3339 time, or a Go duration before now.
pub fn parse_until(value: &str) -> Result<i64, ServiceError> {
    let bad = || ServiceError::InvalidParameter(format!("invalid value for 'until' filter: {value}"));
    if let Ok(t) = value.parse::<f64>() {
        return Ok(t as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).ok_or_else(bad)?);
    }
    let seconds = parse_go_duration(value).ok_or_else(bad)?;
    Ok(chrono::Utc::now().timestamp() - seconds)
}

fn parse_go_duration(value: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = value.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    (any && number.is_empty()).then_some(total as i64)
}

impl ImageService {
    /// Prune; images `users` run from stay, as do images with children
    /// (unless their last child goes in the same pass).
    pub async fn prune(&self, opts: &ImagePruneOptions, users: &[super::ImageUser]) -> Result<ImagesPruneResponse, ServiceError> {
        if let Some(bad) = opts.filters.keys().find(|k| !FILTERS.contains(&k.as_str())) {
            return Err(ServiceError::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        let dangling_only = bool_filter(&opts.filters, "dangling")?.unwrap_or(true);
        let mut until = None;
        for v in opts.filters.get("until").into_iter().flatten() {
            until = Some(parse_until(v)?);
        }
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        let images = self.local_images().await?;
        let parents: std::collections::BTreeSet<&str> = images.iter().filter_map(|i| i.resolved.config.parent.as_deref()).collect();
        for image in &images {
            if dangling_only && !image.is_dangling() {
                continue;
            }
            if parents.contains(image.id()) || users.iter().any(|u| u.image_id == image.id()) {
                continue;
            }
            let cfg = &image.resolved.config;
            if until.is_some_and(|u| cfg.created_unix() >= u) {
                continue;
            }
            let labels = cfg.labels();
            if let Some(wanted) = opts.filters.get("label") {
                if !labels_match(wanted, &labels) {
                    continue;
                }
            }
            if let Some(unwanted) = opts.filters.get("label!") {
                if unwanted.iter().any(|u| labels_match(std::slice::from_ref(u), &labels)) {
                    continue;
                }
            }
            let before = deleted.len();
            reclaimed += self.delete_image(image, &mut deleted).await?;
            self.emit_removals(image.id(), &deleted[before..]);
            // As dockerd (ImageDelete with prune): parents left dangling go too.
            reclaimed += self.delete_parents(image, users, &mut deleted).await?;
        }
        self.events.publish(
            api_types::events::TYPE_IMAGE,
            "prune",
            api_types::events::EventActor { id: String::new(), attributes: [("reclaimed".into(), reclaimed.to_string())].into() },
        );
        Ok(ImagesPruneResponse {
            images_deleted: if deleted.is_empty() { None } else { Some(deleted) },
            space_reclaimed: reclaimed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_accepts_docker_forms() {
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2024-01-01T00:00:00Z").unwrap(), 1_704_067_200);
        let now = chrono::Utc::now().timestamp();
        assert!((parse_until("1h30m").unwrap() - (now - 5400)).abs() < 5);
        assert!(parse_until("soon").is_err());
    }
}
