//! Telemetry: every event that is both logged and counted goes through one
//! method here, so the log line, the metric and the event stream (read by
//! the demo and tests) cannot drift apart. Also sets up logging.

mod logs;
mod metrics;
pub mod otlp;

pub use logs::init_logs;
pub use metrics::Metrics;

use crate::act::{ActionRecord, Prevented, RollbackRequest};
use crate::config::Target;
use crate::probe::{Outcome, Sample};
use crate::rules::{Evidence, State, Transition};
use crate::slo::SloWindow;
use std::time::Duration;
use tokio::sync::broadcast;

/// Something backstop observed or did, for subscribers (demo, tests).
#[derive(Debug, Clone)]
pub enum Event {
    Probe {
        target: String,
        outcome: Outcome,
        latency: Duration,
        counted: bool,
    },
    Transition {
        rule: String,
        from: State,
        to: State,
        evidence: Evidence,
    },
    RollbackStarted {
        rule: String,
        revision: String,
    },
    Action(ActionRecord),
}

/// `backstop_target_up` and `backstop_target_consecutive_failures` of one target.
pub struct TargetHealth {
    up: prometheus::IntGauge,
    consecutive_failures: prometheus::IntGauge,
}

impl TargetHealth {
    pub fn set(&self, up: bool, consecutive_failures: u32) {
        self.up.set(i64::from(up));
        self.consecutive_failures
            .set(i64::from(consecutive_failures));
    }
}

/// Metrics plus the event stream; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    pub metrics: Metrics,
    events: broadcast::Sender<Event>,
}

impl Telemetry {
    pub fn new(service: &str) -> Telemetry {
        let (events, _) = broadcast::channel(1024);
        Telemetry {
            metrics: Metrics::new(service),
            events,
        }
    }

