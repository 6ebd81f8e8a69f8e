//! The engine owns the per-target windows and the rule state machines. It
//! records each sample, re-assesses the rules (at once for the sample's
//! target, and on a tick for time-driven changes such as `for:` and windows
//! sliding), and hands decisions to the actions stage. It also answers
//! status requests and keeps the SLO and rule gauges current.

use crate::cluster::Restarts;
use crate::config::{Condition, Config};
use crate::probe::{Outcome, Sample};
use crate::rules::{self, Evidence, Machine, State, Transition};
use crate::slo;
use crate::window::Window;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

mod history;
mod reload;
mod telemetry;
pub use history::{POINTS as HISTORY_POINTS, STEP as HISTORY_STEP, Series, TargetHistory};
use history::{SloTrack, TargetTrack};
mod traffic;
mod view;
use reload::Previous;
pub use reload::{Carried, Dropped};
pub use telemetry::{TargetHealth, Telemetry, Transitioned};
use traffic::TrafficState;
pub use traffic::{LastScrape, Metrics as TrafficMetrics};
use view::View;

/// A rule reading more targets than this is assessed in batches (at most
/// `BATCH` after a sample), not on every sample: assessing it costs a read
/// of each target's window, and with every target probed that would be
/// O(targets²) a second.
const WIDE: usize = 8;
/// How long a sample may wait before the wide rules that read it are assessed.
pub const BATCH: Duration = Duration::from_millis(100);

/// A firing rule's request to the actions stage. Sent when the rule starts
/// firing, again on every tick while it fires (so a failed action is
/// retried), and once when it resolves.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The configuration generation `rule` indexes into.
    pub generation: u64,
    pub rule: usize,
    pub kind: DecisionKind,
    pub evidence: Evidence,
    pub at: SystemTime,
}

/// What prompted an evaluation, and so which rules it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A probe of this target finished.
    Target(usize),
    /// The revision's pods were looked at.
    Restarts,
    /// The periodic tick (or a `for:` deadline): every rule.
    Tick,
    /// A batch of samples for the rules that read many targets.
    Batch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// The rule just started firing.
    Fired,
    /// The rule is still firing (periodic reminder).
    Firing,
    /// The rule went from firing back to ok.
    Resolved,
}

