//! The `filters` query parameter: `{"key":["v1","v2"]}`, or the older
//! `{"key":{"v1":true}}` form.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFilter(pub String);

impl std::fmt::Display for InvalidFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidFilter {}

impl Filters {
    pub fn parse(text: &str) -> Result<Self, InvalidFilter> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| InvalidFilter("invalid filter".into()))?;
        let object = value.as_object().ok_or_else(|| InvalidFilter("invalid filter".into()))?;
        let mut filters = BTreeMap::new();
        for (key, values) in object {
            let list: Vec<String> = match values {
                serde_json::Value::Array(items) => {
                    items.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<_>>()
                }
                serde_json::Value::Object(map) => Some(
                    map.iter().filter(|(_, on)| on.as_bool() == Some(true)).map(|(k, _)| k.clone()).collect(),
                ),
                _ => None,
            }
            .ok_or_else(|| InvalidFilter("invalid filter".into()))?;
            filters.insert(key.clone(), list);
        }
        Ok(Self(filters))
    }

    /// Reject keys outside `allowed`, with dockerd's text.
    pub fn only(&self, allowed: &[&str]) -> Result<(), InvalidFilter> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(bad) => Err(InvalidFilter(format!("invalid filter '{bad}'"))),
            None => Ok(()),
        }
    }

    /// No filter given at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// True when `key` is absent or any of its values satisfies `matches`.
    pub fn any(&self, key: &str, mut matches: impl FnMut(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(values) => values.iter().any(|v| matches(v)),
        }
    }

    /// `label=key` or `label=key=value` against a label map.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.get("label").iter().all(|wanted| label_present(wanted, labels))
    }

    /// Whether `labels` has one the `label!` filter excludes (prune).
    pub fn labels_excluded(&self, labels: &BTreeMap<String, String>) -> bool {
        self.get("label!").iter().any(|unwanted| label_present(unwanted, labels))
    }
}

/// `key` or `key=value` among `labels`.
fn label_present(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        let a = Filters::parse(r#"{"status":["running","exited"],"label":["a=b"]}"#).unwrap();
        assert_eq!(a.get("status"), ["running", "exited"]);
        let b = Filters::parse(r#"{"status":{"running":true}}"#).unwrap();
        assert_eq!(b.get("status"), ["running"]);
        assert!(Filters::parse("").unwrap().get("x").is_empty());
        assert_eq!(Filters::parse("notjson").unwrap_err().to_string(), "invalid filter");
    }

    #[test]
    fn only_and_labels() {
        let f = Filters::parse(r#"{"foo":["x"]}"#).unwrap();
        assert_eq!(f.only(&["status"]).unwrap_err().to_string(), "invalid filter 'foo'");
        let f = Filters::parse(r#"{"label":["a","b=2"]}"#).unwrap();
        let labels: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert!(f.labels_match(&labels));
        let labels: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "3".into())].into();
        assert!(!f.labels_match(&labels));
    }
}
