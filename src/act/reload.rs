//! A new configuration for the running actions stage. The stage keeps
//! what must outlive a reload (the rollback guard, rollbacks in flight, a
//! pause, open incidents); incidents of firing rules that did not carry
//! over are resolved through the receivers that opened them, and new
//! receivers are told of incidents still open.

use super::{Actor, Backend, Episode, Notice, grafana};
use crate::config::{Action, Config};
use crate::engine::{Decision, DecisionKind, Dropped};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// What changes in the actions stage on a reload.
pub struct Reconfigure {
    pub config: Arc<Config>,
    pub backend: Option<Backend>,
    /// New receivers; None keeps the current ones (their settings did not change).
    pub receivers: Option<Receivers>,
    /// Firing rules of the old configuration that did not carry over.
    pub dropped: Vec<Dropped>,
}

/// Where pages and annotations go.
#[derive(Default)]
pub struct Receivers {
    pub pagers: Vec<mpsc::Sender<Notice>>,
    pub annotator: Option<mpsc::Sender<grafana::Annotation>>,
}

impl Actor {
    pub(super) fn reconfigure(&mut self, r: Reconfigure) {
        let at = SystemTime::now();
        for d in &r.dropped {
            let pages = self.config.rules[d.rule].actions.contains(&Action::Page);
            if pages && self.episodes[d.rule].open {
                let resolved = Decision {
                    rule: d.rule,
                    kind: DecisionKind::Resolved,
                    evidence: d.evidence.clone(),
                    at,
                };
                self.page(&resolved);
            }
        }
        let old = &self.config.rules;
        self.episodes = r
            .config
            .rules
            .iter()
            .map(|rule| {
                old.iter()
                    .position(|o| o == rule)
                    .filter(|j| !r.dropped.iter().any(|d| d.rule == *j))
                    .map_or_else(Episode::default, |j| self.episodes[j])
            })
            .collect();
        let rb = &r.config.rollback;
        self.guard.reconfigure(rb.bake, rb.cooldown);
        self.backend = r.backend.map(Arc::new);
        if let Some(receivers) = r.receivers {
            self.pagers = receivers.pagers;
            self.annotator = receivers.annotator;
            for e in &mut self.episodes {
                e.announce = e.open;
            }
        }
        self.config = r.config;
    }
}
