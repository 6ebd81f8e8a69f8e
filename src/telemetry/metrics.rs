//! Every metric backstop exports, defined in one place: name, help, labels.
//! Label values are bounded (target, SLO and rule names come from the
//! configuration; results and reasons from small fixed sets), never URLs.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Handles to all metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub build_info: IntGaugeVec,
    pub revision_info: IntGaugeVec,
    pub probes: IntCounterVec,
    pub probe_duration: HistogramVec,
    pub probe_lag: HistogramVec,
    pub target_up: IntGaugeVec,
    pub consecutive_failures: IntGaugeVec,
    pub sli: GaugeVec,
    pub burn_rate: GaugeVec,
    pub budget_remaining: GaugeVec,
    pub rule_state: IntGaugeVec,
    pub rule_transitions: IntCounterVec,
    pub rollbacks: IntCounterVec,
    pub rollbacks_prevented: IntCounterVec,
    pub action_duration: HistogramVec,
    pub action_attempts: IntCounterVec,
    pub page_deliveries: IntCounterVec,
    pub actions_paused: IntGaugeVec,
    pub admin_requests: IntCounterVec,
    pub admin_connections: IntGauge,
    pub admin_connections_rejected: IntCounterVec,
    pub admin_connections_closed: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub config_last_reload_successful: IntGauge,
    pub page_queue: IntGaugeVec,
}

/// Seconds buckets for probe and action durations: 1 ms .. 30 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0,
    30.0,
];

/// Scheduling lag buckets: a healthy scheduler stays in the first few.
const LAG_BUCKETS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

