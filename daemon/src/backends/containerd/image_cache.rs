//! The namespace's image records, listed once and kept until something
//! changes them. Listing every record costs containerd 2-3 ms of CPU with a
//! hundred tags, and every image lookup needs the whole list (an image is
//! all the records whose target resolves to the same config).
//!
//! The copy is used only while berthd watches containerd's image events
//! (`Containerd::watch_images`): then a change by another client (`ctr`,
//! a second daemon) drops it when its event arrives, and berthd's own
//! writes drop it as soon as they return. Without the watch (before it is
//! in place, or while containerd is away) every call lists afresh.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_client::services::v1::{events_client::EventsClient, PublishRequest, SubscribeRequest};

use super::images::ImageRecord;
use super::Containerd;

/// The topic of the marker berthd publishes to learn that its subscription
/// is in place: containerd answers a subscribe only with its first event.
const WATCH_MARKER_TOPIC: &str = "/berthd/images-watch";
/// Markers one subscription attempt publishes before it is given up.
const MARKERS: usize = 50;
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct ImageCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Events are being heard: a kept copy is current.
    watched: bool,
    /// Bumped on every change, so a listing that raced one is not kept.
    generation: u64,
    records: Option<Arc<Vec<ImageRecord>>>,
}

impl ImageCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept copy, or the generation a fresh listing must be kept under.
    fn get(&self) -> Result<Arc<Vec<ImageRecord>>, u64> {
        let state = self.lock();
        match (&state.records, state.watched) {
            (Some(records), true) => Ok(records.clone()),
            _ => Err(state.generation),
        }
    }

    fn keep(&self, generation: u64, records: Arc<Vec<ImageRecord>>) {
        let mut state = self.lock();
        if state.watched && state.generation == generation {
            state.records = Some(records);
        }
    }

    /// Something changed (or may have): the copy is gone.
    pub(super) fn changed(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.records = None;
    }

    fn set_watched(&self, watched: bool) {
        self.lock().watched = watched;
        self.changed();
    }
}

impl Containerd {
    /// Every image record of the namespace, from the kept copy when it is
    /// current.
    pub(super) async fn image_records(&self) -> Result<Arc<Vec<ImageRecord>>, super::ContainerdError> {
        match self.image_cache.get() {
            Ok(records) => Ok(records),
            Err(generation) => {
                let records = Arc::new(self.image_list_uncached(&[]).await?);
                self.image_cache.keep(generation, records.clone());
                Ok(records)
            }
        }
    }

    /// Drop the kept records: the next listing asks containerd. For a
    /// lookup that missed, in case another client's change is not heard yet.
    pub fn forget_image_records(&self) {
        self.image_cache.changed();
    }

    /// Watch the namespace's image events for good, so that the records
    /// can be kept between changes; re-subscribes after a broken stream.
    pub fn watch_images(&self) {
        let containerd = self.clone();
        tokio::spawn(async move {
            // Quick retries while containerd restarts; slower ones while a
            // subscription never takes (each attempt publishes markers).
            let mut pause = RETRY_FIRST;
            loop {
                let heard = containerd.follow_image_events().await;
                containerd.image_cache.set_watched(false);
                pause = if heard { RETRY_FIRST } else { (pause * 2).min(RETRY_MAX) };
                tokio::time::sleep(pause).await;
            }
        });
    }

    /// One subscription, until its stream ends; false if it never took.
    async fn follow_image_events(&self) -> bool {
        let Some(mut stream) = self.subscribe_image_events().await else {
            return false;
        };
        self.image_cache.set_watched(true);
        tracing::debug!("watching containerd's image events: image records are kept between changes");
        while let Ok(Some(envelope)) = stream.message().await {
            if envelope.topic != WATCH_MARKER_TOPIC {
                self.image_cache.changed();
            }
        }
        tracing::debug!("containerd image event stream ended; re-subscribing");
        true
    }

    /// A subscription to the namespace's image events, once it is known to
    /// be in place: containerd sends nothing, not even headers, before the
    /// first event, so the marker is published until it comes back.
    async fn subscribe_image_events(&self) -> Option<tonic::Streaming<containerd_client::types::Envelope>> {
        let namespace = self.namespace();
        let filters = vec![
            format!("namespace=={namespace},topic~=\"^/images/\""),
            format!("namespace=={namespace},topic==\"{WATCH_MARKER_TOPIC}\""),
        ];
        let mut events = EventsClient::new(self.channel.clone());
        let subscribe = events.subscribe(SubscribeRequest { filters });
        let mut marking = std::pin::pin!(self.publish_watch_markers());
        let mut stream = tokio::select! {
            subscribed = subscribe => match subscribed {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    tracing::debug!(error = %status, "containerd image events subscribe failed");
                    return None;
                }
            },
            () = &mut marking => return None,
        };
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                () = &mut marking => return None,
            };
            match message {
                Ok(Some(envelope)) if envelope.topic == WATCH_MARKER_TOPIC => return Some(stream),
                Ok(Some(_)) => self.image_cache.changed(),
                _ => return None,
            }
        }
    }

    /// Publish the marker every 100 ms, at most `MARKERS` times; returns
    /// early if publishing fails.
    async fn publish_watch_markers(&self) {
        for _ in 0..MARKERS {
            let marker = PublishRequest {
                topic: WATCH_MARKER_TOPIC.to_string(),
                event: Some(prost_types::Any { type_url: "type.googleapis.com/google.protobuf.Empty".into(), value: vec![] }),
            };
            if let Err(status) = EventsClient::new(self.channel.clone()).publish(self.request(marker)).await {
                tracing::debug!(error = %status, "publishing the image watch marker failed");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::containerd::OciDescriptor;

    fn records(name: &str) -> Arc<Vec<ImageRecord>> {
        Arc::new(vec![ImageRecord::new(name, OciDescriptor::default())])
    }

    #[test]
    fn nothing_is_kept_unless_events_are_heard() {
        let cache = ImageCache::default();
        let generation = cache.get().unwrap_err();
        cache.keep(generation, records("a"));
        assert!(cache.get().is_err());

        cache.set_watched(true);
        let generation = cache.get().unwrap_err();
        cache.keep(generation, records("a"));
        assert_eq!(cache.get().unwrap()[0].name, "a");

        cache.set_watched(false);
        assert!(cache.get().is_err());
    }

    #[test]
    fn a_listing_that_raced_a_change_is_not_kept() {
        let cache = ImageCache::default();
        cache.set_watched(true);
        let generation = cache.get().unwrap_err();
        cache.changed();
        cache.keep(generation, records("stale"));
        assert!(cache.get().is_err());

        let generation = cache.get().unwrap_err();
        cache.keep(generation, records("fresh"));
        cache.changed();
        assert!(cache.get().is_err());
    }
}