struct TargetState {
    window: Window,
    consecutive_failures: u32,
    /// When the first counted probe started: a window younger than a
    /// rule's span is young (judged on a bound, see `crate::slo`).
    first: Option<Instant>,
    last: Option<LastProbe>,
    /// The last failed probe, kept after the target recovers.
    last_failure: Option<LastProbe>,
    /// Probes seen, counted or not.
    probes: u64,
    health: TargetHealth,
    /// The last 15 minutes, for the charts.
    track: TargetTrack,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastProbe {
    #[serde(skip)]
    at: Instant,
    success: bool,
    latency_seconds: f64,
    reason: Option<&'static str>,
    detail: Option<String>,
}

struct RuleState {
    machine: Machine,
    evidence: Option<Evidence>,
    /// The last assessment: None while there were too few samples to judge
    /// (or a young window's evidence did not decide).
    breached: Option<bool>,
    /// Reads more than `WIDE` targets: assessed in batches.
    wide: bool,
}

pub struct Engine {
    config: Arc<Config>,
    /// The configuration generation (0 at start, one more per reload).
    generation: u64,
    previous: Option<Previous>,
    /// When the wide rules that new samples concern are next assessed.
    batch_due: Option<Instant>,
    telemetry: Telemetry,
    targets: Vec<TargetState>,
    /// Per traffic entry (source `targets.len() + i`).
    traffic: Vec<TrafficState>,
    /// Per SLO, per target: index of the SLO's latency threshold in that target's window.
    slo_thresholds: Vec<Vec<Option<usize>>>,
    rules: Vec<RuleState>,
    /// Per SLO: its burn rate over the last 15 minutes.
    slo_tracks: Vec<SloTrack>,
    started: Instant,
    /// Container restarts seen (per container name), newest last, within
    /// `restarts_window`.
    restarts: VecDeque<Restarts>,
    restarts_window: Duration,
    /// The pods have been looked at at least once.
    restarts_seen: bool,
}

impl Engine {
    pub fn new(config: Arc<Config>, telemetry: Telemetry, now: Instant) -> Engine {
        let horizon = config.longest_window();
        // Only `/status` and latency rules read latency distributions; every
        // other query needs counts, so windows keep histograms for these spans.
        let mut latency_spans = vec![crate::config::DEFAULT_STATUS_WINDOW];
        latency_spans.extend(config.rules.iter().filter_map(|r| match &r.when {
            Condition::Latency { window, .. } => Some(*window),
            _ => None,
        }));
        let mut thresholds: Vec<Vec<Duration>> = vec![Vec::new(); config.targets.len()];
        let slo_thresholds = config
            .slos
            .iter()
            .map(|s| {
                (0..config.targets.len())
                    .map(|t| {
                        let threshold = s.latency_threshold?;
                        if !s.targets.contains(&t) {
                            return None;
                        }
                        let list = &mut thresholds[t];
                        Some(
                            list.iter()
                                .position(|d| *d == threshold)
                                .unwrap_or_else(|| {
                                    list.push(threshold);
                                    list.len() - 1
                                }),
                        )
                    })
                    .collect()
            })
            .collect();
        let targets = thresholds
            .iter()
            .zip(&config.targets)
            .map(|(th, target)| TargetState {
                window: Window::with_latency_spans(horizon, &latency_spans, th, now),
                consecutive_failures: 0,
                first: None,
                last: None,
                last_failure: None,
                probes: 0,
                health: telemetry.target_health(&target.name),
                track: TargetTrack::new(now),
            })
            .collect();
        let traffic = config
            .traffic
            .iter()
            .map(|t| TrafficState::new(t, config.slos.len(), horizon, now))
            .collect();
        let rules = config
            .rules
            .iter()
            .map(|r| RuleState {
                machine: Machine::new(now),
                evidence: None,
                breached: None,
                wide: read_targets(&config, &r.when).len() > WIDE,
            })
            .collect();
        let restarts_window = config.restarts_window().unwrap_or_default();
        let slo_tracks = config.slos.iter().map(|_| SloTrack::new(now)).collect();
        let engine = Engine {
            config,
            generation: 0,
            previous: None,
            batch_due: None,
            telemetry,
            targets,
            traffic,
            slo_thresholds,
            rules,
            slo_tracks,
            started: now,
            restarts: VecDeque::new(),
            restarts_window,
            restarts_seen: false,
        };
        for (i, r) in engine.config.rules.iter().enumerate() {
            engine
                .telemetry
                .rule_state(&r.name, engine.rules[i].machine.state());
        }
        engine
    }

    /// The configuration generation this engine runs.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where a sample's target stands in this generation: samples of the
    /// previous one still on their way count when their target carried
    /// over; any other is dropped (None).
    pub fn target_of(&self, s: &Sample) -> Option<usize> {
        if s.generation == self.generation {
            return (s.target < self.targets.len()).then_some(s.target);
        }
        let p = self.previous.as_ref()?;
        (p.generation == s.generation)
            .then(|| p.moved.get(s.target).copied().flatten())
            .flatten()
    }

    /// Record one sample. Uncounted (warm-up) samples only update `last`.
    /// Returns the target's index in this generation, or None when the
    /// sample belongs to a target that no longer exists as it was.
    pub fn record(&mut self, s: &Sample) -> Option<usize> {
        let index = self.target_of(s)?;
        self.record_at(index, s);
        Some(index)
    }

    fn record_at(&mut self, index: usize, s: &Sample) {
        self.record_traffic(index, s);
        let t = &mut self.targets[index];
        let (reason, detail) = match &s.outcome {
            Outcome::Success { .. } => (None, None),
            Outcome::Failure { reason, detail } => {
                (Some(reason.metric_label()), Some(detail.clone()))
            }
        };
        let last = LastProbe {
            at: s.at,
            success: s.outcome.is_success(),
            latency_seconds: s.latency.as_secs_f64(),
            reason,
            detail,
        };
        if !last.success {
            t.last_failure = Some(last.clone());
        }
        t.last = Some(last);
        t.probes += 1;
        if !s.counted {
            return;
        }
        let ok = s.outcome.is_success();
        t.first.get_or_insert(s.at);
        t.window.record(s.at, ok, s.latency);
        t.track.record(s.at, ok, s.latency);
        t.consecutive_failures = if ok {
            0
        } else {
            t.consecutive_failures.saturating_add(1)
        };
        t.health.set(ok, t.consecutive_failures);
    }

