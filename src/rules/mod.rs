//! Rules: each condition kind is assessed against window data into a verdict
//! with its evidence, and a small state machine (ok → pending → firing → ok)
//! applies `for:`. Rules never see ring buffers, only `Counts`/`Stats`
//! through the `Observations` interface, and never fire on fewer samples
//! than `min_samples`.
//!
//! A window younger than its span (a new pod) is judged as if the part of
//! the span before the target's first counted probe had been healthy: the
//! probes that time would have held count as good (and fast). So a short
//! outage weighs what it weighs in a full window, instead of being a large
//! share of the few minutes seen so far, and a bad release is caught when
//! the rule's arithmetic says, whatever the pod's age (10 % errors against
//! a 14.4× burn over 5m: 0.0144 × 300 s / 0.1 = 43 s).

use crate::config::{Condition, Config, Containers, Rule};
use crate::percent;
use crate::slo::{self, SloWindow};
use crate::window::{Counts, Stats};
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// What rules may ask about the data, answered by the engine.
pub trait Observations {
    /// Counts of one target, or of all targets together.
    fn counts(&self, target: Option<usize>, span: Duration) -> Counts;
    /// Counts and latency histogram of one target.
    fn stats(&self, target: usize, span: Duration) -> Stats;
    /// (good, total) of an SLO's targets; good honours its latency threshold.
    fn slo_counts(&self, slo: usize, span: Duration) -> (u64, u64);
    /// Counted failures of a target since its last success.
    fn consecutive_failures(&self, target: usize) -> u32;
    /// Text of the target's last failure, for evidence.
    fn last_failure(&self, target: usize) -> Option<String>;
    /// Probes the target's window lacks for `span` because the target was
    /// first counted less than `span` ago: the missing time over its
    /// interval. 0 for a window as old as the span, or one not yet counted.
    fn assumed(&self, target: usize, span: Duration) -> u64;
    /// Container restarts of the revision's pods within the span; None until
    /// the pods have been looked at once.
    /// Restarts of `containers` in the revision's pods within `span`;
    /// None until the pods have been looked at.
    fn restarts(&self, span: Duration, containers: &Containers) -> Option<u32>;
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

/// The data behind a verdict: what was measured and what it was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    ConsecutiveFailures {
        target: String,
        failures: u32,
        threshold: u32,
        last_failure: Option<String>,
    },
    ErrorRate {
        /// None: all targets together.
        target: Option<String>,
        window_seconds: f64,
        good: u64,
        bad: u64,
        /// Good probes assumed for a young window (see the module docs);
        /// `error_ratio` is `bad / (good + bad + assumed_good)`.
        assumed_good: u64,
        error_ratio: Option<f64>,
        above: f64,
        min_samples: u64,
    },
    BurnRate {
        slo: String,
        objective: f64,
        factor: f64,
        short: SloWindow,
        long: SloWindow,
        min_samples: u64,
    },
    Latency {
        target: String,
        percentile: f64,
        value_seconds: Option<f64>,
        above_seconds: f64,
        window_seconds: f64,
        samples: u64,
        /// Fast answers assumed for a young window (see the module docs),
        /// ranked below every sample.
        assumed_fast: u64,
        min_samples: u64,
    },
    Restarts {
        window_seconds: f64,
        /// None until the pods have been looked at.
        restarts: Option<u32>,
        above: u32,
        /// Whose restarts count: `every container but backstop`, `checkout`.
        containers: String,
    },
    /// Not a rule: a person asked through the admin API.
    Manual { reason: String },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::ConsecutiveFailures {
                target,
                failures,
                threshold,
                last_failure,
            } => {
                write!(
                    f,
                    "{target}: {failures} consecutive failures (threshold {threshold})"
                )?;
                if let Some(last) = last_failure {
                    write!(f, ", last: {last}")?;
                }
                Ok(())
            }
            Evidence::ErrorRate {
                target,
                window_seconds,
                good,
                bad,
                assumed_good,
                error_ratio,
                above,
                ..
            } => {
                let scope = target.as_deref().unwrap_or("all targets");
                write!(
                    f,
                    "{scope}: error rate {} over {} ({bad} bad of {}{}), threshold {}",
                    error_ratio.map_or("n/a".into(), percent::measured),
                    secs(*window_seconds),
                    good + bad,
                    assumed(*assumed_good, "good"),
                    percent::configured(*above)
                )
            }
            Evidence::BurnRate {
                slo,
                factor,
                short,
                long,
                ..
            } => write!(
                f,
                "{slo}: burn rate {} over {}{} and {} over {}{}, threshold {factor}",
                num(short.burn_rate),
                secs(short.window_seconds),
                assumed(short.assumed_good, "good"),
                num(long.burn_rate),
                secs(long.window_seconds),
                assumed(long.assumed_good, "good"),
            ),
            Evidence::Latency {
                target,
                percentile,
                value_seconds,
                above_seconds,
                window_seconds,
                samples,
                assumed_fast,
                ..
            } => {
                write!(
                    f,
                    "{target}: p{percentile} {} over {} ({samples} samples{}), threshold {}",
                    value_seconds.map_or("n/a".to_string(), |v| format!("{:.0}ms", v * 1000.0)),
                    secs(*window_seconds),
                    assumed(*assumed_fast, "fast"),
                    format_args!("{:.0}ms", above_seconds * 1000.0)
                )
            }
            Evidence::Restarts {
                window_seconds,
                restarts,
                above,
                containers,
            } => match restarts {
                Some(n) => write!(
                    f,
                    "{n} container restarts ({containers}) of this revision's pods over {}, threshold {above}",
                    secs(*window_seconds)
                ),
                None => f.write_str("the revision's pods have not been looked at yet"),
            },
            Evidence::Manual { reason } => write!(f, "asked through the admin API: {reason}"),
        }
    }
}

