//! The last 15 minutes, for the charts on `/`: per target the error ratio
//! and p95 latency of each 10-second step, per SLO the burn rate over its
//! shortest window at the end of each step. Fixed memory per series (90
//! points and, for a target, one latency histogram for the step under way),
//! whatever the probe rate.

use crate::window::Histogram;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Width of one point.
pub const STEP: Duration = Duration::from_secs(10);
/// Points kept: 15 minutes.
pub const POINTS: usize = 90;

/// Up to [`POINTS`] values, oldest first; None where there was nothing to
/// measure (no probe in that step, no SLO data yet).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Series(VecDeque<Option<f64>>);

impl Series {
    fn push(&mut self, v: Option<f64>) {
        if self.0.len() == POINTS {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }

    /// Push `n` empty points (at most a full series' worth).
    fn gap(&mut self, n: u64) {
        for _ in 0..n.min(POINTS as u64) {
            self.push(None);
        }
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = Option<f64>> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which step `at` falls in, counted from `origin`.
fn step_of(origin: Instant, at: Instant) -> u64 {
    (at.saturating_duration_since(origin).as_nanos() / STEP.as_nanos()) as u64
}

/// One target's charts.
#[derive(Debug, Clone)]
pub struct TargetTrack {
    origin: Instant,
    /// The step being filled.
    step: u64,
    good: u64,
    bad: u64,
    latency: Histogram,
    error_ratio: Series,
    p95_seconds: Series,
}

/// What `/status` shows of a target's last 15 minutes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetHistory {
    pub error_ratio: Series,
    pub p95_seconds: Series,
}

impl TargetTrack {
    pub fn new(origin: Instant) -> Self {
        TargetTrack {
            origin,
            step: 0,
            good: 0,
            bad: 0,
            latency: Histogram::default(),
            error_ratio: Series::default(),
            p95_seconds: Series::default(),
        }
    }

    /// Count one probe (at the latency it took, failed or not).
    pub fn record(&mut self, at: Instant, ok: bool, latency: Duration) {
        self.roll(at);
        // A probe that started before the step under way (it took longer
        // than a step) counts in the current one: charts are not exact to
        // the second, only complete.
        if ok {
            self.good += 1;
        } else {
            self.bad += 1;
        }
        self.latency.record(latency);
    }

    /// Close every step that ended by `now`.
    pub fn roll(&mut self, now: Instant) {
        let step = step_of(self.origin, now);
        if step <= self.step {
            return;
        }
        let total = self.good + self.bad;
        self.error_ratio
            .push((total > 0).then(|| self.bad as f64 / total as f64));
        self.p95_seconds
            .push(self.latency.percentile(95.0).map(|d| d.as_secs_f64()));
        let skipped = step - self.step - 1;
        self.error_ratio.gap(skipped);
        self.p95_seconds.gap(skipped);
        self.step = step;
        self.good = 0;
        self.bad = 0;
        self.latency = Histogram::default();
    }

    pub fn history(&self) -> TargetHistory {
        TargetHistory {
            error_ratio: self.error_ratio.clone(),
            p95_seconds: self.p95_seconds.clone(),
        }
    }
}

/// One SLO's burn-rate chart: sampled at the end of each step.
#[derive(Debug, Clone)]
pub struct SloTrack {
    origin: Instant,
    step: u64,
    burn_rate: Series,
}

impl SloTrack {
    pub fn new(origin: Instant) -> Self {
        SloTrack {
            origin,
            step: 0,
            burn_rate: Series::default(),
        }
    }

    /// A step ended since the last roll.
    pub fn due(&self, now: Instant) -> bool {
        step_of(self.origin, now) > self.step
    }

    /// At `now`, if a step ended since the last call, take the burn rate
    /// `measure` gives (it is read only then).
    pub fn roll(&mut self, now: Instant, measure: impl FnOnce() -> Option<f64>) {
        let step = step_of(self.origin, now);
        if step <= self.step {
            return;
        }
        self.burn_rate.gap(step - self.step - 1);
        self.burn_rate.push(measure());
        self.step = step;
    }

    pub fn burn_rate(&self) -> &Series {
        &self.burn_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &Series) -> Vec<Option<f64>> {
        s.values().collect()
    }

    #[test]
    fn a_step_closes_with_its_error_ratio_and_p95() {
        let t0 = Instant::now();
        let mut t = TargetTrack::new(t0);
        for i in 0..10 {
            let at = t0 + Duration::from_secs(i);
            t.record(at, i != 3, Duration::from_millis(100 + 10 * i));
        }
        assert!(t.history().error_ratio.is_empty(), "the step is still open");
        t.roll(t0 + STEP);
        let h = t.history();
        assert_eq!(vals(&h.error_ratio), vec![Some(0.1)]);
        let p95 = h.p95_seconds.values().next().flatten().expect("a p95");
        assert!((0.17..0.21).contains(&p95), "p95 {p95}");
    }

    #[test]
    fn timed_out_probes_count_in_the_p95() {
        let t0 = Instant::now();
        let mut t = TargetTrack::new(t0);
        for i in 0..10 {
            t.record(t0 + Duration::from_secs(i), false, Duration::from_secs(1));
        }
        t.roll(t0 + STEP);
        let p95 = t.history().p95_seconds.values().next().flatten().unwrap();
        assert!((0.9..1.1).contains(&p95), "p95 {p95}");
    }

    #[test]
    fn silent_steps_are_gaps_and_the_series_keeps_fifteen_minutes() {
        let t0 = Instant::now();
        let mut t = TargetTrack::new(t0);
        t.record(t0, true, Duration::from_millis(5));
        t.record(t0 + 3 * STEP, false, Duration::from_millis(5));
        t.roll(t0 + 4 * STEP);
        assert_eq!(
            vals(&t.history().error_ratio),
            vec![Some(0.0), None, None, Some(1.0)]
        );
        t.roll(t0 + 1000 * STEP);
        let h = t.history();
        assert_eq!(h.error_ratio.len(), POINTS);
        assert!(h.error_ratio.values().all(|v| v.is_none()));
    }

    #[test]
    fn slo_burn_rate_is_read_once_per_step() {
        let t0 = Instant::now();
        let mut s = SloTrack::new(t0);
        let mut reads = 0;
        for ms in (0..25_000).step_by(500) {
            s.roll(t0 + Duration::from_millis(ms), || {
                reads += 1;
                Some(ms as f64)
            });
        }
        assert_eq!(reads, 2);
        assert_eq!(vals(s.burn_rate()), vec![Some(10_000.0), Some(20_000.0)]);
    }
}
