//! Crash loops: one list of the revision's pods per interval (never a
//! request per pod), turned into "how many restarts of each container
//! happened since the last look" (a rule then counts the app's containers,
//! not backstop's own). A pod seen for the first time counts all its
//! restarts if it was created within the rule window (it started at zero),
//! otherwise it only sets the baseline.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Restarts observed by one look at the pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarts {
    pub at: Instant,
    /// Restarts since the previous look, per container name (summed over
    /// the pods), sorted by name; containers that did not restart are left out.
    pub new: Vec<(String, u32)>,
    /// Pods of the revision seen in this look.
    pub pods: usize,
}

impl Restarts {
    /// Restarts since the previous look of the containers `counts` accepts.
    pub fn of(&self, counts: impl Fn(&str) -> bool) -> u32 {
        self.new
            .iter()
            .filter(|(name, _)| counts(name))
            .fold(0, |sum, (_, n)| sum.saturating_add(*n))
    }
}

pub struct RestartWatcher {
    pods: Api<Pod>,
    selector: String,
    every: Duration,
    /// Pods younger than this count their restarts in full on first sight.
    window: Duration,
    /// backstop's own container, which the pods should have.
    own: String,
    /// Said once that no pod has a container named `own`.
    own_missing_said: bool,
    /// Restart count per (pod uid, container name).
    seen: HashMap<(String, String), u32>,
}

impl RestartWatcher {
    /// `own`: the name of backstop's container in the pods.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        selector: &str,
        every: Duration,
        window: Duration,
        own: &str,
    ) -> Self {
        RestartWatcher {
            pods: Api::namespaced(client, namespace),
            selector: selector.to_string(),
            every,
            window,
            own: own.to_string(),
            own_missing_said: false,
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

    /// Fold one list of pods into the per-container counts.
    pub fn observe(&mut self, pods: &[Pod], now: SystemTime) -> Restarts {
        let mut new: BTreeMap<String, u32> = BTreeMap::new();
        let mut current = HashMap::with_capacity(pods.len() * 2);
        let mut own_seen = false;
        for pod in pods {
            let Some(uid) = &pod.metadata.uid else {
                continue;
            };
            let young = self.young(pod, now);
            let statuses = pod.status.iter().flat_map(|s| {
                s.container_statuses
                    .iter()
                    .flatten()
                    .chain(s.init_container_statuses.iter().flatten())
            });
            for c in statuses {
                own_seen |= c.name == self.own;
                let total = u32::try_from(c.restart_count).unwrap_or(0);
                let key = (uid.clone(), c.name.clone());
                let before = match self.seen.get(&key) {
                    Some(&b) => b,
                    None if young => 0,
                    None => total,
                };
                let added = total.saturating_sub(before);
                if added > 0 {
                    let sum = new.entry(c.name.clone()).or_default();
                    *sum = sum.saturating_add(added);
                }
                current.insert(key, total);
            }
        }
        if !own_seen && !pods.is_empty() && !self.own_missing_said {
            // Then "every container but backstop's own" is every container.
            tracing::warn!(
                container = self.own.as_str(),
                "no container of this revision's pods is named {:?}: backstop's own restarts \
                 count as the app's; set rollback.kubernetes.container to the name of \
                 backstop's container",
                self.own
            );
            self.own_missing_said = true;
        }
        self.seen = current;
        Restarts {
            at: Instant::now(),
            new: new.into_iter().collect(),
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
            "backstop",
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
        assert_eq!(
            (first.new.clone(), first.pods),
            (vec![("app".into(), 2)], 2)
        );
        let second = w.observe(
            &[
                pod("old", hour, [6, 1]),
                pod("young", Duration::from_secs(65), [2, 0]),
            ],
            SystemTime::now(),
        );
        // Per container: the app's and backstop's own apart.
        assert_eq!(second.new, vec![("app".into(), 1), ("backstop".into(), 1)]);
        assert_eq!(second.of(|c| c != "backstop"), 1);
        assert_eq!(second.of(|_| true), 2);
        // A pod that went away and a new old-enough one: no spurious count.
        let third = w.observe(&[pod("other", hour, [9, 0])], SystemTime::now());
        assert_eq!((third.new, third.pods), (vec![], 1));
    }
}
