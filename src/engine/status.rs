//! What the engine shows `/status`: per target its window statistics and
//! last probe, per SLO its windows, per rule its state and evidence.

pub use super::traffic::{TrafficStatus, TrafficWindow};
use super::{Engine, HISTORY_STEP, LastProbe, Series, TargetHistory, slo_windows};
use crate::rules::{Evidence, State};
use crate::slo::SloWindow;
use serde::Serialize;
use tokio::time::Instant;

impl Engine {
    /// Everything `/status` shows about targets, SLOs and rules.
    pub fn status(&self, now: Instant) -> EngineStatus {
        let span = crate::config::DEFAULT_STATUS_WINDOW;
        let targets = self
            .config
            .targets
            .iter()
            .zip(&self.targets)
            .map(|(cfg, t)| {
                let stats = t.window.stats(span, now);
                let p = |q| stats.latency.percentile(q).map(|d| d.as_secs_f64());
                TargetStatus {
                    name: cfg.name.clone(),
                    probes: t.probes,
                    up: t.last.as_ref().map(|l| l.success),
                    consecutive_failures: t.consecutive_failures,
                    last_probe_seconds_ago: t
                        .last
                        .as_ref()
                        .map(|l| now.saturating_duration_since(l.at).as_secs_f64()),
                    last_probe: t.last.clone(),
                    last_failure: t.last_failure.as_ref().map(|f| LastFailure {
                        seconds_ago: now.saturating_duration_since(f.at).as_secs_f64(),
                        reason: f.reason.unwrap_or("failed"),
                        detail: f.detail.clone().unwrap_or_default(),
                    }),
                    history: t.track.history(),
                    window_seconds: span.as_secs_f64(),
                    good: stats.counts.good,
                    bad: stats.counts.bad,
                    error_ratio: stats.counts.error_ratio(),
                    p50_seconds: p(50.0),
                    p95_seconds: p(95.0),
                    p99_seconds: p(99.0),
                }
            })
            .collect();
        let slos = self
            .config
            .slos
            .iter()
            .enumerate()
            .map(|(i, s)| SloStatus {
                burn_rate_history: self.slo_tracks[i].burn_rate().clone(),
                burn_rate_history_window_seconds: slo_windows(&self.config, i)
                    .into_iter()
                    .min()
                    .map(|d| d.as_secs_f64()),
                name: s.name.clone(),
                objective: s.objective,
                // 0.999 × 100 is 99.89999999999999 in binary; the config said 99.9.
                objective_percent: (s.objective * 100.0 * 1e9).round() / 1e9,
                latency_threshold_seconds: s.latency_threshold.map(|d| d.as_secs_f64()),
                windows: slo_windows(&self.config, i)
                    .into_iter()
                    .map(|span| self.slo_window(i, span, now))
                    .collect(),
            })
            .collect();
        let rules = self
            .config
            .rules
            .iter()
            .zip(&self.rules)
            .map(|(r, s)| RuleStatus {
                name: r.name.clone(),
                state: s.machine.state(),
                for_seconds: r.for_.as_secs_f64(),
                state_seconds: now
                    .saturating_duration_since(s.machine.since())
                    .as_secs_f64(),
                actions: r.actions.iter().map(|a| a.as_str()).collect(),
                breached: s.breached,
                summary: s.evidence.as_ref().map(|e| e.to_string()),
                evidence: s.evidence.clone(),
            })
            .collect();
        EngineStatus {
            ready: self.ready(),
            uptime_seconds: now.saturating_duration_since(self.started).as_secs_f64(),
            history_step_seconds: HISTORY_STEP.as_secs_f64(),
            targets,
            traffic: self.traffic_status(now),
            slos,
            rules,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub ready: bool,
    pub uptime_seconds: f64,
    /// Width of one point of every `history` series (oldest point first,
    /// the last one the most recent completed step).
    pub history_step_seconds: f64,
    pub targets: Vec<TargetStatus>,
    pub traffic: Vec<TrafficStatus>,
    pub slos: Vec<SloStatus>,
    pub rules: Vec<RuleStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub name: String,
    pub probes: u64,
    pub up: Option<bool>,
    pub consecutive_failures: u32,
    pub last_probe_seconds_ago: Option<f64>,
    last_probe: Option<LastProbe>,
    /// The most recent failed probe, kept after the target recovered.
    pub last_failure: Option<LastFailure>,
    /// Error ratio and p95 per step over the last 15 minutes.
    pub history: TargetHistory,
    pub window_seconds: f64,
    pub good: u64,
    pub bad: u64,
    pub error_ratio: Option<f64>,
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SloStatus {
    pub name: String,
    /// As a fraction (0.999).
    pub objective: f64,
    /// As the configuration takes it (99.9).
    pub objective_percent: f64,
    pub latency_threshold_seconds: Option<f64>,
    pub windows: Vec<SloWindow>,
    /// The burn rate over the shortest window, one point per step.
    pub burn_rate_history: Series,
    pub burn_rate_history_window_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastFailure {
    pub seconds_ago: f64,
    /// The failure's short reason (`status`, `timeout`, `body`, …).
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    pub name: String,
    pub state: State,
    pub for_seconds: f64,
    pub state_seconds: f64,
    pub actions: Vec<&'static str>,
    /// The last assessment: true breached, false clear, None too few
    /// samples to judge (or not assessed yet).
    pub breached: Option<bool>,
    pub summary: Option<String>,
    pub evidence: Option<Evidence>,
}
