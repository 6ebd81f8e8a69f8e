//! Telling people: the `Notice` every page receiver gets, how the actor
//! builds and queues it, and the Grafana marks that go with it.

use super::words::{Fact, RollbackNote, headline};
use super::{Actor, grafana};
use crate::config::{Action, ReceiverChanges};
use crate::engine::{Decision, DecisionKind};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// A rule with `page` started firing or resolved: what every receiver needs.
#[derive(Debug, Clone)]
pub struct Notice {
    pub rule: String,
    pub severity: crate::config::Severity,
    pub firing: bool,
    pub service: String,
    pub revision: String,
    /// One line in plain words: the service, the revision, what fails,
    /// the limit and what backstop did (`headline`).
    pub summary: String,
    /// The plain fact the summary leads with.
    pub fact: Fact,
    /// The evidence, thresholds and revision, for the person paged.
    pub description: String,
    pub evidence: crate::rules::Evidence,
    /// The rule's actions (`rollback`, `page`).
    pub actions: Vec<&'static str>,
    /// On resolve: this revision was rolled back.
    pub rolled_back: bool,
    /// Where this rule's rollback stands: started, held back, or its
    /// outcome (in the update sent once it is known). None: the rule does
    /// not roll back, or has nothing new to say about it.
    pub rollback: Option<RollbackNote>,
    pub at: SystemTime,
}

impl Notice {
    /// The evidence kind (`consecutive_failures`, `burn_rate`, ...): PagerDuty's `class`.
    pub fn evidence_kind(&self) -> String {
        serde_json::to_value(&self.evidence)
            .ok()
            .and_then(|v| v["kind"].as_str().map(String::from))
            .unwrap_or_default()
    }

    /// The same notice, telling where the rollback stands now.
    pub fn with_rollback(mut self, note: RollbackNote) -> Notice {
        self.rollback = Some(note);
        self.summary = self.headline();
        self
    }

    /// This rule's summary line on its own (an incident of several rules
    /// has its own, built from all of theirs).
    fn headline(&self) -> String {
        if !self.firing {
            return format!(
                "{} {}: {} ok again ({}); rule {} resolved",
                self.service, self.revision, self.fact.subject, self.fact.what, self.rule
            );
        }
        let rolls_back = self.actions.contains(&"rollback");
        // A rule that rolls back but has not said how far it got is about to.
        let started = RollbackNote::Started;
        let note = self.rollback.as_ref().or(rolls_back.then_some(&started));
        headline(
            &self.service,
            &self.revision,
            &[(&self.rule, &self.fact)],
            note,
        )
    }
}

impl Actor {
    /// Queue the notice of `d` for the page receivers `to` selects.
    pub(super) fn page(&mut self, d: &Decision, note: Option<RollbackNote>, to: ReceiverChanges) {
        let rule = &self.config.rules[d.rule];
        let firing = d.kind == DecisionKind::Fired;
        if !self.receivers.has_pager() {
            // Configuration refuses `page` without a receiver; should one
            // slip through, say so rather than drop the incident.
            let detail = "no page receiver is configured".into();
            self.record(d, "page", super::ActionOutcome::Failed, detail);
            return;
        }
        let notice = self.notice(d, firing, note);
        let _span = tracing::info_span!(
            "page",
            backstop.rule = notice.rule.as_str(),
            backstop.firing = firing,
            backstop.severity = notice.severity.as_str(),
            backstop.summary = notice.summary.as_str(),
            backstop.receivers = self.receivers.pagers(to).count(),
        )
        .entered();
        if to.grafana {
            annotate(
                &self.receivers.grafana,
                &notice.rule,
                notice.summary.clone(),
                d.at,
            );
        }
        // A receiver drains its queue between posts; a full queue means it
        // is stuck on a slow receiver, which the log must show.
        for pager in self.receivers.pagers(to) {
            if let Err(e) = pager.try_send(notice.clone()) {
                tracing::error!(rule = rule.name.as_str(), error = %e, "page notice not queued");
                let detail = format!("a receiver's queue is full or closed: {e}");
                self.record(d, "page", super::ActionOutcome::Failed, detail);
            }
        }
    }

    /// What receivers get about a decision; `note`: where its rollback stands.
    pub(super) fn notice(&self, d: &Decision, firing: bool, note: Option<RollbackNote>) -> Notice {
        let rule = &self.config.rules[d.rule];
        let actions: Vec<&'static str> = rule.actions.iter().map(|a| a.as_str()).collect();
        let description = format!(
            "Revision {} of {}. Rule {} ({}), actions: {}. Evidence: {}",
            self.revision.id,
            self.config.service,
            rule.name,
            d.evidence,
            actions.join(", "),
            serde_json::to_string(&d.evidence).unwrap_or_default()
        );
        let mut notice = Notice {
            rule: rule.name.clone(),
            severity: rule.severity,
            firing,
            service: self.config.service.clone(),
            revision: self.revision.id.clone(),
            summary: String::new(),
            fact: Fact::of(&self.config, &d.evidence),
            description,
            evidence: d.evidence.clone(),
            rolled_back: !firing
                && rule.actions.contains(&Action::Rollback)
                && self.guard.rolled_back(),
            rollback: note,
            actions,
            at: d.at,
        };
        notice.summary = notice.headline();
        notice
    }
}

/// Queue a mark for the annotator, if there is one; never waits.
pub(super) fn annotate(
    to: &Option<mpsc::Sender<grafana::Annotation>>,
    rule: &str,
    text: String,
    at: SystemTime,
) {
    let Some(to) = to else { return };
    let mark = grafana::Annotation {
        at,
        text,
        rule: rule.to_string(),
    };
    if let Err(e) = to.try_send(mark) {
        tracing::warn!(rule, error = %e, "annotation not queued");
    }
}
