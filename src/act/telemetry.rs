//! What the actions stage tells: rollbacks and why they were held back,
//! attempts and durations of outbound calls, page deliveries and queues,
//! the pause gauge, a log line per outcome, and `Acted` events.

use super::{ActionRecord, Prevented, RollbackRequest};
use crate::telemetry::{DURATION_BUCKETS, Emitter, Registry};
use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec};
use std::time::Duration;

/// Something the actions stage did.
// Records are the common event and the large one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Acted {
    RollbackStarted { rule: String, revision: String },
    Action(ActionRecord),
}

/// The actions stage's metrics and events; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    rollbacks: IntCounterVec,
    rollbacks_prevented: IntCounterVec,
    action_duration: HistogramVec,
    action_attempts: IntCounterVec,
    page_deliveries: IntCounterVec,
    page_queue: IntGaugeVec,
    actions_paused: IntGaugeVec,
    events: Emitter<Acted>,
}

impl Telemetry {
    pub fn register(registry: &Registry, events: Emitter<Acted>) -> Telemetry {
        Telemetry {
            rollbacks: registry.counter(
                "backstop_rollbacks_total",
                "Rollbacks by result (succeeded, failed, dry_run).",
                &["rule", "result"],
            ),
            rollbacks_prevented: registry.counter(
                "backstop_rollbacks_prevented_total",
                "Rollbacks a firing rule asked for that a guard held back, by reason.",
                &["rule", "reason"],
            ),
            action_duration: registry.histogram(
                "backstop_action_duration_seconds",
                "Time an action took from decision to final outcome, retries included.",
                &["action", "result"],
                DURATION_BUCKETS,
            ),
            action_attempts: registry.counter(
                "backstop_action_attempts_total",
                "Outbound attempts of actions by outcome (ok, retryable, rejected).",
                &["action", "outcome"],
            ),
            page_deliveries: registry.counter(
                "backstop_page_deliveries_total",
                "Posts of incidents to a receiver (pagerduty, alertmanager, slack, webhook) by result (ok, failed, held: over the per-minute limit, sent with the next re-send; dropped: an undelivered Slack or webhook message pushed out of its full queue).",
                &["receiver", "result"],
            ),
            page_queue: registry.gauge(
                "backstop_page_queue_length",
                "Incidents a receiver holds for delivery: PagerDuty events not yet taken (at most a trigger and a resolve of the revision's incident), Alertmanager alerts being re-sent (one per rule), Slack and webhook messages not yet taken.",
                &["receiver"],
            ),
            actions_paused: registry.gauge(
                "backstop_actions_paused",
                "1 while automatic rollbacks and pages are paused through the admin API (a maintenance window).",
                &["service"],
            ),
            events,
        }
    }

    /// Metrics of their own, events to nowhere (tests, benches).
    pub fn detached() -> Telemetry {
        Telemetry::register(&Registry::new(), Emitter::none())
    }

    /// Rollbacks of `rule` that ended with `result`.
    pub fn rollbacks(&self, rule: &str, result: &str) -> u64 {
        self.rollbacks.with_label_values(&[rule, result]).get()
    }

    /// Rollbacks of `rule` held back for `reason`.
    pub fn prevented(&self, rule: &str, reason: &str) -> u64 {
        self.rollbacks_prevented
            .with_label_values(&[rule, reason])
            .get()
    }

    /// Attempts of `action` that ended `outcome`.
    pub fn attempts(&self, action: &str, outcome: &str) -> u64 {
        self.action_attempts
            .with_label_values(&[action, outcome])
            .get()
    }

    pub fn rollback_started(&self, rule: &str, req: &RollbackRequest) {
        tracing::warn!(
            rule,
            revision = req.revision.as_str(),
            reason = req.reason.as_str(),
            evidence = serde_json::to_string(&req.evidence).unwrap_or_default(),
            "rolling back"
        );
        self.events.emit(|| Acted::RollbackStarted {
            rule: rule.to_string(),
            revision: req.revision.clone(),
        });
    }

    pub fn actions_paused(&self, service: &str, paused: bool) {
        self.actions_paused
            .with_label_values(&[service])
            .set(i64::from(paused));
    }

    pub fn rollback_prevented(&self, rule: &str, why: Prevented) {
        self.rollbacks_prevented
            .with_label_values(&[rule, why.metric_label()])
            .inc();
    }

    pub fn rollback_result(&self, rule: &str, result: &str, took: Duration) {
        self.rollbacks.with_label_values(&[rule, result]).inc();
        self.action_duration
            .with_label_values(&["rollback", result])
            .observe(took.as_secs_f64());
    }

    pub fn page_delivery(&self, receiver: &str, result: &str) {
        self.page_deliveries
            .with_label_values(&[receiver, result])
            .inc();
    }

    /// How many incidents a receiver holds for delivery right now.
    pub fn page_queue(&self, receiver: &str, length: usize) {
        self.page_queue
            .with_label_values(&[receiver])
            .set(i64::try_from(length).unwrap_or(i64::MAX));
    }

    pub fn action_attempt(&self, action: &str, outcome: &str) {
        self.action_attempts
            .with_label_values(&[action, outcome])
            .inc();
    }

    /// Log an action's outcome (its counters are bumped by the specific
    /// methods above) and pass it to subscribers.
    pub fn action(&self, r: &ActionRecord) {
        let evidence = serde_json::to_string(&r.evidence).unwrap_or_default();
        if r.outcome == super::ActionOutcome::Failed {
            tracing::error!(
                rule = r.rule,
                action = r.action,
                outcome = r.outcome.as_str(),
                revision = r.revision,
                detail = r.detail,
                evidence,
                "action failed"
            );
        } else {
            tracing::warn!(
                rule = r.rule,
                action = r.action,
                outcome = r.outcome.as_str(),
                revision = r.revision,
                detail = r.detail,
                evidence,
                "action"
            );
        }
        self.events.emit(|| Acted::Action(r.clone()));
    }
}
