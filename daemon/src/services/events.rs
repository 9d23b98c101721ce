//! Events: the daemon's event bus. Services publish what happened; `GET
//! /events` subscribers get the recent past (a bounded ring, for `since`)
//! and then live events.
//!
//! Publishing never waits on a subscriber: live events go through a tokio
//! broadcast channel, and a subscriber that falls more than `LIVE_BACKLOG`
//! events behind is disconnected (its stream ends) instead of stalling
//! anyone. dockerd drops events for slow consumers too.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use api_types::events::{EventActor, EventMessage};
use api_types::filters::Filters;
use api_types::reference::Reference;
use tokio::sync::broadcast;

/// How many past events are kept for `since` replay.
pub const RING_SIZE: usize = 1024;
/// How far a live subscriber may fall behind before it is disconnected.
pub const LIVE_BACKLOG: usize = 1024;

/// The event bus; clones share one ring and one channel.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    ring: Mutex<VecDeque<Arc<EventMessage>>>,
    live: broadcast::Sender<Arc<EventMessage>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(VecDeque::with_capacity(RING_SIZE)),
                live: broadcast::channel(LIVE_BACKLOG).0,
            }),
        }
    }

    /// Record an event of type `kind` now. Cheap and never blocks on
    /// subscribers.
    pub fn publish(&self, kind: &str, action: impl Into<String>, actor: EventActor) {
        let mut ring = self.inner.ring.lock().unwrap_or_else(|e| e.into_inner());
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        // Under the lock: ring order is publish order and times never go
        // backwards, which `since` replay relies on.
        let now = ring.back().map_or(now, |last| now.max(last.time_nano));
        let event = Arc::new(EventMessage::new(kind, action, actor, now));
        if ring.len() == RING_SIZE {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        // No receivers is not an error worth reporting.
        let _ = self.inner.live.send(event);
    }

    /// Past events in `[since, until]` (Unix nanoseconds) that match
    /// `filters`, then (unless `until` is already past) live ones until
    /// `until`. dockerd replays nothing when neither bound is given.
    pub fn subscribe(&self, since: Option<i64>, until: Option<i64>, filters: Filters) -> Subscription {
        let filter = EventFilter(filters);
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let ring = self.inner.ring.lock().unwrap_or_else(|e| e.into_inner());
        let past: VecDeque<Arc<EventMessage>> = if since.is_none() && until.is_none() {
            VecDeque::new()
        } else {
            let since = since.unwrap_or(0);
            ring.iter()
                .filter(|e| e.time_nano >= since && until.is_none_or(|u| e.time_nano <= u) && filter.matches(e))
                .cloned()
                .collect()
        };
        let only_past = until.is_some_and(|u| u < now);
        // Subscribed while the ring is locked: nothing is missed or doubled.
        let live = (!only_past).then(|| self.inner.live.subscribe());
        drop(ring);
        let deadline = until.map(|u| {
            let wait = u.saturating_sub(now).max(0) as u64;
            tokio::time::Instant::now() + std::time::Duration::from_nanos(wait)
        });
        Subscription { past, live, filter, deadline }
    }
}

/// One `/events` client's view of the bus.
pub struct Subscription {
    past: VecDeque<Arc<EventMessage>>,
    live: Option<broadcast::Receiver<Arc<EventMessage>>>,
    filter: EventFilter,
    deadline: Option<tokio::time::Instant>,
}

impl Subscription {
    /// The next matching event; `None` when the stream is over (`until`
    /// reached, or this subscriber lagged and was disconnected).
    pub async fn next(&mut self) -> Option<Arc<EventMessage>> {
        if let Some(event) = self.past.pop_front() {
            return Some(event);
        }
        let live = self.live.as_mut()?;
        let receive = async {
            loop {
                match live.recv().await {
                    Ok(event) if self.filter.matches(&event) => return Some(event),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "events subscriber fell behind; disconnecting it");
                        return None;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        let next = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, receive).await.unwrap_or(None),
            None => receive.await,
        };
        if next.is_none() {
            self.live = None;
        }
        next
    }
}

