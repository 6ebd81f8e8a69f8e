//! Rules: each condition kind is assessed against window data into a verdict
//! with its evidence, and a small state machine (ok → pending → firing → ok)
//! applies `for:`. Rules never see ring buffers, only `Counts`/`Stats`
//! through the `Observations` interface, and never fire on fewer samples
//! than `min_samples`.
//!
//! A window younger than its span (a new pod) is judged on the lower bound
//! of the error ratio its full window will show ([`crate::slo`] says how);
//! a full one on the ratio it holds. The same holds for the share of slow
//! answers behind a latency percentile.

use crate::config::{Condition, Config, Containers, Rule};
use crate::slo::{self, SloWindow};
use crate::window::{Spread, Stats};
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

mod evidence;
pub use evidence::Evidence;

/// What rules may ask about the data, answered by the engine.
pub trait Observations {
    /// Good and bad probes of one target, or of all targets together, in
    /// batches (see [`crate::window::Spread`]).
    fn spread(&self, target: Option<usize>, span: Duration) -> Spread;
    /// Counts and latency histogram of one target.
    fn stats(&self, target: usize, span: Duration) -> Stats;
    /// A target's answers in batches, good being "no slower than `above`".
    fn latency_spread(&self, target: usize, span: Duration, above: Duration) -> Spread;
    /// An SLO's targets in batches; good honours its latency threshold.
    fn slo_spread(&self, slo: usize, span: Duration) -> Spread;
    /// For a source whose latency is the app's own histogram (traffic):
    /// the percentile as `histogram_quantile` interpolates it, and how many
    /// requests the buckets counted. None for a probe target.
    fn bucket_percentile(
        &self,
        _target: usize,
        _span: Duration,
        _percentile: f64,
    ) -> Option<(Option<Duration>, u64)> {
        None
    }
    /// Counted failures of a target since its last success.
    fn consecutive_failures(&self, target: usize) -> u32;
    /// Text of the target's last failure, for evidence.
    fn last_failure(&self, target: usize) -> Option<String>;
    /// Probes a full window of `span` would hold beyond those the target's
    /// window has, because the target was first counted less than `span`
    /// ago. 0 for a window as old as the span, or one not yet counted.
    fn missing(&self, target: usize, span: Duration) -> u64;
    /// Container restarts of the revision's pods within the span; None until
    /// the pods have been looked at once.
    /// Restarts of `containers` in the revision's pods within `span`;
    /// None until the pods have been looked at.
    fn restarts(&self, span: Duration, containers: &Containers) -> Option<u32>;
}

/// An SLO over one window, as every rule, `/status` and metric shows it.
pub fn slo_window(
    config: &Config,
    slo: usize,
    span: Duration,
    data: &dyn Observations,
) -> SloWindow {
    let s = &config.slos[slo];
    let missing = s.targets.iter().map(|t| data.missing(*t, span)).sum();
    slo::evaluate(&data.slo_spread(slo, span), missing, s.objective, span)
}

/// A rule's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Pending,
    Firing,
}

impl State {
    pub const ALL: [State; 3] = [State::Ok, State::Pending, State::Firing];
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Firing => "firing",
        }
    }
}

/// The outcome of assessing a condition once.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Some(true) breached, Some(false) clear, None: too few samples to
    /// say, or a young window whose evidence does not decide (see `decide`).
    pub breached: Option<bool>,
    pub evidence: Evidence,
}

