//! The expected firing time of a rule, by brute force: every counted sample
//! is kept, and each rule's condition is recomputed from its definition
//! over exactly the last `span` (no rings, no histogram, no shortcuts).
//! `due` is the first instant the condition had held for the rule's `for:`.
//! A window younger than its span is judged on its failures (slow answers)
//! over the probes a full window holds: the part of the bound the engine
//! judges a young window on (`crate::slo`) that holds whatever comes
//! next, so the engine, which adds what the failure rate promises, may
//! only be earlier.
//!
//! On latency the oracle is conservative: an answer is slow only when it
//! is more than one histogram bucket (2^(1/12)) above the threshold, so the
//! engine, whose percentile is accurate to a bucket, may only be earlier.
//! The engine's windows cover a little less than `span` (the oldest slot
//! may be cut); in these scenarios the bad samples are always younger than
//! that, so a shorter window only has fewer good samples, never fewer bad.

use crate::config::{Condition, Config};
use crate::probe::Sample;
use std::time::Duration;
use tokio::time::Instant;

struct Rec {
    at: Instant,
    target: usize,
    ok: bool,
    latency: Duration,
}

/// Probe starts are at most this much out of arrival order (the longest timeout).
const REORDER: Duration = Duration::from_secs(2);

pub struct Oracle {
    samples: Vec<Rec>,
    /// Consecutive counted failures per target.
    consecutive: Vec<u32>,
    /// Per target: its interval, and when it was first counted.
    intervals: Vec<Duration>,
    first: Vec<Option<Instant>>,
    restarts: Vec<(Instant, u32)>,
    restarts_seen: bool,
    /// Per rule: since when the condition holds, and when `for:` was met.
    since: Vec<Option<Instant>>,
    due: Vec<Option<Instant>>,
}

impl Oracle {
    pub fn new(config: &Config) -> Oracle {
        Oracle {
            samples: Vec::new(),
            consecutive: vec![0; config.targets.len()],
            intervals: config.targets.iter().map(|t| t.interval).collect(),
            first: vec![None; config.targets.len()],
            restarts: Vec::new(),
            restarts_seen: false,
            since: vec![None; config.rules.len()],
            due: vec![None; config.rules.len()],
        }
    }

    pub fn record(&mut self, s: &Sample) {
        if !s.counted {
            return;
        }
        let ok = s.outcome.is_success();
        self.first[s.target].get_or_insert(s.at);
        self.consecutive[s.target] = if ok {
            0
        } else {
            self.consecutive[s.target] + 1
        };
        self.samples.push(Rec {
            at: s.at,
            target: s.target,
            ok,
            latency: s.latency,
        });
    }

    pub fn record_restarts(&mut self, at: Instant, new: u32) {
        self.restarts_seen = true;
        self.restarts.push((at, new));
    }

    /// Re-assess the rules at `now` (call at every instant the engine does).
    pub fn step(&mut self, config: &Config, now: Instant) {
        for (i, rule) in config.rules.iter().enumerate() {
            if self.due[i].is_some() {
                continue;
            }
            if self.breached(config, &rule.when, now) {
                let since = *self.since[i].get_or_insert(now);
                if now.saturating_duration_since(since) >= rule.for_ {
                    self.due[i] = Some(since + rule.for_);
                }
            } else {
                self.since[i] = None;
            }
        }
    }

    /// When rule `i` had to fire, if it had to yet.
    pub fn due(&self, rule: usize) -> Option<Instant> {
        self.due[rule]
    }

    /// Samples started within `(now - span, now]`, newest first.
    fn within(&self, span: Duration, now: Instant) -> impl Iterator<Item = &Rec> {
        let from = now.checked_sub(span);
        let stop = from.and_then(|f| f.checked_sub(REORDER));
        self.samples
            .iter()
            .rev()
            .take_while(move |r| stop.is_none_or(|s| r.at > s))
            .filter(move |r| from.is_none_or(|f| r.at > f) && r.at <= now)
    }

    /// (bad, total) over the span, of the given targets.
    fn counts(&self, span: Duration, now: Instant, of: impl Fn(usize) -> bool) -> (u64, u64) {
        self.within(span, now)
            .filter(|r| of(r.target))
            .fold((0, 0), |(bad, total), r| {
                (bad + u64::from(!r.ok), total + 1)
            })
    }

    /// Probes a target's young window is short of: the part of the span
    /// before its first counted probe (which stands for one interval).
    fn assumed(&self, target: usize, span: Duration, now: Instant) -> u64 {
        let Some(first) = self.first[target] else {
            return 0;
        };
        let interval = self.intervals[target];
        let seen = now.saturating_duration_since(first) + interval;
        (span.saturating_sub(seen).as_nanos() / interval.as_nanos()) as u64
    }

    fn assumed_of(&self, span: Duration, now: Instant, of: impl Fn(usize) -> bool) -> u64 {
        (0..self.first.len())
            .filter(|t| of(*t))
            .map(|t| self.assumed(t, span, now))
            .sum()
    }

    fn breached(&self, config: &Config, when: &Condition, now: Instant) -> bool {
        match *when {
            Condition::ConsecutiveFailures { target, count } => self.consecutive[target] >= count,
            Condition::ErrorRate {
                target,
                above,
                window,
                min_samples,
            } => {
                let of = |t| target.is_none_or(|x| x == t);
                let (bad, total) = self.counts(window, now, of);
                let all = total + self.assumed_of(window, now, of);
                total >= min_samples.max(1) && bad as f64 > above * all as f64
            }
            Condition::BurnRate {
                slo,
                short,
                long,
                factor,
                min_samples,
            } => {
                let s = &config.slos[slo];
                let allowed = factor * (1.0 - s.objective);
                let over = |span: Duration, min: u64| {
                    let (mut bad, mut total) = (0u64, 0u64);
                    for r in self
                        .within(span, now)
                        .filter(|r| s.targets.contains(&r.target))
                    {
                        let good = r.ok && s.latency_threshold.is_none_or(|th| r.latency <= th);
                        bad += u64::from(!good);
                        total += 1;
                    }
                    let all = total + self.assumed_of(span, now, |t| s.targets.contains(&t));
                    total >= min.max(1) && bad as f64 > allowed * all as f64
                };
                over(short, 1) && over(long, min_samples)
            }
            Condition::Latency {
                target,
                percentile,
                above,
                window,
                min_samples,
            } => {
                let clearly_slow = above.mul_f64(2f64.powf(1.0 / 12.0));
                let (mut slow, mut n) = (0u64, 0u64);
                for r in self
                    .within(window, now)
                    .filter(|r| r.target == target && r.ok)
                {
                    slow += u64::from(r.latency > clearly_slow);
                    n += 1;
                }
                // Nearest rank among samples and assumed fast answers: the
                // percentile is above the threshold when fewer than `rank`
                // answers are at or below it.
                let all = n + self.assumed(target, window, now);
                let rank = (percentile * all as f64 / 100.0).ceil() as u64;
                n >= min_samples.max(1) && all - slow < rank
            }
            Condition::Restarts { above, window, .. } => {
                self.restarts_seen
                    && self
                        .restarts
                        .iter()
                        .filter(|(at, _)| now.saturating_duration_since(*at) <= window)
                        .map(|(_, n)| *n)
                        .sum::<u32>()
                        > above
            }
        }
    }
}
