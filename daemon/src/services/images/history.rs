//! `GET /images/{name}/history`: the config's history, newest first.

use api_types::image::HistoryResponseItem;

use super::ImageService;
use crate::services::ServiceError;

impl ImageService {
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryResponseItem>, ServiceError> {
        let found = self.find(name).await?;
        let r = &found.image.resolved;
        let mut items = Vec::with_capacity(r.config.history.len());
        let mut layer = 0;
        for h in &r.config.history {
            let mut size = 0;
            if !h.empty_layer {
                if let Some(chain) = r.chain_ids.get(layer) {
                    size = match self.layer_size(chain).await {
                        Some(s) => s,
                        None => r.layers.get(layer).map(|l| l.size).unwrap_or(0),
                    };
                }
                layer += 1;
            }
            items.push(HistoryResponseItem {
                comment: h.comment.clone().unwrap_or_default(),
                created: h
                    .created
                    .as_deref()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                id: "<missing>".into(),
                size,
                tags: None,
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = r.id().to_string();
            let tags = found.image.repo_tags();
            top.tags = if tags.is_empty() { None } else { Some(tags) };
        }
        Ok(items)
    }
}
