//! A new configuration generation for the running actions stage. It comes
//! in order with the decisions (after every decision of the generation
//! before it), so no decision is ever read against another generation's
//! rules. The stage keeps what must outlive a reload (the rollback guard,
//! rollbacks in flight, a pause, open incidents of rules that carried
//! over); incidents of firing rules that did not carry over are resolved
//! through the receivers that opened them, and replaced receivers are told
//! of incidents still open.

use super::{Actor, Backend, Episode, Notice, grafana};
use crate::config::{Action, Config, ReceiverChanges};
use crate::engine::{Carried, Decision, DecisionKind};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// What changes in the actions stage on a reload.
pub struct Reconfigure {
    pub generation: u64,
    pub config: Arc<Config>,
    pub backend: Option<Backend>,
    /// The receivers `changes` names, built for the new configuration
    /// (None where the new configuration has none); the others stay.
    pub receivers: Receivers,
    pub changes: ReceiverChanges,
    /// Which rules carried over, and the firing ones that ended.
    pub carried: Carried,
}

/// Where pages and annotations go, one queue per configured receiver.
#[derive(Default)]
pub struct Receivers {
    pub alertmanager: Option<mpsc::Sender<Notice>>,
    pub pagerduty: Option<mpsc::Sender<Notice>>,
    pub slack: Option<mpsc::Sender<Notice>>,
    pub webhook: Option<mpsc::Sender<Notice>>,
    pub grafana: Option<mpsc::Sender<grafana::Annotation>>,
}

impl Receivers {
    /// The page receivers `which` selects.
    pub(super) fn pagers(
        &self,
        which: ReceiverChanges,
    ) -> impl Iterator<Item = &mpsc::Sender<Notice>> {
        let am = self.alertmanager.as_ref().filter(|_| which.alertmanager);
        let pd = self.pagerduty.as_ref().filter(|_| which.pagerduty);
        let slack = self.slack.as_ref().filter(|_| which.slack);
        let webhook = self.webhook.as_ref().filter(|_| which.webhook);
        am.into_iter().chain(pd).chain(slack).chain(webhook)
    }

    pub(super) fn has_pager(&self) -> bool {
        self.pagers(ReceiverChanges::ALL).next().is_some()
    }

    /// Take the receivers `changes` names from `new`.
    fn replace(&mut self, new: Receivers, changes: ReceiverChanges) {
        if changes.alertmanager {
            self.alertmanager = new.alertmanager;
        }
        if changes.pagerduty {
            self.pagerduty = new.pagerduty;
        }
        if changes.slack {
            self.slack = new.slack;
        }
        if changes.webhook {
            self.webhook = new.webhook;
        }
        if changes.grafana {
            self.grafana = new.grafana;
        }
    }
}

impl Actor {
    pub(super) fn reconfigure(&mut self, r: Reconfigure) {
        let at = SystemTime::now();
        // Resolved under the old configuration, by the receivers that
        // opened the incidents (old rule indexes, old receivers).
        for d in &r.carried.dropped {
            let pages = self.config.rules[d.rule].actions.contains(&Action::Page);
            if pages && self.episodes[d.rule].open {
                let resolved = Decision {
                    generation: self.generation,
                    rule: d.rule,
                    kind: DecisionKind::Resolved,
                    evidence: d.evidence.clone(),
                    at,
                };
                self.page(&resolved, None, ReceiverChanges::ALL);
            }
        }
        let mut old: Vec<Option<Episode>> = self.episodes.drain(..).map(Some).collect();
        self.episodes = r
            .carried
            .rules
            .iter()
            .map(|from| from.and_then(|j| old[j].take()).unwrap_or_default())
            .collect();
        let rb = &r.config.rollback;
        self.guard.reconfigure(rb.bake, rb.cooldown);
        self.backend = r.backend.map(Arc::new);
        if r.changes.any() {
            self.receivers.replace(r.receivers, r.changes);
            for e in self.episodes.iter_mut().filter(|e| e.open) {
                e.announce = e.announce.union(r.changes);
            }
        }
        self.generation = r.generation;
        self.config = r.config;
    }
}
