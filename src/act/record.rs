//! What actions did, kept for `/status`: a bounded list of the latest
//! records, newest last, shared between the actions stage and the server.

use super::Prevented;
use crate::engine::Decision;
use crate::rules::Evidence;
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How many records `/status` keeps.
const KEEP: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    /// RFC 3339 time of the outcome.
    pub at: String,
    pub rule: String,
    pub action: &'static str,
    pub outcome: ActionOutcome,
    pub detail: String,
    pub revision: String,
    pub evidence: Evidence,
}

impl ActionRecord {
    pub fn new(
        rule: &str,
        action: &'static str,
        outcome: ActionOutcome,
        detail: String,
        revision: &str,
        d: &Decision,
    ) -> Self {
        ActionRecord {
            at: super::rfc3339(SystemTime::now()),
            rule: rule.to_string(),
            action,
            outcome,
            detail,
            revision: revision.to_string(),
            evidence: d.evidence.clone(),
        }
    }
}

/// How an action ended: a closed set, shown as its label in `/status`, the
/// log and the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOutcome {
    /// A rollback went through.
    Succeeded,
    /// A rollback or page could not be done (the detail says why).
    Failed,
    /// A dry run worked out the rollback and wrote nothing.
    DryRun,
    /// A guard (or the backend) held the rollback or page back.
    Prevented(Prevented),
    /// A receiver took the incident's trigger.
    Triggered,
    /// A receiver took the incident's resolve.
    Resolved,
    /// The revision was rolled back: the incident stays open for a person.
    LeftOpen,
}

impl ActionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Succeeded => "succeeded",
            ActionOutcome::Failed => "failed",
            ActionOutcome::DryRun => "dry_run",
            ActionOutcome::Triggered => "triggered",
            ActionOutcome::Resolved => "resolved",
            ActionOutcome::LeftOpen => "left_open",
            ActionOutcome::Prevented(why) => match why {
                Prevented::AlreadyRolledBack => "prevented: already_rolled_back",
                Prevented::Baked => "prevented: baked",
                Prevented::Cooldown => "prevented: cooldown",
                Prevented::RateLimited => "prevented: rate_limited",
                Prevented::NoPreviousRevision => "prevented: no_previous_revision",
                Prevented::Paused => "prevented: paused",
                Prevented::Maintenance => "prevented: maintenance",
                Prevented::TemplateUnchanged => "prevented: template_unchanged",
                Prevented::NotNewestRevision => "prevented: not_newest_revision",
                Prevented::PageOnly => "prevented: page_only",
                Prevented::GitOps => "prevented: gitops",
                Prevented::Hold => "prevented: hold",
            },
        }
    }

    /// The `result` label of `backstop_rollbacks_total` (succeeded,
    /// failed, dry_run); None for outcomes that metric does not count.
    pub fn rollback_label(self) -> Option<&'static str> {
        match self {
            ActionOutcome::Succeeded | ActionOutcome::Failed | ActionOutcome::DryRun => {
                Some(self.as_str())
            }
            _ => None,
        }
    }
}

impl fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ActionOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ActionOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The latest action records; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ActionLog(Arc<Mutex<VecDeque<ActionRecord>>>);

impl ActionLog {
    pub fn push(&self, record: ActionRecord) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() == KEEP {
            list.pop_front();
        }
        list.push_back(record);
    }

    pub fn latest(&self) -> Vec<ActionRecord> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
