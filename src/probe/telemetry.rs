//! What probing tells: `backstop_probes_total`, the probe duration and
//! schedule lag histograms, a log line per failure, and a `Probed` event.

use super::{Outcome, Sample};
use crate::config::Target;
use crate::telemetry::{DURATION_BUCKETS, Emitter, Registry, ms};
use prometheus::{HistogramVec, IntCounterVec};
use std::time::Duration;

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

    pub fn probe(&self, target: &Target, s: &Sample) {
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
            Outcome::Failure { reason, detail } => tracing::info!(
                target_name = name,
                reason = reason.metric_label(),
                detail = detail.as_str(),
                latency_ms = ms(s.latency),
                counted = s.counted,
                "probe failed"
            ),
        }
        self.events.emit(|| Probed {
            target: name.to_string(),
            outcome: s.outcome.clone(),
            latency: s.latency,
            counted: s.counted,
        });
    }
}