/// dockerd's event filter (`daemon/events/filter.go`).
struct EventFilter(Filters);

impl EventFilter {
    fn matches(&self, ev: &EventMessage) -> bool {
        self.event(ev)
            && self.exact("type", &ev.kind)
            && self.exact("scope", &ev.scope)
            && self.by_name(ev, "daemon")
            && self.by_name(ev, "container")
            && self.by_name(ev, "volume")
            && self.by_name(ev, "network")
            && self.image(ev)
            && self.0.labels_match(&ev.actor.attributes)
    }

    /// True when `key` is not filtered on or `value` is one of its values.
    fn exact(&self, key: &str, value: &str) -> bool {
        !self.0.contains(key) || self.0.get(key).iter().any(|v| v == value)
    }

    /// `exact`, or `value` starts with one of the values.
    fn fuzzy(&self, key: &str, value: &str) -> bool {
        !self.0.contains(key) || self.0.get(key).iter().any(|v| value.starts_with(v.as_str()))
    }

    /// `event=health_status` matches `health_status: healthy`, and the same
    /// for `exec_create`/`exec_start` (their actions carry the command).
    fn event(&self, ev: &EventMessage) -> bool {
        let loose = self.0.get("event").iter().any(|v| matches!(v.as_str(), "health_status" | "exec_create" | "exec_start"));
        if loose {
            self.fuzzy("event", &ev.action)
        } else {
            self.exact("event", &ev.action)
        }
    }

    /// The actor's ID or `name` attribute, by prefix.
    fn by_name(&self, ev: &EventMessage, key: &str) -> bool {
        let name = ev.actor.attributes.get("name").map(String::as_str).unwrap_or_default();
        self.fuzzy(key, &ev.actor.id) || self.fuzzy(key, name)
    }

    /// The image ID or name, with or without its tag; for container events
    /// the container's image.
    fn image(&self, ev: &EventMessage) -> bool {
        let attr = if ev.kind == api_types::events::TYPE_IMAGE { "name" } else { "image" };
        let name = ev.actor.attributes.get(attr).map(String::as_str).unwrap_or_default();
        [ev.actor.id.as_str(), name].iter().any(|v| self.exact("image", v) || self.exact("image", &strip_tag(v)))
    }
}