impl Metrics {
    pub fn new(service: &str) -> Metrics {
        let registry = Registry::new_custom(None, None).expect("static registry options are valid");
        let m = Metrics {
            build_info: gauge(
                "backstop_build_info",
                "Build information; always 1.",
                &["version", "service"],
            ),
            revision_info: gauge(
                "backstop_revision_info",
                "The revision backstop guards; always 1.",
                &["service", "revision"],
            ),
            probes: counter(
                "backstop_probes_total",
                "Probes by target and result (success, failure, warmup: a failure ignored during warm-up) and failure reason.",
                &["target", "result", "reason"],
            ),
            probe_duration: histogram(
                "backstop_probe_duration_seconds",
                "Probe duration from request start to the end of the body, by target and result.",
                &["target", "result"],
                DURATION_BUCKETS,
            ),
            probe_lag: histogram(
                "backstop_probe_schedule_lag_seconds",
                "How late a probe started compared with its schedule.",
                &["target"],
                LAG_BUCKETS,
            ),
            target_up: gauge(
                "backstop_target_up",
                "1 when the last counted probe of the target succeeded, 0 otherwise.",
                &["target"],
            ),
            consecutive_failures: gauge(
                "backstop_target_consecutive_failures",
                "Counted probe failures since the target's last success.",
                &["target"],
            ),
            sli: gauge_f(
                "backstop_slo_sli_ratio",
                "Ratio of good probes for an SLO over a window (absent while the window is empty).",
                &["slo", "window"],
            ),
            burn_rate: gauge_f(
                "backstop_slo_burn_rate",
                "Error ratio divided by the error budget (1 - objective) over a window.",
                &["slo", "window"],
            ),
            budget_remaining: gauge_f(
                "backstop_slo_error_budget_remaining_ratio",
                "1 - burn rate over a window; negative when the window overspent its budget.",
                &["slo", "window"],
            ),
            rule_state: gauge(
                "backstop_rule_state",
                "1 for the state each rule is in (ok, pending, firing), 0 for the others.",
                &["rule", "state"],
            ),
            rule_transitions: counter(
                "backstop_rule_transitions_total",
                "Rule state changes by the state entered.",
                &["rule", "to"],
            ),
            rollbacks: counter(
                "backstop_rollbacks_total",
                "Rollbacks by result (succeeded, failed, dry_run).",
                &["rule", "result"],
            ),
            rollbacks_prevented: counter(
                "backstop_rollbacks_prevented_total",
                "Rollbacks a firing rule asked for that a guard held back, by reason.",
                &["rule", "reason"],
            ),
            action_duration: histogram(
                "backstop_action_duration_seconds",
                "Time an action took from decision to final outcome, retries included.",
                &["action", "result"],
                DURATION_BUCKETS,
            ),
            action_attempts: counter(
                "backstop_action_attempts_total",
                "Outbound attempts of actions by outcome (ok, retryable, rejected).",
                &["action", "outcome"],
            ),
            page_deliveries: counter(
                "backstop_page_deliveries_total",
                "Posts of incidents to a receiver by result (ok, failed, held: over the per-minute limit, sent with the next re-send).",
                &["receiver", "result"],
            ),
            actions_paused: gauge(
                "backstop_actions_paused",
                "1 while automatic rollbacks and pages are paused through the admin API (a maintenance window).",
                &["service"],
            ),
            admin_requests: counter(
                "backstop_admin_requests_total",
                "Admin API requests by endpoint and HTTP status code (401/403: refused tokens, 429: rate limited).",
                &["endpoint", "code"],
            ),
            admin_connections: IntGauge::new(
                "backstop_admin_connections",
                "Open connections to the admin server.",
            )
            .expect("valid metric definition"),
            admin_connections_rejected: counter(
                "backstop_admin_connections_rejected_total",
                "Admin connections refused at once because every connection under a cap (per_peer, total) was busy.",
                &["reason"],
            ),
            admin_connections_closed: counter(
                "backstop_admin_connections_closed_total",
                "Admin connections the server closed: no_request (no request head within 5 s of connecting), idle (no request for 10 s), evicted (idle, and a newcomer over a cap took its place).",
                &["reason"],
            ),
            config_reloads: counter(
                "backstop_config_reloads_total",
                "Configuration reloads (SIGHUP or the file changing) by result: applied, unchanged, rejected (the running configuration stays).",
                &["result"],
            ),
            config_last_reload_successful: IntGauge::new(
                "backstop_config_last_reload_successful",
                "0 when the last configuration reload was rejected: the file on disk is not what runs.",
            )
            .expect("valid metric definition"),
            page_queue: gauge(
                "backstop_page_queue_length",
                "Incidents a receiver holds for delivery: PagerDuty events not yet taken (at most a trigger and a resolve per rule), Alertmanager alerts being re-sent (one per rule).",
                &["receiver"],
            ),
            registry,
        };
        m.register_all();
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), service])
            .set(1);
        // Present from the start, so "paused" can be told from "no data".
        m.actions_paused.with_label_values(&[service]).set(0);
        m.config_last_reload_successful.set(1);
        m
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.build_info.clone()),
            Box::new(self.revision_info.clone()),
            Box::new(self.probes.clone()),
            Box::new(self.probe_duration.clone()),
            Box::new(self.probe_lag.clone()),
            Box::new(self.target_up.clone()),
            Box::new(self.consecutive_failures.clone()),
            Box::new(self.sli.clone()),
            Box::new(self.burn_rate.clone()),
            Box::new(self.budget_remaining.clone()),
            Box::new(self.rule_state.clone()),
            Box::new(self.rule_transitions.clone()),
            Box::new(self.rollbacks.clone()),
            Box::new(self.rollbacks_prevented.clone()),
            Box::new(self.action_duration.clone()),
            Box::new(self.action_attempts.clone()),
            Box::new(self.page_deliveries.clone()),
            Box::new(self.actions_paused.clone()),
            Box::new(self.admin_requests.clone()),
            Box::new(self.admin_connections.clone()),
            Box::new(self.admin_connections_rejected.clone()),
            Box::new(self.admin_connections_closed.clone()),
            Box::new(self.config_reloads.clone()),
            Box::new(self.config_last_reload_successful.clone()),
            Box::new(self.page_queue.clone()),
        ];
        for c in collectors {
            self.registry
                .register(c)
                .expect("metric names are unique and valid");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn gauge_f(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid metric definition")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_prefixed_names_and_build_info() {
        let m = Metrics::new("checkout");
        m.probes
            .with_label_values(&["health", "failure", "status"])
            .inc();
        let text = m.encode();
        assert!(text.contains("backstop_build_info{service=\"checkout\",version=\""));
        assert!(text.contains(
            "backstop_probes_total{reason=\"status\",result=\"failure\",target=\"health\"} 1"
        ));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("backstop_"), "unprefixed series: {line}");
        }
    }
}
