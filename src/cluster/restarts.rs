//! Crash loops: one list of the revision's pods per interval (never a
//! request per pod), turned into "how many container restarts happened
//! since the last look". A pod seen for the first time counts all its
//! restarts if it was created within the rule window (it started at zero),
//! otherwise it only sets the baseline.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Restarts observed by one look at the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restarts {
    pub at: Instant,
    /// Container restarts since the previous look.
    pub new: u32,
    /// Pods of the revision seen in this look.
    pub pods: usize,
}

pub struct RestartWatcher {
    pods: Api<Pod>,
    selector: String,
    every: Duration,
    /// Pods younger than this count their restarts in full on first sight.
    window: Duration,
    seen: HashMap<String, u32>,
}

impl RestartWatcher {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        selector: &str,
        every: Duration,
        window: Duration,
    ) -> Self {
        RestartWatcher {
            pods: Api::namespaced(client, namespace),
            selector: selector.to_string(),
            every,
            window,
            seen: HashMap::new(),
        }
    }

    /// Look every interval until `stop`; send what changed. A failed look is
    /// logged (once until the API answers again) and tried at the next tick.
    pub async fn run(mut self, out: mpsc::Sender<Restarts>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let params = ListParams::default().labels(&self.selector);
            match self.pods.list(&params).await {
                Ok(list) => {
                    if failing {
                        tracing::info!("listing pods for restart counts works again");
                        failing = false;
                    }
                    let seen = self.observe(&list.items, SystemTime::now());
                    if out.send(seen).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, selector = self.selector.as_str(), "cannot list pods for restart counts");
                        failing = true;
                    }
                }
            }
        }
    }

    /// Fold one list of pods into the per-pod counts.
    pub fn observe(&mut self, pods: &[Pod], now: SystemTime) -> Restarts {
        let mut new = 0u32;
        let mut current = HashMap::with_capacity(pods.len());
        for pod in pods {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            let total: u32 = pod
                .status
                .iter()
                .flat_map(|s| {
                    s.container_statuses
                        .iter()
                        .flatten()
                        .chain(s.init_container_statuses.iter().flatten())
                })
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .sum();
            let before = match self.seen.get(&uid) {
                Some(&b) => b,
                None if self.young(pod, now) => 0,
                None => total,
            };
            new = new.saturating_add(total.saturating_sub(before));
            current.insert(uid, total);
        }
        self.seen = current;
        Restarts {
            at: Instant::now(),
            new,
            pods: pods.len(),
        }
    }

    fn young(&self, pod: &Pod, now: SystemTime) -> bool {
        pod.metadata.creation_timestamp.as_ref().is_some_and(|t| {
            now.duration_since(SystemTime::from(t.0))
                .unwrap_or_default()
                < self.window
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, age: Duration, restarts: [i32; 2]) -> Pod {
        let created = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::try_from(age).unwrap();
        serde_json::from_value(json!({
            "metadata": {"name": uid, "uid": uid, "creationTimestamp": created.to_string()},
            "status": {"containerStatuses": [
                {"name": "app", "image": "a", "imageID": "", "ready": false, "restartCount": restarts[0]},
                {"name": "backstop", "image": "b", "imageID": "", "ready": true, "restartCount": restarts[1]}
            ]}
        }))
        .unwrap()
    }

    fn watcher() -> RestartWatcher {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        RestartWatcher::new(
            client,
            "shop",
            "app=checkout",
            Duration::from_secs(5),
            Duration::from_secs(600),
        )
    }

    #[tokio::test]
    async fn counts_new_restarts_between_looks() {
        crate::init_tls();
        let mut w = watcher();
        let hour = Duration::from_secs(3600);
        // An old pod sets the baseline; a young one started at zero.
        let first = w.observe(
            &[
                pod("old", hour, [5, 0]),
                pod("young", Duration::from_secs(60), [2, 0]),
            ],
            SystemTime::now(),
        );
        assert_eq!((first.new, first.pods), (2, 2));
        let second = w.observe(
            &[
                pod("old", hour, [6, 1]),
                pod("young", Duration::from_secs(65), [2, 0]),
            ],
            SystemTime::now(),
        );
        assert_eq!(second.new, 2);
        // A pod that went away and a new old-enough one: no spurious count.
        let third = w.observe(&[pod("other", hour, [9, 0])], SystemTime::now());
        assert_eq!((third.new, third.pods), (0, 1));
    }
}
