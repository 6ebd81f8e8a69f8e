//! The engine's data as the rules read it (`rules::Observations`): probe
//! targets from their windows, traffic entries from theirs, SLOs over both,
//! and how much of a young window is still missing.

use super::Engine;
use crate::config::Containers;
use crate::rules::Observations;
use crate::window::{Batches, Spread, Stats};
use std::time::Duration;
use tokio::time::Instant;

/// The engine's data as rules see it, at one instant.
pub(super) struct View<'a> {
    pub(super) engine: &'a Engine,
    pub(super) now: Instant,
}

impl Observations for View<'_> {
    fn spread(&self, target: Option<usize>, span: Duration) -> Spread {
        let mut batches = Batches::default();
        match target.and_then(|t| self.engine.config.traffic_index(t)) {
            Some(i) => self.engine.traffic[i].add_batches(span, self.now, &mut batches),
            None => {
                for (i, t) in self.engine.targets.iter().enumerate() {
                    if target.is_none_or(|only| only == i) {
                        t.window.add_batches(span, self.now, None, &mut batches);
                    }
                }
            }
        }
        batches.spread()
    }
    fn stats(&self, target: usize, span: Duration) -> Stats {
        match self.engine.config.traffic_index(target) {
            Some(i) => Stats {
                counts: self.engine.traffic[i].counts(span, self.now),
                latency: Default::default(),
            },
            None => self.engine.targets[target].window.stats(span, self.now),
        }
    }
    fn bucket_percentile(
        &self,
        target: usize,
        span: Duration,
        percentile: f64,
    ) -> Option<(Option<Duration>, u64)> {
        let i = self.engine.config.traffic_index(target)?;
        Some(self.engine.traffic[i].percentile(span, self.now, percentile))
    }
    fn latency_spread(&self, target: usize, span: Duration, above: Duration) -> Spread {
        // Traffic's latency is judged in its own buckets (bucket_percentile).
        self.engine
            .targets
            .get(target)
            .map_or_else(Spread::default, |t| {
                t.window.latency_spread(span, self.now, above)
            })
    }
    fn slo_spread(&self, slo: usize, span: Duration) -> Spread {
        let e = self.engine;
        let s = &e.config.slos[slo];
        let mut batches = Batches::default();
        for &t in &s.targets {
            match e.config.traffic_index(t) {
                Some(i) => match s.latency_threshold {
                    None => e.traffic[i].add_batches(span, self.now, &mut batches),
                    // A latency SLO over traffic whose threshold is not
                    // a bucket bound has no exact SLI: no data, so it
                    // never fires.
                    Some(_) => {
                        if !e.traffic[i].add_within_batches(slo, span, self.now, &mut batches) {
                            return Spread::default();
                        }
                    }
                },
                None => {
                    let threshold = e.slo_thresholds[slo][t];
                    let window = &e.targets[t].window;
                    window.add_batches(span, self.now, threshold, &mut batches);
                }
            }
        }
        batches.spread()
    }
    fn consecutive_failures(&self, target: usize) -> u32 {
        // Validation keeps consecutive_failures off traffic.
        self.engine
            .targets
            .get(target)
            .map_or(0, |t| t.consecutive_failures)
    }
    fn restarts(&self, span: Duration, containers: &Containers) -> Option<u32> {
        let e = self.engine;
        e.restarts_seen.then(|| {
            e.restarts
                .iter()
                .filter(|r| self.now.saturating_duration_since(r.at) <= span)
                .fold(0u32, |sum, r| {
                    sum.saturating_add(r.of(|name| containers.counts(name)))
                })
        })
    }
    fn last_failure(&self, target: usize) -> Option<String> {
        match self.engine.config.traffic_index(target) {
            Some(i) => self.engine.traffic[i].last.as_ref()?.detail.clone(),
            None => self.engine.targets[target].last.as_ref()?.detail.clone(),
        }
    }
    fn missing(&self, target: usize, span: Duration) -> u64 {
        if let Some(i) = self.engine.config.traffic_index(target) {
            return self.engine.traffic[i].missing(span, self.now);
        }
        let t = &self.engine.targets[target];
        let (Some(first), Some(last)) = (t.first, &t.last) else {
            return 0;
        };
        // Each probe stands for one interval of time, the last one's
        // included: a probe not yet due this round is not missing either.
        let interval = self.engine.config.targets[target].interval;
        let seen = last.at.saturating_duration_since(first) + interval;
        let missing = span.saturating_sub(seen).as_nanos() / interval.as_nanos().max(1);
        u64::try_from(missing).unwrap_or(u64::MAX)
    }
}
