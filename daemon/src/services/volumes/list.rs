//! `docker volume ls` with dockerd's filters: `dangling`, `driver`,
//! `label`, `name`.

use api_types::filters::Filters;
use api_types::volume::VolumeListResponse;

use super::VolumeService;
use crate::services::ServiceError;

impl VolumeService {
    pub fn list(&self, filters: &Filters) -> Result<VolumeListResponse, ServiceError> {
        filters.only(&["dangling", "driver", "label", "name"]).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        let dangling = match filters.get("dangling") {
            [] => None,
            values => Some(values.iter().map(|v| parse_bool("dangling", v)).collect::<Result<Vec<_>, _>>()?),
        };
        let reg = self.registry();
        let volumes = reg
            .volumes
            .values()
            .filter(|r| filters.any("driver", |d| d == r.driver))
            // dockerd matches `name` as a regular expression; a substring
            // covers the literal names clients send.
            .filter(|r| filters.any("name", |n| r.name.contains(n)))
            .filter(|r| filters.labels_match(&r.labels))
            .filter(|r| {
                let unused = !reg.refs.contains_key(&r.name);
                dangling.as_ref().is_none_or(|wanted| wanted.contains(&unused))
            })
            .map(|r| self.to_api(r))
            .collect();
        Ok(VolumeListResponse { volumes, warnings: None })
    }
}

/// dockerd's boolean filter values.
pub(super) fn parse_bool(key: &str, value: &str) -> Result<bool, ServiceError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ServiceError::InvalidParameter(format!("invalid filter '{key}={value}'"))),
    }
}