    /// Hand a scrape of target `index` to the traffic entries that read it;
    /// the body is parsed once for all of them. A failure during warm-up
    /// is not counted, as for any probe.
    fn record_traffic(&mut self, index: usize, s: &Sample) {
        if !s.counted {
            return;
        }
        let config = &self.config;
        let mut readers = config
            .traffic
            .iter()
            .enumerate()
            .filter(|(_, t)| t.from == index)
            .map(|(i, _)| i)
            .peekable();
        if readers.peek().is_none() {
            return;
        }
        // The prober parsed it already; it cannot fail here.
        let parsed = s
            .scraped
            .as_ref()
            .and_then(|b| crate::traffic::parse(&b.body, b.format).ok());
        let metrics = &self.telemetry.traffic;
        for i in readers {
            let source = config.targets.len() + i;
            self.traffic[i].scraped(config, source, s, parsed.as_ref(), metrics);
        }
    }

    /// Record what the last look at the revision's pods found.
    pub fn record_restarts(&mut self, r: Restarts) {
        self.restarts_seen = true;
        let (at, keep) = (r.at, self.restarts_window);
        if !r.new.is_empty() {
            self.restarts.push_back(r);
        }
        while self
            .restarts
            .front()
            .is_some_and(|old| at.saturating_duration_since(old.at) > keep)
        {
            self.restarts.pop_front();
        }
    }

    /// Re-assess rules (all of them, or those the new input can change) and
    /// step their state machines. Returns the decisions for the actions stage.
    pub fn evaluate(&mut self, now: Instant, scope: Scope) -> Vec<Decision> {
        let mut decisions = Vec::new();
        match scope {
            Scope::Tick | Scope::Batch => self.batch_due = None,
            Scope::Target(_) | Scope::Restarts => {}
        }
        for i in 0..self.rules.len() {
            let rule = &self.config.rules[i];
            let wide = self.rules[i].wide;
            let relevant = match scope {
                Scope::Tick => true,
                Scope::Batch => wide,
                Scope::Target(t) => reads_scrape(&self.config, &rule.when, t),
                Scope::Restarts => matches!(rule.when, Condition::Restarts { .. }),
            };
            if !relevant {
                continue;
            }
            if wide && matches!(scope, Scope::Target(_)) {
                self.batch_due.get_or_insert(now + BATCH);
                continue;
            }
            let verdict = rules::assess(&self.config, rule, &View { engine: self, now });
            let state = &mut self.rules[i];
            let transition = state.machine.step(verdict.breached, rule.for_, now);
            let kind = match transition {
                Some(t) => {
                    self.telemetry.transition(&rule.name, t, &verdict.evidence);
                    match t {
                        Transition {
                            to: State::Firing, ..
                        } => Some(DecisionKind::Fired),
                        Transition {
                            from: State::Firing,
                            ..
                        } => Some(DecisionKind::Resolved),
                        _ => None,
                    }
                }
                None if scope == Scope::Tick && state.machine.state() == State::Firing => {
                    Some(DecisionKind::Firing)
                }
                None => None,
            };
            if let Some(kind) = kind
                && !rule.actions.is_empty()
            {
                decisions.push(Decision {
                    generation: self.generation,
                    rule: i,
                    kind,
                    evidence: verdict.evidence.clone(),
                    at: SystemTime::now(),
                });
            }
            state.breached = verdict.breached;
            state.evidence = Some(verdict.evidence);
        }
        decisions
    }

    /// The earliest moment a pending rule could fire.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.rules
            .iter()
            .zip(&self.config.rules)
            .filter_map(|(s, r)| s.machine.deadline(r.for_))
            .min()
    }

    /// When the wide rules are due for the samples recorded since they
    /// were last assessed.
    pub fn batch_due(&self) -> Option<Instant> {
        self.batch_due
    }