    /// Receive every event from now on. A slow subscriber loses the oldest
    /// events (it sees `Lagged`), never slows backstop down.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn emit(&self, event: impl FnOnce() -> Event) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event());
        }
    }

    pub fn revision(&self, service: &str, revision: &str) {
        self.metrics
            .revision_info
            .with_label_values(&[service, revision])
            .set(1);
    }

    pub fn probe_lag(&self, target: &str, lag: Duration) {
        self.metrics
            .probe_lag
            .with_label_values(&[target])
            .observe(lag.as_secs_f64());
    }

    pub fn probe(&self, target: &Target, s: &Sample) {
        let name = target.name.as_str();
        let (result, reason) = match (&s.outcome, s.counted) {
            (Outcome::Success { .. }, _) => ("success", ""),
            (Outcome::Failure { reason, .. }, true) => ("failure", reason.metric_label()),
            (Outcome::Failure { reason, .. }, false) => ("warmup", reason.metric_label()),
        };
        let m = &self.metrics;
        m.probes.with_label_values(&[name, result, reason]).inc();
        m.probe_duration
            .with_label_values(&[name, result])
            .observe(s.latency.as_secs_f64());
        match &s.outcome {
            Outcome::Success { status } => {
                tracing::debug!(
                    target_name = name,
                    status,
                    latency_ms = ms(s.latency),
                    "probe ok"
                )
            }
            Outcome::Failure { reason, detail } => tracing::info!(
                target_name = name,
                reason = reason.metric_label(),
                detail = detail.as_str(),
                latency_ms = ms(s.latency),
                counted = s.counted,
                "probe failed"
            ),
        }
        self.emit(|| Event::Probe {
            target: name.to_string(),
            outcome: s.outcome.clone(),
            latency: s.latency,
            counted: s.counted,
        });
    }

    /// The health gauges of one target, looked up once so that recording a
    /// sample does not hash label values every time.
    pub fn target_health(&self, target: &str) -> TargetHealth {
        TargetHealth {
            up: self.metrics.target_up.with_label_values(&[target]),
            consecutive_failures: self
                .metrics
                .consecutive_failures
                .with_label_values(&[target]),
        }
    }

    pub fn rule_state(&self, rule: &str, state: State) {
        for s in State::ALL {
            self.metrics
                .rule_state
                .with_label_values(&[rule, s.as_str()])
                .set(i64::from(s == state));
        }
    }

    pub fn transition(&self, rule: &str, t: Transition, evidence: &Evidence) {
        self.rule_state(rule, t.to);
        self.metrics
            .rule_transitions
            .with_label_values(&[rule, t.to.as_str()])
            .inc();
        let evidence_json = serde_json::to_string(evidence).unwrap_or_default();
        let what = match (t.from, t.to) {
            (State::Firing, State::Ok) => "rule resolved",
            (State::Pending, State::Ok) => "rule breach cleared before firing",
            (_, State::Pending) => "rule pending",
            (_, State::Firing) => "rule firing",
            _ => "rule changed state",
        };
        let summary = evidence.to_string();
        // A span per transition carries the evidence to OpenTelemetry.
        let span = tracing::info_span!(
            "rule transition",
            otel.name = %format_args!("rule {rule} {}", t.to.as_str()),
            backstop.rule = rule,
            backstop.from = t.from.as_str(),
            backstop.to = t.to.as_str(),
            backstop.summary = summary.as_str(),
            backstop.evidence = evidence_json.as_str(),
        );
        let _entered = span.enter();
        if t.to == State::Firing {
            tracing::warn!(
                rule,
                from = t.from.as_str(),
                to = t.to.as_str(),
                summary,
                evidence = evidence_json,
                "{what}"
            );
        } else {
            tracing::info!(
                rule,
                from = t.from.as_str(),
                to = t.to.as_str(),
                summary,
                evidence = evidence_json,
                "{what}"
            );
        }
        self.emit(|| Event::Transition {
            rule: rule.to_string(),
            from: t.from,
            to: t.to,
            evidence: evidence.clone(),
        });
    }

    pub fn slo(&self, slo: &str, span: Duration, w: &SloWindow) {
        let window = humantime::format_duration(span).to_string();
        let labels = [slo, window.as_str()];
        let set = |g: &prometheus::GaugeVec, v: Option<f64>| match v {
            Some(v) => g.with_label_values(&labels).set(v),
            // An empty window has no SLI: drop the series rather than export a fake 1.
            None => {
                let _ = g.remove_label_values(&labels);
            }
        };
        set(&self.metrics.sli, w.sli);
        set(&self.metrics.burn_rate, w.burn_rate);
        set(&self.metrics.budget_remaining, w.budget_remaining);
    }

    pub fn rollback_started(&self, rule: &str, req: &RollbackRequest) {
        tracing::warn!(
            rule,
            revision = req.revision.as_str(),
            reason = req.reason.as_str(),
            "rolling back"
        );
        self.emit(|| Event::RollbackStarted {
            rule: rule.to_string(),
            revision: req.revision.clone(),
        });
    }

    /// A configuration reload ended: applied, unchanged or rejected.
    pub fn config_reload(&self, result: &str) {
        self.metrics
            .config_reloads
            .with_label_values(&[result])
            .inc();
        self.metrics
            .config_last_reload_successful
            .set(i64::from(result != "rejected"));
    }

    pub fn actions_paused(&self, service: &str, paused: bool) {
        self.metrics
            .actions_paused
            .with_label_values(&[service])
            .set(i64::from(paused));
    }

    /// One admin API request; `endpoint` is a known path or "other".
    pub fn admin_request(&self, endpoint: &str, code: u16) {
        self.metrics
            .admin_requests
            .with_label_values(&[endpoint, &code.to_string()])
            .inc();
    }

    /// Admin connections open now.
    pub fn admin_connections(&self, open: usize) {
        self.metrics
            .admin_connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// An admin connection refused at accept; `reason` is the cap.
    pub fn admin_connection_refused(&self, reason: &str) {
        self.metrics
            .admin_connections_rejected
            .with_label_values(&[reason])
            .inc();
    }

    /// An admin connection the server closed; `reason` says why.
    pub fn admin_connection_closed(&self, reason: &str) {
        self.metrics
            .admin_connections_closed
            .with_label_values(&[reason])
            .inc();
    }

    pub fn rollback_prevented(&self, rule: &str, why: Prevented) {
        self.metrics
            .rollbacks_prevented
            .with_label_values(&[rule, why.metric_label()])
            .inc();
    }

    pub fn rollback_result(&self, rule: &str, result: &str, took: Duration) {
        self.metrics
            .rollbacks
            .with_label_values(&[rule, result])
            .inc();
        self.metrics
            .action_duration
            .with_label_values(&["rollback", result])
            .observe(took.as_secs_f64());
    }

    pub fn page_delivery(&self, receiver: &str, result: &str) {
        self.metrics
            .page_deliveries
            .with_label_values(&[receiver, result])
            .inc();
    }

    /// How many incidents a receiver holds for delivery right now.
    pub fn page_queue(&self, receiver: &str, length: usize) {
        self.metrics
            .page_queue
            .with_label_values(&[receiver])
            .set(i64::try_from(length).unwrap_or(i64::MAX));
    }

    pub fn action_attempt(&self, action: &str, outcome: &str) {
        self.metrics
            .action_attempts
            .with_label_values(&[action, outcome])
            .inc();
    }

    /// Log an action's outcome (its counters are bumped by the specific
    /// methods above) and pass it to subscribers.
    pub fn action(&self, r: &ActionRecord) {
        let evidence = serde_json::to_string(&r.evidence).unwrap_or_default();
        if r.outcome == "failed" {
            tracing::error!(
                rule = r.rule,
                action = r.action,
                outcome = r.outcome,
                revision = r.revision,
                detail = r.detail,
                evidence,
                "action failed"
            );
        } else {
            tracing::warn!(
                rule = r.rule,
                action = r.action,
                outcome = r.outcome,
                revision = r.revision,
                detail = r.detail,
                evidence,
                "action"
            );
        }
        self.emit(|| Event::Action(r.clone()));
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}