/// Assess a rule's condition against the data.
pub fn assess(config: &Config, rule: &Rule, data: &dyn Observations) -> Verdict {
    match &rule.when {
        Condition::ConsecutiveFailures { target, count } => {
            let failures = data.consecutive_failures(*target);
            Verdict {
                breached: Some(failures >= *count),
                evidence: Evidence::ConsecutiveFailures {
                    target: config.source_name(*target).to_owned(),
                    failures,
                    threshold: *count,
                    last_failure: data.last_failure(*target),
                },
            }
        }
        Condition::ErrorRate {
            target,
            above,
            window,
            min_samples,
        } => {
            let spread = data.spread(*target, *window);
            let missing = match target {
                Some(t) => data.missing(*t, *window),
                None => (0..config.targets.len())
                    .map(|t| data.missing(t, *window))
                    .sum(),
            };
            let (error_ratio, young) = slo::judge(&spread, missing);
            let judged = young.map(|y| y.error_ratio_at_least);
            Verdict {
                breached: enough(spread.total, *min_samples)
                    .then(|| decide(error_ratio, judged, *above))
                    .flatten(),
                evidence: Evidence::ErrorRate {
                    target: target.map(|t| config.source_name(t).to_owned()),
                    window_seconds: window.as_secs_f64(),
                    good: spread.good,
                    bad: spread.bad(),
                    error_ratio,
                    young,
                    above: *above,
                    min_samples: *min_samples,
                    traffic: target.is_some_and(|t| config.traffic_index(t).is_some()),
                },
            }
        }
        Condition::BurnRate {
            slo,
            short,
            long,
            factor,
            min_samples,
        } => {
            let s = &config.slos[*slo];
            let (short_w, long_w) = (
                slo_window(config, *slo, *short, data),
                slo_window(config, *slo, *long, data),
            );
            // min_samples guards the long window, which carries the verdict; the
            // short one only confirms the burn is still going on, and on a single
            // 1 s target a 1 m window could never hold a larger minimum.
            let enough_data = enough(short_w.total, 1) && enough(long_w.total, *min_samples);
            let over = |w: &SloWindow| {
                let judged = w.young.map(|y| y.burn_rate_at_least.unwrap_or_default());
                decide(w.burn_rate, judged, *factor)
            };
            let both = match (over(&short_w), over(&long_w)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            Verdict {
                breached: enough_data.then_some(both).flatten(),
                evidence: Evidence::BurnRate {
                    slo: s.name.clone(),
                    objective: s.objective,
                    factor: *factor,
                    short: short_w,
                    long: long_w,
                    min_samples: *min_samples,
                },
            }
        }
        Condition::Latency {
            target,
            percentile,
            above,
            window,
            min_samples,
        } => {
            // The percentile is above the threshold when more than this
            // share of answers is slower; a young window is judged on it.
            let limit = 1.0 - percentile / 100.0;
            let (value, samples, young) =
                match data.bucket_percentile(*target, *window, *percentile) {
                    // The app's own histogram: the requests it counted.
                    Some((value, requests)) => (value, requests, None),
                    None => {
                        let stats = data.stats(*target, *window);
                        let missing = data.missing(*target, *window);
                        let young = (missing > 0)
                            .then(|| {
                                let spread = data.latency_spread(*target, *window, *above);
                                slo::judge(&spread, missing).1
                            })
                            .flatten();
                        let value = stats.latency.percentile(*percentile);
                        (value, stats.latency.count(), young)
                    }
                };
            let over = match (young, value) {
                (_, None) => None,
                (Some(y), Some(v)) if y.error_ratio_at_least <= limit => {
                    (v <= *above).then_some(false)
                }
                (_, Some(v)) => Some(v > *above),
            };
            Verdict {
                breached: enough(samples, *min_samples).then_some(over).flatten(),
                evidence: Evidence::Latency {
                    target: config.source_name(*target).to_owned(),
                    percentile: *percentile,
                    value_seconds: value.map(|v| v.as_secs_f64()),
                    above_seconds: above.as_secs_f64(),
                    window_seconds: window.as_secs_f64(),
                    samples,
                    young,
                    min_samples: *min_samples,
                    traffic: config.traffic_index(*target).is_some(),
                },
            }
        }
        Condition::Restarts {
            above,
            window,
            containers,
        } => {
            let seen = data.restarts(*window, containers);
            Verdict {
                breached: seen.map(|n| n > *above),
                evidence: Evidence::Restarts {
                    window_seconds: window.as_secs_f64(),
                    restarts: seen,
                    above: *above,
                    containers: containers.describe(),
                },
            }
        }
    }
}

/// Whether a value `seen` is past `limit`: for a full window (`judged`
/// None) that is the verdict; a young one is breached only when its lower
/// bound `judged` is past the limit too, clear when even what it has seen
/// is not, and undecided (None) in between: a firing rule stays firing
/// until the evidence clears it.
fn decide(seen: Option<f64>, judged: Option<f64>, limit: f64) -> Option<bool> {
    let seen = seen?;
    match judged {
        None => Some(seen > limit),
        Some(bound) if bound > limit => Some(true),
        Some(_) => (seen <= limit).then_some(false),
    }
}

fn enough(samples: u64, min_samples: u64) -> bool {
    samples >= min_samples.max(1)
}

/// A rule's state machine. `for:` is measured from the first breached
/// assessment; a breach that clears while pending goes back to ok quietly.
/// Without enough data a pending rule cannot be confirmed (back to ok) and
/// a firing rule cannot be declared healthy (stays firing).
#[derive(Debug, Clone)]
pub struct Machine {
    state: State,
    since: Instant,
}

/// A state change, returned by `Machine::step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
}

impl Machine {
    pub fn new(now: Instant) -> Machine {
        Machine {
            state: State::Ok,
            since: now,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When a pending rule will fire if the breach holds.
    pub fn deadline(&self, for_: Duration) -> Option<Instant> {
        (self.state == State::Pending).then(|| self.since + for_)
    }

    pub fn step(
        &mut self,
        breached: Option<bool>,
        for_: Duration,
        now: Instant,
    ) -> Option<Transition> {
        let next = match (self.state, breached) {
            (State::Ok, Some(true)) if for_.is_zero() => State::Firing,
            (State::Ok, Some(true)) => State::Pending,
            (State::Pending, Some(true)) if now.saturating_duration_since(self.since) >= for_ => {
                State::Firing
            }
            (State::Pending, Some(false) | None) => State::Ok,
            (State::Firing, Some(false)) => State::Ok,
            (state, _) => state,
        };
        if next == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to: next,
        };
        self.state = next;
        self.since = now;
        Some(t)
    }
}

#[cfg(test)]
mod tests;