/// ", N assumed good" for a young window, nothing for a full one.
fn assumed(n: u64, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} assumed {what} before the first probe")
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.2}"))
}
fn secs(s: f64) -> String {
    humantime::format_duration(Duration::from_secs_f64(s)).to_string()
}

/// The outcome of assessing a condition once.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Some(true) breached, Some(false) clear, None: too few samples to say.
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
                    target: config.targets[*target].name.clone(),
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
            let c = data.counts(*target, *window);
            let assumed_good = match target {
                Some(t) => data.assumed(*t, *window),
                None => (0..config.targets.len())
                    .map(|t| data.assumed(t, *window))
                    .sum(),
            };
            let error_ratio =
                (c.total() > 0).then(|| c.bad as f64 / (c.total() + assumed_good) as f64);
            Verdict {
                breached: enough(c.total(), *min_samples)
                    .then(|| error_ratio.is_some_and(|r| r > *above)),
                evidence: Evidence::ErrorRate {
                    target: target.map(|t| config.targets[t].name.clone()),
                    window_seconds: window.as_secs_f64(),
                    good: c.good,
                    bad: c.bad,
                    assumed_good,
                    error_ratio,
                    above: *above,
                    min_samples: *min_samples,
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
            let window = |span: Duration| {
                let (good, total) = data.slo_counts(*slo, span);
                let assumed: u64 = s.targets.iter().map(|t| data.assumed(*t, span)).sum();
                let mut w = slo::evaluate(good + assumed, total + assumed, s.objective, span);
                w.assumed_good = assumed;
                w
            };
            let (short_w, long_w) = (window(*short), window(*long));
            // min_samples guards the long window, which carries the verdict; the
            // short one only confirms the burn is still going on, and on a single
            // 1 s target a 1 m window could never hold a larger minimum.
            let probes = |w: &SloWindow| w.total - w.assumed_good;
            let enough_data = enough(probes(&short_w), 1) && enough(probes(&long_w), *min_samples);
            let over = |w: &SloWindow| w.burn_rate.is_some_and(|b| b > *factor);
            Verdict {
                breached: enough_data.then(|| over(&short_w) && over(&long_w)),
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
            let stats = data.stats(*target, *window);
            let samples = stats.latency.count();
            let assumed_fast = data.assumed(*target, *window);
            // The rank among samples and assumed answers together; the
            // assumed ones rank lowest, so past them it is a sample's rank.
            // Asking for the middle of that rank keeps float rounding off it.
            let all = samples + assumed_fast;
            let rank = (percentile * all as f64 / 100.0).ceil() as u64;
            let value = (samples > 0 && rank > assumed_fast)
                .then(|| {
                    let within = (rank - assumed_fast) as f64 - 0.5;
                    stats.latency.percentile(100.0 * within / samples as f64)
                })
                .flatten();
            Verdict {
                breached: enough(samples, *min_samples).then(|| value.is_some_and(|v| v > *above)),
                evidence: Evidence::Latency {
                    target: config.targets[*target].name.clone(),
                    percentile: *percentile,
                    value_seconds: value.map(|v| v.as_secs_f64()),
                    above_seconds: above.as_secs_f64(),
                    window_seconds: window.as_secs_f64(),
                    samples,
                    assumed_fast,
                    min_samples: *min_samples,
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
