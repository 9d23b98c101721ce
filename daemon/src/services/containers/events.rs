//! Container events: the actor dockerd attaches to each one (`name`,
//! `image` and the container's labels, plus the action's own attributes).

use std::collections::BTreeMap;

use api_types::events::{EventActor, TYPE_CONTAINER};

use super::record::Container;
use super::ContainerService;

/// The event actor for `record`.
pub(super) fn actor(record: &Container, extra: &[(&str, String)]) -> EventActor {
    actor_of(&record.id, record.bare_name(), &record.config.image, &record.config.labels, extra)
}

/// As moby's `LogContainerEventWithAttributes`: the action's attributes and
/// the labels, then `image` (when set) and `name` over them.
fn actor_of(id: &str, name: &str, image: &str, labels: &BTreeMap<String, String>, extra: &[(&str, String)]) -> EventActor {
    let mut attributes: BTreeMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    attributes.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !image.is_empty() {
        attributes.insert("image".into(), image.to_string());
    }
    attributes.insert("name".into(), name.to_string());
    EventActor { id: id.to_string(), attributes }
}

impl ContainerService {
    /// Publish a container event about `record`.
    pub(super) fn emit(&self, record: &Container, action: &str, extra: &[(&str, String)]) {
        self.events.publish(TYPE_CONTAINER, action, actor(record, extra));
    }

    /// Publish a container event with no actor object (`prune`).
    pub(super) fn emit_anonymous(&self, action: &str, extra: &[(&str, String)]) {
        let attributes = extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        self.events.publish(TYPE_CONTAINER, action, EventActor { id: String::new(), attributes });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_has_labels_name_and_image() {
        let labels: BTreeMap<String, String> =
            [("name".to_string(), "label".to_string()), ("com.docker.compose.project".into(), "p".into())].into();
        let a = actor_of("cid", "web", "busybox", &labels, &[("exitCode", "3".into())]);
        assert_eq!(a.id, "cid");
        assert_eq!(a.attributes["name"], "web");
        assert_eq!(a.attributes["image"], "busybox");
        assert_eq!(a.attributes["exitCode"], "3");
        assert_eq!(a.attributes["com.docker.compose.project"], "p");
    }
}
