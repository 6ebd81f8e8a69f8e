//! Scheduling: one task per target. Ticks that pass while a probe runs are
//! skipped, never queued, so a slow app cannot build a backlog; how late
//! each probe started is measured as schedule lag.
//!
//! The tasks are keyed by target name: on a reload, a target that did not
//! change keeps its task, and so its schedule and warm-up; it is only told
//! its place in the new configuration (its generation and index), so its
//! samples are read against the right target.

use super::http::Request;
use super::{Prober, Sample, Streak, Telemetry};
use crate::config::{Config, ConfigDiff, Target};
use crate::tls::ClientError;
use rand::Rng;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Where a target stands: the configuration generation and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub generation: u64,
    pub index: usize,
}

/// The running probe tasks, one per target.
pub struct Probes {
    prober: Prober,
    samples: mpsc::Sender<Sample>,
    telemetry: Telemetry,
    /// Cancelled: every task stops.
    stop: CancellationToken,
    running: HashMap<String, Running>,
    tasks: JoinSet<()>,
}

/// One target's task: how to stop it and how to tell it where it stands.
struct Running {
    stop: CancellationToken,
    place: watch::Sender<Place>,
}

impl Probes {
    /// Start probing every target of `config` (generation `generation`).
    pub fn start(
        config: &Config,
        generation: u64,
        requests: Vec<Request>,
        prober: Prober,
        samples: mpsc::Sender<Sample>,
        telemetry: Telemetry,
        stop: CancellationToken,
    ) -> Probes {
        let mut probes = Probes {
            prober,
            samples,
            telemetry,
            stop,
            running: HashMap::new(),
            tasks: JoinSet::new(),
        };
        for (index, (target, request)) in config.targets.iter().zip(requests).enumerate() {
            probes.spawn(target, request, Place { generation, index });
        }
        probes
    }

    /// The request of every target of `config`, in order: built (and so
    /// checked) with the rest of a generation, before anything changes.
    pub fn requests(config: &Config) -> Result<Vec<Request>, ClientError> {
        config.targets.iter().map(Request::new).collect()
    }

    /// Move to `config` (generation `generation`): targets `diff` says are
    /// the same keep probing (told their new place), the others stop, new
    /// and changed ones start (with `requests` and `prober`, the new
    /// configuration's).
    pub fn apply(
        &mut self,
        config: &Config,
        diff: &ConfigDiff,
        generation: u64,
        requests: Vec<Request>,
        prober: Prober,
    ) {
        let mut kept = HashMap::new();
        for (index, from) in diff.targets.iter().enumerate() {
            let name = &config.targets[index].name;
            if from.is_some()
                && let Some(task) = self.running.remove(name)
            {
                task.place.send_replace(Place { generation, index });
                kept.insert(name.clone(), task);
            }
        }
        for (_, gone) in self.running.drain() {
            gone.stop.cancel();
        }
        self.running = kept;
        self.prober = prober;
        for (index, (target, request)) in config.targets.iter().zip(requests).enumerate() {
            if !self.running.contains_key(&target.name) {
                self.spawn(target, request, Place { generation, index });
            }
        }
    }

    /// Stop every task and wait for them.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    fn spawn(&mut self, target: &Target, request: Request, place: Place) {
        let stop = self.stop.child_token();
        let (place_tx, place_rx) = watch::channel(place);
        let task = TargetLoop {
            target: target.clone(),
            place: place_rx,
            request,
            prober: self.prober.clone(),
            samples: self.samples.clone(),
            telemetry: self.telemetry.clone(),
            warmup: Warmup::new(Instant::now(), target.warmup),
            streak: Streak::default(),
            queued: None,
        };
        let cancelled = stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = cancelled.cancelled() => {}
                _ = task.run() => {}
            }
        });
        // Finished tasks are reaped as new ones start, so the set stays small.
        while self.tasks.try_join_next().is_some() {}
        self.running.insert(
            target.name.clone(),
            Running {
                stop,
                place: place_tx,
            },
        );
    }
}

struct TargetLoop {
    target: Target,
    place: watch::Receiver<Place>,
    request: Request,
    prober: Prober,
    samples: mpsc::Sender<Sample>,
    telemetry: Telemetry,
    warmup: Warmup,
    /// The target's current run of failures, for its log lines.
    streak: Streak,
    /// The last scrape body sent on, while the engine has not read it.
    queued: Option<std::sync::Weak<[u8]>>,
}

impl TargetLoop {
    async fn run(mut self) {
        let target = &self.target;
        // The schedule starts when this task first runs, not when it was
        // spawned: the rest of start-up (building receivers' clients) must
        // not count as lag of the first probe.
        let mut ticker =
            tokio::time::interval_at(Instant::now() + phase(target.interval), target.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let scheduled = ticker.tick().await;
            self.telemetry.lag(
                &target.name,
                Instant::now().saturating_duration_since(scheduled),
            );
            let mut sample = self.prober.probe(0, target, &self.request).await;
            // Read after the probe: a reload while it ran has moved it.
            let place = *self.place.borrow();
            (sample.generation, sample.target) = (place.generation, place.index);
            sample.counted = self.warmup.counts(sample.at, sample.outcome.is_success());
            self.telemetry.probe(target, &sample, &mut self.streak);
            sample.scraped = one_in_flight(&mut self.queued, sample.scraped);
            if self.samples.send(sample).await.is_err() {
                return;
            }
        }
    }
}

/// At most one scrape body of a target waits for the engine: while the
/// last one is unread, a new one is not sent on (the counters it holds are
/// cumulative, so the next body read counts what this one would have), and
/// a slow engine costs one body per scrape target, not a queue of them.
fn one_in_flight(
    queued: &mut Option<std::sync::Weak<[u8]>>,
    scraped: Option<super::Scraped>,
) -> Option<super::Scraped> {
    if queued.as_ref().is_some_and(|q| q.strong_count() > 0) {
        return None;
    }
    if let Some(s) = &scraped {
        *queued = Some(std::sync::Arc::downgrade(&s.body));
    }
    scraped
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

#[cfg(test)]
#[test]
fn only_one_scrape_body_waits_for_the_engine() {
    let body = |b: &[u8]| {
        Some(super::Scraped {
            format: crate::traffic::Format::Text,
            body: b.into(),
        })
    };
    let mut queued = None;
    let first = one_in_flight(&mut queued, body(b"a 1\n")).expect("nothing queued yet");
    assert!(one_in_flight(&mut queued, body(b"a 2\n")).is_none());
    // The engine read it: the next one goes.
    drop(first);
    assert!(one_in_flight(&mut queued, body(b"a 3\n")).is_some());
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