    /// Ready once every target has been probed at least once.
    pub fn ready(&self) -> bool {
        self.targets.iter().all(|t| t.last.is_some())
    }

    /// Refresh the SLO gauges, and say which traffic has no data (done on
    /// the tick, not per sample).
    pub fn publish_slos(&self, now: Instant) {
        let span = crate::config::DEFAULT_STATUS_WINDOW;
        for (t, state) in self.config.traffic.iter().zip(&self.traffic) {
            let idle = state.counts(span, now).total() == 0;
            self.telemetry
                .traffic
                .no_traffic
                .with_label_values(&[t.name.as_str()])
                .set(i64::from(idle));
        }
        for (i, s) in self.config.slos.iter().enumerate() {
            for span in slo_windows(&self.config, i) {
                self.telemetry
                    .slo(&s.name, span, &self.slo_window(i, span, now));
            }
        }
    }

    /// Close the chart steps that ended by `now` (done on the tick): each
    /// SLO's point is its burn rate over its shortest reported window, the
    /// same number `/status` and the gauges show.
    pub fn roll_history(&mut self, now: Instant) {
        for t in &mut self.targets {
            t.track.roll(now);
        }
        for i in 0..self.slo_tracks.len() {
            if !self.slo_tracks[i].due(now) {
                continue;
            }
            let burn_rate = slo_windows(&self.config, i)
                .into_iter()
                .min()
                .and_then(|span| self.slo_window(i, span, now).burn_rate);
            self.slo_tracks[i].roll(now, || burn_rate);
        }
    }

    /// One SLO over one window, exactly as its burn-rate rules judge it.
    fn slo_window(&self, slo: usize, span: Duration, now: Instant) -> slo::SloWindow {
        rules::slo_window(&self.config, slo, span, &View { engine: self, now })
    }
}

/// Which windows an SLO is reported over: those its burn-rate rules use,
/// or the status window when no rule reads it.
fn slo_windows(config: &Config, slo: usize) -> Vec<Duration> {
    let mut spans: Vec<Duration> = config
        .rules
        .iter()
        .filter_map(|r| match r.when {
            Condition::BurnRate {
                slo: s,
                short,
                long,
                ..
            } if s == slo => Some([short, long]),
            _ => None,
        })
        .flatten()
        .collect();
    if spans.is_empty() {
        spans.push(crate::config::DEFAULT_STATUS_WINDOW);
    }
    spans.sort();
    spans.dedup();
    spans
}

/// The targets whose windows a condition reads.
fn read_targets(config: &Config, when: &Condition) -> Vec<usize> {
    match when {
        Condition::ConsecutiveFailures { target, .. } | Condition::Latency { target, .. } => {
            vec![*target]
        }
        Condition::ErrorRate {
            target: Some(t), ..
        } => vec![*t],
        Condition::ErrorRate { target: None, .. } => (0..config.targets.len()).collect(),
        Condition::BurnRate { slo, .. } => config.slos[*slo].targets.clone(),
        Condition::Restarts { .. } => Vec::new(),
    }
}

/// Whether a new sample of `target`, or of the traffic its scrape feeds,
/// can change this condition's verdict.
fn reads_scrape(config: &Config, when: &Condition, target: usize) -> bool {
    let n = config.targets.len();
    reads_target(config, when, target)
        || config
            .traffic
            .iter()
            .enumerate()
            .any(|(i, t)| t.from == target && reads_target(config, when, n + i))
}

/// Whether a new sample of `target` can change this condition's verdict.
fn reads_target(config: &Config, when: &Condition, target: usize) -> bool {
    match when {
        Condition::ConsecutiveFailures { target: t, .. } | Condition::Latency { target: t, .. } => {
            *t == target
        }
        Condition::ErrorRate { target: t, .. } => t.is_none_or(|t| t == target),
        Condition::BurnRate { slo, .. } => config.slos[*slo].targets.contains(&target),
        Condition::Restarts { .. } => false,
    }
}

mod status;
pub use status::{
    EngineStatus, LastFailure, RuleStatus, SloStatus, TargetStatus, TrafficStatus, TrafficWindow,
};

#[cfg(test)]
mod soak;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod young;
