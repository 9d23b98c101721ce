//! Events: `GET /events` messages, as moby's `api/types/events.Message`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Object types that emit events (`Type`).
pub const TYPE_CONTAINER: &str = "container";
pub const TYPE_IMAGE: &str = "image";
pub const TYPE_NETWORK: &str = "network";
pub const TYPE_VOLUME: &str = "volume";
pub const TYPE_DAEMON: &str = "daemon";

/// The object an event is about: its ID and attributes (for containers
/// `name`, `image` and the container's labels, plus per-action extras).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventActor {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, one line of the `/events` stream.
///
/// `status`, `id` and `from` are the pre-1.22 fields dockerd still fills:
/// `status` (= `Action`) and `id` (= `Actor.ID`) for container and image
/// events, `from` (= the `image` attribute) for container events only;
/// omitted otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    /// "local" for engine events ("swarm" is for cluster events).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default)]
    pub time: i64,
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

impl EventMessage {
    /// A local-scope event at `time_nano` (Unix nanoseconds), with the
    /// legacy fields filled as dockerd's `events.Log` does.
    pub fn new(kind: &str, action: impl Into<String>, actor: EventActor, time_nano: i64) -> Self {
        let action = action.into();
        let (status, id, from) = match kind {
            TYPE_CONTAINER => {
                (action.clone(), actor.id.clone(), actor.attributes.get("image").cloned().unwrap_or_default())
            }
            TYPE_IMAGE => (action.clone(), actor.id.clone(), String::new()),
            _ => Default::default(),
        };
        Self {
            status,
            id,
            from,
            kind: kind.to_string(),
            action,
            actor,
            scope: "local".into(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_carry_the_legacy_fields() {
        let actor = EventActor {
            id: "abc".into(),
            attributes: [("image".to_string(), "busybox".to_string()), ("name".into(), "x".into())].into(),
        };
        let ev = EventMessage::new(TYPE_CONTAINER, "start", actor, 1_700_000_000_123_456_789);
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "start", "id": "abc", "from": "busybox",
                "Type": "container", "Action": "start",
                "Actor": {"ID": "abc", "Attributes": {"image": "busybox", "name": "x"}},
                "scope": "local", "time": 1_700_000_000i64, "timeNano": 1_700_000_000_123_456_789i64
            })
        );
    }

    #[test]
    fn other_events_omit_them() {
        let ev = EventMessage::new(TYPE_NETWORK, "create", EventActor { id: "n".into(), ..Default::default() }, 5);
        let json = serde_json::to_value(&ev).unwrap();
        assert!(json.get("status").is_none() && json.get("id").is_none() && json.get("from").is_none());
        let image = EventMessage::new(TYPE_IMAGE, "tag", EventActor { id: "sha256:1".into(), ..Default::default() }, 5);
        let json = serde_json::to_value(&image).unwrap();
        assert_eq!((json["status"].as_str(), json["id"].as_str()), (Some("tag"), Some("sha256:1")));
        assert!(json.get("from").is_none());
    }
}
