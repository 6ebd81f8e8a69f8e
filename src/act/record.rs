//! What actions did, kept for `/status`: a bounded list of the latest
//! records, newest last, shared between the actions stage and the server.

use crate::engine::Decision;
use crate::rules::Evidence;
use serde::Serialize;
use std::collections::VecDeque;
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
    /// succeeded, failed, dry_run, or `prevented: <reason>`.
    pub outcome: String,
    pub detail: String,
    pub revision: String,
    pub evidence: Evidence,
}

impl ActionRecord {
    pub fn new(
        rule: &str,
        action: &'static str,
        outcome: &str,
        detail: String,
        revision: &str,
        d: &Decision,
    ) -> Self {
        ActionRecord {
            at: super::rfc3339(SystemTime::now()),
            rule: rule.to_string(),
            action,
            outcome: outcome.to_string(),
            detail,
            revision: revision.to_string(),
            evidence: d.evidence.clone(),
        }
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
