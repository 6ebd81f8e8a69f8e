//! The revision's one PagerDuty incident, as the notices so far make it:
//! which rules fired in this episode (and which still fire), where the
//! rollback stands, and what the last trigger said. Every rule that pages
//! about the same revision joins it; each notice that changes what the
//! incident says becomes one trigger (the same dedup key, the new summary
//! and details), and a notice that changes nothing becomes no post.

use super::super::words::{RollbackNote, headline};
use super::super::{ActionOutcome, Notice};
use crate::config::Severity;
use serde_json::{Value, json};

/// What the sender should do after a notice.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Post a trigger with this content (`payload` without its timestamp).
    Trigger(Value),
    /// Post a resolve: no rule fires and nothing was rolled back.
    Resolve,
    /// The rule resolved after a rollback: the incident stays open for a person.
    LeftOpen,
    /// Nothing new to tell PagerDuty (why, for the log).
    Nothing(&'static str),
}

/// One rule of the episode: its latest notice, and whether it still fires.
struct Member {
    notice: Notice,
    firing: bool,
}

#[derive(Default)]
pub struct Incident {
    /// The rules that fired in this episode, in the order they fired.
    members: Vec<Member>,
    /// Where the rollback stands: the latest start or outcome; a guard's
    /// refusal only while nothing started.
    rollback: Option<RollbackNote>,
    /// The revision was rolled back in this episode.
    rolled_back: bool,
    /// The content of the last trigger, while the incident is open.
    last: Option<Value>,
}

impl Incident {
    /// Fold a notice in; says what to post.
    pub fn take(&mut self, n: &Notice) -> Step {
        if n.firing {
            self.fired(n)
        } else {
            self.resolved(n)
        }
    }

    fn fired(&mut self, n: &Notice) -> Step {
        let outcome = matches!(n.rollback, Some(RollbackNote::Done { .. }));
        match self.members.iter_mut().find(|m| m.notice.rule == n.rule) {
            // A rollback's outcome speaks of the rule as it was when it
            // fired: it changes the rollback, not whether the rule fires.
            Some(m) if outcome => m.notice.rollback = n.rollback.clone(),
            Some(m) => {
                m.notice = n.clone();
                m.firing = true;
            }
            None => self.members.push(Member {
                notice: n.clone(),
                firing: !outcome,
            }),
        }
        match (&n.rollback, &self.rollback) {
            (Some(RollbackNote::Prevented { .. }), Some(_)) => {}
            (Some(note), _) => self.rollback = Some(note.clone()),
            (None, _) => {}
        }
        if let Some(RollbackNote::Done {
            outcome: ActionOutcome::Succeeded,
            ..
        }) = &n.rollback
        {
            self.rolled_back = true;
        }
        let content = self.content();
        if self.last.as_ref() == Some(&content) {
            return Step::Nothing("the incident already says this");
        }
        self.last = Some(content.clone());
        Step::Trigger(content)
    }

    fn resolved(&mut self, n: &Notice) -> Step {
        if let Some(m) = self.members.iter_mut().find(|m| m.notice.rule == n.rule) {
            m.firing = false;
        }
        if self.rolled_back || n.rolled_back {
            self.rolled_back = true;
            return Step::LeftOpen;
        }
        if self.members.iter().any(|m| m.firing) {
            return Step::Nothing("other rules of the incident still fire");
        }
        let open = self.last.is_some();
        *self = Incident::default();
        if open {
            Step::Resolve
        } else {
            Step::Nothing("no incident is open")
        }
    }

    /// What a trigger says now: the summary, severity, class and details.
    fn content(&self) -> Value {
        let firing: Vec<&Notice> = self
            .members
            .iter()
            .filter(|m| m.firing)
            .map(|m| &m.notice)
            .collect();
        // After a rollback every rule may have resolved: the incident
        // still speaks of what it was opened for.
        let shown: Vec<&Notice> = if firing.is_empty() {
            self.members.iter().map(|m| &m.notice).collect()
        } else {
            firing
        };
        let Some(lead) = shown.first() else {
            return Value::Null;
        };
        let facts: Vec<(&str, &super::super::Fact)> =
            shown.iter().map(|n| (n.rule.as_str(), &n.fact)).collect();
        let rolls_back = shown.iter().any(|n| n.actions.contains(&"rollback"));
        let started = RollbackNote::Started;
        let note = self.rollback.as_ref().or(rolls_back.then_some(&started));
        let summary = headline(&lead.service, &lead.revision, &facts, note);
        let severity = shown
            .iter()
            .map(|n| n.severity)
            .min_by_key(|s| rank(*s))
            .unwrap_or(lead.severity);
        let rules: Vec<Value> = self
            .members
            .iter()
            .map(|m| {
                json!({
                    "rule": m.notice.rule,
                    "firing": m.firing,
                    "fact": m.notice.fact.to_string(),
                    "why": m.notice.evidence.to_string(),
                    "evidence": m.notice.evidence,
                    "actions": m.notice.actions,
                })
            })
            .collect();
        let mut details = json!({ "revision": lead.revision, "rules": rules });
        if let Some(r) = &self.rollback {
            details["rollback"] = json!(r);
        }
        if rolls_back {
            details["note"] = json!(
                "a rule of this incident rolls the release back; after a rollback the incident \
                 is not resolved automatically: the bad release still needs a person"
            );
        }
        json!({
            "summary": summary,
            "severity": severity.as_str(),
            "class": lead.evidence_kind(),
            "custom_details": details,
        })
    }
}

/// Most severe first.
fn rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 0,
        Severity::Error => 1,
        Severity::Warning => 2,
        Severity::Info => 3,
    }
}

#[cfg(test)]
mod tests;
