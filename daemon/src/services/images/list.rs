//! `GET /images/json`: one summary per image ID, newest first.

use std::collections::BTreeMap;

use api_types::image::{ImageSummary, OciDescriptor as WireOciDescriptor};

use super::{parse_reference, ImageService, LocalImage, RecordName};
use crate::services::ServiceError;

const FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference", "until"];

#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    pub all: bool,
    pub filters: BTreeMap<String, Vec<String>>,
    pub shared_size: bool,
}

/// Docker's glob (`path.Match`): `*` and `?` within one path element.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Neither `*` nor `?` matches `/`, so elements pair up one to one.
    let (mut p, mut t) = (pattern.split('/'), text.split('/'));
    loop {
        match (p.next(), t.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) if element_match(p, t) => {}
            _ => return false,
        }
    }
}

/// One element, by the greedy walk that only ever goes back to the last
/// `*`: O(pattern x text). Trying every split at every `*` was exponential
/// in the stars, and a filter like `*a*a*a*a*a*a*a*a*b` pinned a thread.
fn element_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and where its match ends so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    (pi, ti) = (sp + 1, st + 1);
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `label=key` or `label=key=value` against an image's labels.
pub(crate) fn labels_match(wanted: &[String], labels: &Option<BTreeMap<String, String>>) -> bool {
    wanted.iter().all(|w| {
        let Some(labels) = labels else { return false };
        match w.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(w.as_str()),
        }
    })
}

pub(crate) fn bool_filter(filters: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<bool>, ServiceError> {
    let Some(values) = filters.get(key) else { return Ok(None) };
    let mut out = None;
    for v in values {
        let b = match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(ServiceError::InvalidParameter(format!("Invalid filter '{key}={v}' : only true/1 or false/0 supported"))),
        };
        out = Some(b);
    }
    Ok(out)
}

fn reference_matches(patterns: &[String], image: &LocalImage) -> bool {
    image.names().any(|(name, _)| {
        let Some(r) = name.reference() else { return false };
        let mut tagged = r.clone();
        tagged.digest = None;
        let targets = [r.familiar_string(), r.familiar_name(), r.to_string(), r.name(), tagged.familiar_string()];
        patterns.iter().any(|p| targets.iter().any(|t| glob_match(p, t)))
    })
}

impl ImageService {
    pub async fn list(&self, opts: &ImageListOptions) -> Result<Vec<ImageSummary>, ServiceError> {
        if let Some(bad) = opts.filters.keys().find(|k| !FILTERS.contains(&k.as_str())) {
            return Err(ServiceError::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        let dangling = bool_filter(&opts.filters, "dangling")?;
        let images = self.local_images().await?;
        let mut before: Option<i64> = None;
        for v in opts.filters.get("before").into_iter().flatten() {
            let created = self.find(v).await?.image.resolved.config.created_unix();
            before = Some(before.map_or(created, |b: i64| b.min(created)));
        }
        let mut since: Option<i64> = None;
        for v in opts.filters.get("since").into_iter().flatten() {
            let created = self.find(v).await?.image.resolved.config.created_unix();
            since = Some(since.map_or(created, |s: i64| s.max(created)));
        }
        if let Some(until) = opts.filters.get("until") {
            for v in until {
                let t = super::prune::parse_until(v)?;
                before = Some(before.map_or(t, |b| b.min(t)));
            }
        }
        for v in opts.filters.get("reference").into_iter().flatten() {
            // A pattern must at least look like a name.
            if !v.contains('*') && !v.contains('?') && !v.contains('[') {
                parse_reference(v)?;
            }
        }
        // As dockerd: untagged images that other images build on (the
        // builder's intermediate steps) show only with `all`.
        let parents: std::collections::BTreeSet<&str> =
            images.iter().filter_map(|i| i.resolved.config.parent.as_deref()).collect();
        let mut out = Vec::new();
        for image in &images {
            if !opts.all && image.is_dangling() && parents.contains(image.id()) {
                continue;
            }
            let cfg = &image.resolved.config;
            let created = cfg.created_unix();
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            if let Some(wanted) = opts.filters.get("label") {
                if !labels_match(wanted, &cfg.labels()) {
                    continue;
                }
            }
            if let Some(d) = dangling {
                if d != image.is_dangling() {
                    continue;
                }
            }
            if let Some(patterns) = opts.filters.get("reference") {
                if !reference_matches(patterns, image) {
                    continue;
                }
            }
            out.push(self.summary(image).await);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        if opts.shared_size {
            self.fill_shared_sizes(&images, &mut out).await;
        }
        Ok(out)
    }

    pub(crate) async fn summary(&self, image: &LocalImage) -> ImageSummary {
        let r = &image.resolved;
        let target = image
            .records
            .iter()
            .find(|rec| matches!(RecordName::parse(&rec.name), RecordName::Tag(_)))
            .map(|rec| rec.target.clone())
            .unwrap_or_else(|| r.target.clone());
        ImageSummary {
            containers: 0,
            created: r.config.created_unix(),
            id: r.id().to_string(),
            labels: r.config.labels(),
            parent_id: r.config.parent.clone().unwrap_or_default(),
            repo_digests: image.repo_digests(),
            repo_tags: image.repo_tags(),
            shared_size: -1,
            size: self.image_size(r).await,
            descriptor: Some(WireOciDescriptor {
                media_type: target.media_type,
                digest: target.digest,
                size: target.size,
                annotations: None,
                platform: None,
            }),
        }
    }

    async fn fill_shared_sizes(&self, images: &[LocalImage], out: &mut [ImageSummary]) {
        let mut refs: BTreeMap<&str, usize> = BTreeMap::new();
        for image in images {
            for chain in &image.resolved.chain_ids {
                *refs.entry(chain.as_str()).or_default() += 1;
            }
        }
        for summary in out.iter_mut() {
            let Some(image) = images.iter().find(|i| i.id() == summary.id) else { continue };
            let mut shared = 0;
            for chain in &image.resolved.chain_ids {
                if refs.get(chain.as_str()).copied().unwrap_or(0) > 1 {
                    shared += self.layer_size(chain).await.unwrap_or(0);
                }
            }
            summary.shared_size = shared;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_path_elements() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*/app", "me/app"));
        assert!(!glob_match("*", "me/app"));
        assert!(glob_match("busybox:l?test", "busybox:latest"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*/*", "me/app"));
        assert!(!glob_match("me/*", "me/app/x"));
        assert!(glob_match("caf?", "café"));
    }

    #[test]
    fn glob_with_many_stars_takes_polynomial_time() {
        // Exponential before: this took longer than the fuzzer's timeout.
        let started = std::time::Instant::now();
        let pattern = format!("{}b", "*a".repeat(40));
        assert!(!glob_match(&pattern, &"a".repeat(200)));
        assert!(glob_match(&pattern, &format!("{}b", "a".repeat(200))));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn label_filters() {
        let labels = Some(BTreeMap::from([("a".to_string(), "1".to_string())]));
        assert!(labels_match(&["a".into()], &labels));
        assert!(labels_match(&["a=1".into()], &labels));
        assert!(!labels_match(&["a=2".into()], &labels));
        assert!(!labels_match(&["a".into()], &None));
    }
}