fn strip_tag(image: &str) -> String {
    match Reference::parse_normalized(image) {
        Ok(r) => r.familiar_name(),
        Err(_) => image.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use api_types::events::{TYPE_CONTAINER, TYPE_IMAGE, TYPE_NETWORK};

    fn container(id: &str, name: &str, labels: &[(&str, &str)]) -> EventActor {
        let mut attributes: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        attributes.insert("name".into(), name.into());
        attributes.insert("image".into(), "busybox:latest".into());
        EventActor { id: id.into(), attributes }
    }

    fn filter(json: &str) -> EventFilter {
        EventFilter(Filters::parse(json).unwrap())
    }

    fn event(kind: &str, action: &str, actor: EventActor) -> EventMessage {
        EventMessage::new(kind, action, actor, 1)
    }

    #[test]
    fn filters_follow_dockerd() {
        let start = event(TYPE_CONTAINER, "start", container("abcdef", "web", &[("com.docker.compose.project", "p")]));
        let health = event(TYPE_CONTAINER, "health_status: healthy", container("abcdef", "web", &[]));
        let exec = event(TYPE_CONTAINER, "exec_start: sh -c true", container("abcdef", "web", &[]));
        let net = event(TYPE_NETWORK, "create", EventActor { id: "n1".into(), attributes: [("name".into(), "front".into())].into() });
        let image = event(TYPE_IMAGE, "tag", EventActor { id: "sha256:1".into(), attributes: [("name".into(), "busybox:v2".into())].into() });

        assert!(filter("").matches(&start));
        assert!(filter(r#"{"container":["web"]}"#).matches(&start));
        assert!(filter(r#"{"container":["abc"]}"#).matches(&start));
        assert!(!filter(r#"{"container":["db"]}"#).matches(&start));
        assert!(!filter(r#"{"container":["web"]}"#).matches(&net));
        assert!(filter(r#"{"event":["start"]}"#).matches(&start));
        assert!(!filter(r#"{"event":["star"]}"#).matches(&start));
        assert!(filter(r#"{"event":["health_status"]}"#).matches(&health));
        assert!(filter(r#"{"event":["exec_start"]}"#).matches(&exec));
        assert!(!filter(r#"{"event":["start"]}"#).matches(&health));
        assert!(filter(r#"{"type":["network"]}"#).matches(&net) && !filter(r#"{"type":["network"]}"#).matches(&start));
        assert!(filter(r#"{"network":["front"]}"#).matches(&net));
        assert!(filter(r#"{"label":["com.docker.compose.project=p"]}"#).matches(&start));
        assert!(filter(r#"{"label":["com.docker.compose.project"]}"#).matches(&start));
        assert!(!filter(r#"{"label":["com.docker.compose.project=q"]}"#).matches(&start));
        assert!(filter(r#"{"image":["busybox"]}"#).matches(&start));
        assert!(filter(r#"{"image":["busybox:latest"]}"#).matches(&start));
        assert!(filter(r#"{"image":["busybox"]}"#).matches(&image));
        assert!(filter(r#"{"image":["sha256:1"]}"#).matches(&image));
        assert!(!filter(r#"{"image":["alpine"]}"#).matches(&start));
        assert!(filter(r#"{"scope":["local"]}"#).matches(&start));
    }

    #[tokio::test]
    async fn replay_then_live_then_until() {
        let bus = EventBus::new();
        bus.publish(TYPE_CONTAINER, "create", container("a", "one", &[]));
        bus.publish(TYPE_CONTAINER, "start", container("a", "one", &[]));
        // No bounds: no replay.
        let mut live = bus.subscribe(None, None, Filters::default());
        let mut all = bus.subscribe(Some(0), None, Filters::default());
        let mut starts = bus.subscribe(Some(0), None, Filters::parse(r#"{"event":["start"]}"#).unwrap());
        bus.publish(TYPE_CONTAINER, "die", container("a", "one", &[]));
        bus.publish(TYPE_CONTAINER, "start", container("a", "one", &[]));
        assert_eq!(live.next().await.unwrap().action, "die");
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(all.next().await.unwrap().action.clone());
        }
        assert_eq!(got, ["create", "start", "die", "start"]);
        assert_eq!(starts.next().await.unwrap().action, "start");
        assert_eq!(starts.next().await.unwrap().action, "start");
        // `until` in the past: only the replay, then the end.
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let mut bounded = bus.subscribe(None, Some(now), Filters::default());
        let mut n = 0;
        while bounded.next().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 4);
        // `until` in the future ends the live stream when it comes.
        let soon = chrono::Utc::now().timestamp_nanos_opt().unwrap() + 50_000_000;
        let mut short = bus.subscribe(Some(i64::MAX), Some(soon), Filters::default());
        assert!(short.next().await.is_none());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_cut_off_without_stalling_publishers() {
        let bus = EventBus::new();
        let mut slow = bus.subscribe(None, None, Filters::default());
        let mut fast = bus.subscribe(None, None, Filters::default());
        for i in 0..(LIVE_BACKLOG + 10) {
            bus.publish(TYPE_CONTAINER, format!("a{i}"), EventActor::default());
            fast.next().await.unwrap();
        }
        assert!(slow.next().await.is_none());
        assert!(slow.next().await.is_none());
        assert_eq!(bus.inner.ring.lock().unwrap().len(), RING_SIZE);
    }
}
