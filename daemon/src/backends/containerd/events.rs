//! containerd's event stream: task exits and OOMs for our namespace,
//! re-subscribed whenever the stream breaks (containerd restarts).

use std::time::Duration;

use containerd_client::events::{TaskExit, TaskOom};
use containerd_client::services::v1::{events_client::EventsClient, SubscribeRequest};
use prost::Message;
use tokio::sync::mpsc;

use super::Containerd;

/// What the container service hears about its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    Exit { container_id: String, exec_id: String, pid: u32, exit_status: u32, exited_at: Option<i64> },
    Oom { container_id: String },
    /// The stream was (re)established: exits may have been missed meanwhile.
    Resubscribed,
}

impl Containerd {
    /// Subscribe for good: events arrive on the returned channel; after a
    /// broken stream a `Resubscribed` marker tells the consumer to reconcile.
    pub fn task_events(&self) -> mpsc::Receiver<TaskEvent> {
        let (tx, rx) = mpsc::channel(256);
        let containerd = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                if tx.is_closed() {
                    return;
                }
                let filters = vec![
                    format!("namespace=={},topic==\"/tasks/exit\"", containerd.namespace()),
                    format!("namespace=={},topic==\"/tasks/oom\"", containerd.namespace()),
                ];
                match EventsClient::new(containerd.channel.clone()).subscribe(SubscribeRequest { filters }).await {
                    Ok(stream) => {
                        if !first && tx.send(TaskEvent::Resubscribed).await.is_err() {
                            return;
                        }
                        let mut stream = stream.into_inner();
                        while let Ok(Some(envelope)) = stream.message().await {
                            if let Some(event) = envelope.event.and_then(|any| decode(&envelope.topic, &any.value)) {
                                if tx.send(event).await.is_err() {
                                    return;
                                }
                            }
                        }
                        tracing::warn!("containerd event stream ended; re-subscribing");
                    }
                    Err(status) => tracing::debug!(error = %status, "containerd events subscribe failed"),
                }
                first = false;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        rx
    }
}

/// A protobuf timestamp in nanoseconds since the epoch; `None` for one
/// before it or past i64 (containerd sends Go's zero time, year 1, for an
/// exit it did not see happen, e.g. a shim that died).
fn unix_nanos(seconds: i64, nanos: i32) -> Option<i64> {
    if seconds <= 0 {
        return None;
    }
    seconds.checked_mul(1_000_000_000)?.checked_add(i64::from(nanos))
}

fn decode(topic: &str, bytes: &[u8]) -> Option<TaskEvent> {
    match topic {
        "/tasks/exit" => TaskExit::decode(bytes).ok().map(|e| TaskEvent::Exit {
            exec_id: if e.id == e.container_id { String::new() } else { e.id },
            container_id: e.container_id,
            pid: e.pid,
            exit_status: e.exit_status,
            exited_at: e.exited_at.and_then(|t| unix_nanos(t.seconds, t.nanos)),
        }),
        "/tasks/oom" => TaskOom::decode(bytes).ok().map(|e| TaskEvent::Oom { container_id: e.container_id }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_times_out_of_range_are_dropped_not_a_panic() {
        assert_eq!(unix_nanos(1_700_000_000, 5), Some(1_700_000_000_000_000_005));
        // Go's zero time, as containerd sends it for an exit it did not see.
        assert_eq!(unix_nanos(-62_135_596_800, 0), None);
        assert_eq!(unix_nanos(0, 0), None);
        assert_eq!(unix_nanos(i64::MAX, 0), None);
    }
}
