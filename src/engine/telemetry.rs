//! What the engine tells: each target's health gauges, each SLO's SLI,
//! burn rate and budget per window, each rule's state and transitions
//! (with a log line and a span carrying the evidence), and a `Transitioned`
//! event.

use crate::rules::{Evidence, State, Transition};
use crate::slo::SloWindow;
use crate::telemetry::{Emitter, Registry};
use prometheus::{GaugeVec, IntCounterVec, IntGauge, IntGaugeVec};
use std::time::Duration;

/// A rule changed state.
#[derive(Debug, Clone)]
pub struct Transitioned {
    pub rule: String,
    pub from: State,
    pub to: State,
    pub evidence: Evidence,
}

/// The engine's metrics and events; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    target_up: IntGaugeVec,
    consecutive_failures: IntGaugeVec,
    sli: GaugeVec,
    burn_rate: GaugeVec,
    burn_rate_at_least: GaugeVec,
    young: IntGaugeVec,
    budget_remaining: GaugeVec,
    rule_state: IntGaugeVec,
    rule_transitions: IntCounterVec,
    events: Emitter<Transitioned>,
    pub(super) traffic: super::traffic::Metrics,
}

/// `backstop_target_up` and `backstop_target_consecutive_failures` of one
/// target, looked up once so that recording a sample hashes no labels.
pub struct TargetHealth {
    up: IntGauge,
    consecutive_failures: IntGauge,
}

impl TargetHealth {
    pub fn set(&self, up: bool, consecutive_failures: u32) {
        self.up.set(i64::from(up));
        self.consecutive_failures
            .set(i64::from(consecutive_failures));
    }
}

impl Telemetry {
    pub fn register(registry: &Registry, events: Emitter<Transitioned>) -> Telemetry {
        Telemetry {
            target_up: registry.gauge(
                "backstop_target_up",
                "1 when the last counted probe of the target succeeded, 0 otherwise.",
                &["target"],
            ),
            consecutive_failures: registry.gauge(
                "backstop_target_consecutive_failures",
                "Counted probe failures since the target's last success.",
                &["target"],
            ),
            sli: registry.gauge_f(
                "backstop_slo_sli_ratio",
                "Ratio of good probes for an SLO over a window (absent while the window is empty).",
                &["slo", "window"],
            ),
            burn_rate: registry.gauge_f(
                "backstop_slo_burn_rate",
                "Error ratio divided by the error budget (1 - objective) over a window.",
                &["slo", "window"],
            ),
            burn_rate_at_least: registry.gauge_f(
                "backstop_slo_burn_rate_at_least",
                "The burn rate rules judge an SLO window on: while the window is young \
                 (backstop_slo_window_young 1), the lower bound over the full window at 99% \
                 confidence; once full, backstop_slo_burn_rate.",
                &["slo", "window"],
            ),
            young: registry.gauge(
                "backstop_slo_window_young",
                "1 while the SLO window is younger than its span (a new pod) and judged on \
                 backstop_slo_burn_rate_at_least, 0 once full.",
                &["slo", "window"],
            ),
            budget_remaining: registry.gauge_f(
                "backstop_slo_error_budget_remaining_ratio",
                "1 - burn rate over a window; negative when the window overspent its budget.",
                &["slo", "window"],
            ),
            rule_state: registry.gauge(
                "backstop_rule_state",
                "1 for the state each rule is in (ok, pending, firing), 0 for the others.",
                &["rule", "state"],
            ),
            rule_transitions: registry.counter(
                "backstop_rule_transitions_total",
                "Rule state changes by the state entered.",
                &["rule", "to"],
            ),
            events,
            traffic: super::traffic::Metrics::register(registry),
        }
    }

    /// Metrics of their own, events to nowhere (tests, benches).
    pub fn detached() -> Telemetry {
        Telemetry::register(&Registry::new(), Emitter::none())
    }

    /// The health gauges of one target.
    pub fn target_health(&self, target: &str) -> TargetHealth {
        TargetHealth {
            up: self.target_up.with_label_values(&[target]),
            consecutive_failures: self.consecutive_failures.with_label_values(&[target]),
        }
    }

    pub fn rule_state(&self, rule: &str, state: State) {
        for s in State::ALL {
            self.rule_state
                .with_label_values(&[rule, s.as_str()])
                .set(i64::from(s == state));
        }
    }

    pub fn transition(&self, rule: &str, t: Transition, evidence: &Evidence) {
        self.rule_state(rule, t.to);
        self.rule_transitions
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
        self.events.emit(|| Transitioned {
            rule: rule.to_string(),
            from: t.from,
            to: t.to,
            evidence: evidence.clone(),
        });
    }

    pub fn slo(&self, slo: &str, span: Duration, w: &SloWindow) {
        let window = humantime::format_duration(span).to_string();
        let labels = [slo, window.as_str()];
        let set = |g: &GaugeVec, v: Option<f64>| match v {
            Some(v) => g.with_label_values(&labels).set(v),
            // An empty window has no SLI: drop the series rather than export a fake 1.
            None => {
                let _ = g.remove_label_values(&labels);
            }
        };
        set(&self.sli, w.sli);
        set(&self.burn_rate, w.burn_rate);
        set(&self.burn_rate_at_least, w.judged_burn_rate());
        set(&self.budget_remaining, w.budget_remaining);
        match w.sli {
            Some(_) => self
                .young
                .with_label_values(&labels)
                .set(i64::from(w.young.is_some())),
            None => {
                let _ = self.young.remove_label_values(&labels);
            }
        }
    }
}
