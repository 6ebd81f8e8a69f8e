//! What probing tells: `backstop_probes_total`, the probe duration and
//! schedule lag histograms, a `Probed` event per probe, and two log lines
//! per outage of a target (`Streak`): when it has failed `FAILING_AFTER`
//! probes in a row, and when it recovers, each with the counts. Single
//! failed probes are logged at debug level only.

use super::{Outcome, Sample};
use crate::config::Target;
use crate::telemetry::{DURATION_BUCKETS, Emitter, Registry, ms};
use prometheus::{HistogramVec, IntCounterVec};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Counted failures in a row after which a target is logged as failing.
pub const FAILING_AFTER: u64 = 3;

/// Scheduling lag buckets: a healthy scheduler stays in the first few.
const LAG_BUCKETS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// A probe finished.
#[derive(Debug, Clone)]
pub struct Probed {
    pub target: String,
    pub outcome: Outcome,
    pub latency: Duration,
    pub counted: bool,
}

/// The probers' metrics and events; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    probes: IntCounterVec,
    duration: HistogramVec,
    lag: HistogramVec,
    events: Emitter<Probed>,
}

impl Telemetry {
    pub fn register(registry: &Registry, events: Emitter<Probed>) -> Telemetry {
        Telemetry {
            probes: registry.counter(
                "backstop_probes_total",
                "Probes by target and result (success, failure, warmup: a failure ignored during warm-up) and failure reason.",
                &["target", "result", "reason"],
            ),
            duration: registry.histogram(
                "backstop_probe_duration_seconds",
                "Probe duration from request start to the end of the body, by target and result.",
                &["target", "result"],
                DURATION_BUCKETS,
            ),
            lag: registry.histogram(
                "backstop_probe_schedule_lag_seconds",
                "How late a probe started compared with its schedule.",
                &["target"],
                LAG_BUCKETS,
            ),
            events,
        }
    }

    /// Metrics of their own, events to nowhere (tests, benches).
    pub fn detached() -> Telemetry {
        Telemetry::register(&Registry::new(), Emitter::none())
    }

    pub fn lag(&self, target: &str, lag: Duration) {
        self.lag
            .with_label_values(&[target])
            .observe(lag.as_secs_f64());
    }

    /// Count, log and emit one probe of `target`; `streak` is the
    /// target's own, kept by its prober.
    pub fn probe(&self, target: &Target, s: &Sample, streak: &mut Streak) {
        let name = target.name.as_str();
        let (result, reason) = match (&s.outcome, s.counted) {
            (Outcome::Success { .. }, _) => ("success", ""),
            (Outcome::Failure { reason, .. }, true) => ("failure", reason.metric_label()),
            (Outcome::Failure { reason, .. }, false) => ("warmup", reason.metric_label()),
        };
        self.probes.with_label_values(&[name, result, reason]).inc();
        self.duration
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
            Outcome::Failure { reason, detail } => tracing::debug!(
                target_name = name,
                reason = reason.metric_label(),
                detail = detail.as_str(),
                latency_ms = ms(s.latency),
                counted = s.counted,
                "probe failed"
            ),
        }
        match (streak.step(s), &s.outcome) {
            (Some(Change::Failing { failures, since }), Outcome::Failure { reason, detail }) => {
                tracing::warn!(
                    target_name = name,
                    path = target.url.path(),
                    failures,
                    since = %humantime::format_rfc3339_millis(since),
                    reason = reason.metric_label(),
                    detail = detail.as_str(),
                    "{} failing since {}: {failures} failed probes in a row, the last: {detail}",
                    target.url.path(),
                    humantime::format_rfc3339_millis(since),
                )
            }
            (Some(Change::Recovered { failures, took }), _) => tracing::info!(
                target_name = name,
                path = target.url.path(),
                failures,
                failing_ms = ms(took),
                "{} recovered after {failures} failed probe{} in {}",
                target.url.path(),
                if failures == 1 { "" } else { "s" },
                humantime::format_duration(Duration::from_millis(took.as_millis() as u64)),
            ),
            _ => {}
        }
        self.events.emit(|| Probed {
            target: name.to_string(),
            outcome: s.outcome.clone(),
            latency: s.latency,
            counted: s.counted,
        });
    }
}

/// A target's run of counted failures, so that an outage is logged twice
/// (failing, recovered) instead of once per failed probe.
#[derive(Debug, Default)]
pub struct Streak {
    /// When the first failure of the run started (monotonic, wall clock).
    first: Option<(Instant, SystemTime)>,
    failures: u64,
}

/// What a probe changed about its target's run of failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The run reached `FAILING_AFTER` failures.
    Failing { failures: u64, since: SystemTime },
    /// A success ended a run of this many failures, this long after its first.
    Recovered { failures: u64, took: Duration },
}

impl Streak {
    /// Take one probe's result. Failures ignored during warm-up neither
    /// start nor end a run.
    pub fn step(&mut self, s: &Sample) -> Option<Change> {
        match (&s.outcome, s.counted) {
            (Outcome::Failure { .. }, false) => None,
            (Outcome::Failure { .. }, true) => {
                let (_, since) = *self.first.get_or_insert((s.at, SystemTime::now()));
                self.failures += 1;
                (self.failures == FAILING_AFTER).then_some(Change::Failing {
                    failures: self.failures,
                    since,
                })
            }
            (Outcome::Success { .. }, _) => {
                let (first, _) = self.first.take()?;
                let failures = std::mem::take(&mut self.failures);
                Some(Change::Recovered {
                    failures,
                    took: s.at.saturating_duration_since(first),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Reason;

    fn sample(at: Instant, ok: bool, counted: bool) -> Sample {
        let outcome = if ok {
            Outcome::Success { status: 200 }
        } else {
            Outcome::Failure {
                reason: Reason::Status,
                detail: "status 500".into(),
            }
        };
        Sample {
            generation: 0,
            target: 0,
            at,
            latency: Duration::from_millis(3),
            outcome,
            counted,
            scraped: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_told_when_it_is_one_and_when_it_ends() {
        let mut streak = Streak::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Warm-up failures start nothing; a lone success ends nothing.
        assert_eq!(streak.step(&sample(at(0), false, false)), None);
        assert_eq!(streak.step(&sample(at(1), true, true)), None);
        // Two failures: not yet an outage; the third says so, once.
        assert_eq!(streak.step(&sample(at(2), false, true)), None);
        assert_eq!(streak.step(&sample(at(3), false, true)), None);
        let Some(Change::Failing { failures: 3, .. }) = streak.step(&sample(at(4), false, true))
        else {
            panic!("the third failure in a row is an outage");
        };
        for s in 5..14 {
            assert_eq!(streak.step(&sample(at(s), false, true)), None, "at {s}s");
        }
        assert_eq!(
            streak.step(&sample(at(42), true, true)),
            Some(Change::Recovered {
                failures: 12,
                took: Duration::from_secs(40)
            })
        );
        // A blip of one failure is told when it ends, with its count.
        assert_eq!(streak.step(&sample(at(50), false, true)), None);
        assert_eq!(
            streak.step(&sample(at(51), true, true)),
            Some(Change::Recovered {
                failures: 1,
                took: Duration::from_secs(1)
            })
        );
    }
}
