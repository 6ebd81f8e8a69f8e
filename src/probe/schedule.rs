//! Scheduling: one task per target. Ticks that pass while a probe runs are
//! skipped, never queued, so a slow app cannot build a backlog; how late
//! each probe started is measured as schedule lag.

use super::http::Request;
use super::{Prober, Sample};
use crate::config::Config;
use crate::telemetry::Telemetry;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Spawn one probing task per target into `tasks`. Each stops when `stop`
/// is cancelled or the engine hangs up.
pub fn spawn_all(
    config: &Arc<Config>,
    prober: &Prober,
    samples: &mpsc::Sender<Sample>,
    telemetry: &Telemetry,
    stop: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(), String> {
    let start = Instant::now();
    for (index, target) in config.targets.iter().enumerate() {
        let request = Request::new(target)?;
        let task = TargetLoop {
            index,
            config: config.clone(),
            request,
            prober: prober.clone(),
            samples: samples.clone(),
            telemetry: telemetry.clone(),
            start,
        };
        let stop = stop.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = task.run() => {}
            }
        });
    }
    Ok(())
}

struct TargetLoop {
    index: usize,
    config: Arc<Config>,
    request: Request,
    prober: Prober,
    samples: mpsc::Sender<Sample>,
    telemetry: Telemetry,
    start: Instant,
}

impl TargetLoop {
    async fn run(self) {
        let target = &self.config.targets[self.index];
        // The schedule starts when this task first runs, not when it was
        // spawned: the rest of start-up (building receivers' clients) must
        // not count as lag of the first probe.
        let mut ticker =
            tokio::time::interval_at(Instant::now() + phase(target.interval), target.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut warmup = Warmup::new(self.start, target.warmup);
        loop {
            let scheduled = ticker.tick().await;
            self.telemetry.probe_lag(
                &target.name,
                Instant::now().saturating_duration_since(scheduled),
            );
            let mut sample = self.prober.probe(self.index, target, &self.request).await;
            sample.counted = warmup.counts(sample.at, sample.outcome.is_success());
            self.telemetry.probe(target, &sample);
            if self.samples.send(sample).await.is_err() {
                return;
            }
        }
    }
}

/// Which results of one target count while it warms up: a failure before
/// its first success within `period` after start does not (like a
/// Kubernetes startupProbe); everything after that first success does.
#[derive(Debug, Clone)]
pub struct Warmup {
    start: Instant,
    period: Duration,
    succeeded: bool,
}

impl Warmup {
    pub fn new(start: Instant, period: Duration) -> Warmup {
        Warmup {
            start,
            period,
            succeeded: false,
        }
    }

    /// Whether a probe started at `at` with this result counts.
    pub fn counts(&mut self, at: Instant, success: bool) -> bool {
        let counted =
            success || self.succeeded || at.saturating_duration_since(self.start) >= self.period;
        self.succeeded |= success;
        counted
    }
}

/// A random start offset of up to a tenth of the interval (at most 1 s),
/// so targets with equal intervals do not all hit the app at once.
fn phase(interval: Duration) -> Duration {
    let max = (interval / 10).min(Duration::from_secs(1));
    if max.is_zero() {
        return Duration::ZERO;
    }
    rand::rng().random_range(Duration::ZERO..max)
}
