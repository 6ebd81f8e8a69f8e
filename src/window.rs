//! Sliding windows of probe results for one target, in fixed memory.
//!
//! A [`Window`] is a stack of rings of time slots: tier 0 has 1 s slots,
//! tier k has 10^k s slots, each at most 120 slots, and only as many tiers
//! as the horizon needs (the last one sized to the horizon plus the partial
//! current slot). Every sample goes into every tier; a query uses the finest
//! tier that spans it. Each slot counts good and bad probes and successful
//! probes within each latency-SLO threshold (exact). Latencies of every
//! probe, failures at the time they took, go into [`Histogram`]s of about
//! 1 KiB each, kept per slot for the most recent slots of a tier: all of
//! them ([`Window::new`]), or only as many as the declared latency queries
//! read plus the whole coarsest tier ([`Window::with_latency_spans`], what
//! the daemon uses: most queries only count). Nothing is stored per sample, so memory does not depend on the
//! probe rate.
//!
//! Heap held per target with one latency threshold (from
//! [`Window::memory_bytes`], checked by a test); "lean" keeps histograms for
//! 5 m queries only, as the daemon does without latency rules:
//!
//! | horizon | tiers (slots × width)                           | all histograms | lean   |
//! |---------|-------------------------------------------------|----------------|--------|
//! | 5 m     | 120 × 1 s, 31 × 10 s                            | 159 KiB        | 35 KiB |
//! | 10 m    | 120 × 1 s, 61 × 10 s                            | 190 KiB        | 67 KiB |
//! | 1 h     | 120 × 1 s, 120 × 10 s, 37 × 100 s               | 291 KiB        | 75 KiB |
//! | 6 h     | 120 × 1 s, 120 × 10 s, 120 × 100 s, 23 × 1000 s | 403 KiB        | 62 KiB |
//!
//! A query sums the `ceil(span / width)` most recent slots, the current
//! partial one included, so it covers between `span - width` and `span` of
//! history, and a young window is judged on what it has. Coarse tiers make
//! that edge coarse: a 6 h span on 1000 s slots covers 21 000–22 000 s.
//!
//! Time is [`tokio::time::Instant`] so tests run in paused virtual time.

mod histogram;
mod spread;
#[cfg(test)]
mod tests;

use std::ops::{Add, AddAssign, Range};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

pub use histogram::Histogram;
use histogram::{SlotHistogram, bucket_index, nanos};
use spread::Batcher;
pub use spread::{BATCH_SECS, Spread};

/// A tier never has more slots than this; past it a coarser tier takes over.
const MAX_SLOTS: u64 = 120;
/// Tier k+1's slots are this many times wider than tier k's.
const TIER_FACTOR: u64 = 10;

/// Good and bad probe counts over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Probes that met every expectation.
    pub good: u64,
    /// Probes that failed (error, timeout, unexpected response).
    pub bad: u64,
}

impl Counts {
    /// All probes.
    pub fn total(&self) -> u64 {
        self.good + self.bad
    }

    /// `bad / total`, `None` when there were no probes.
    pub fn error_ratio(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.bad as f64 / total as f64)
    }
}

impl Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        Counts {
            good: self.good + other.good,
            bad: self.bad + other.bad,
        }
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        *self = *self + other;
    }
}

/// Counts plus the latency distribution of every probe.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Good and bad probes.
    pub counts: Counts,
    /// Latencies of all probes, failures at the time they took (a timeout
    /// at its timeout): a lower bound of how long the answer would have
    /// taken, so a slow endpoint shows as slow, not as its few fast answers.
    pub latency: Histogram,
}

impl Stats {
    /// Adds `other` into `self` (aggregating several targets).
    pub fn merge(&mut self, other: &Stats) {
        self.counts += other.counts;
        self.latency.merge(&other.latency);
    }
}

/// Fixed part of a slot, kept apart from the histograms so that `counts`
/// walks a few dense cache lines instead of one kilobyte per slot.
#[derive(Clone, Copy, Default)]
struct Head {
    /// Which slot of time (elapsed / width) the contents belong to. Zeroed
    /// slots carry epoch 0, which is harmless: they hold nothing.
    epoch: u64,
    good: u32,
    bad: u32,
}

/// One ring of equally wide slots. Slot `i` holds epoch `e` with `e % n == i`.
struct Tier {
    width_secs: u64,
    heads: Box<[Head]>,
    /// A shorter ring of histograms for the most recent epochs (`e % m`),
    /// as many as the latency queries answered from this tier read: a
    /// histogram is 1 KiB, a head 24 bytes, and most spans only ever ask
    /// for counts. Empty when no latency query lands on this tier.
    latency: Box<[SlotHistogram]>,
    /// `heads.len()` rows of one counter per threshold.
    within: Box<[u32]>,
}

impl Tier {
    fn new(width_secs: u64, slots: usize, histograms: usize, thresholds: usize) -> Tier {
        Tier {
            width_secs,
            heads: vec![Head::default(); slots].into_boxed_slice(),
            latency: vec![SlotHistogram::EMPTY; histograms].into_boxed_slice(),
            within: vec![0; slots * thresholds].into_boxed_slice(),
        }
    }

    /// How many of this tier's slots a query over `span` reads.
    fn slots_for(&self, span: Duration) -> usize {
        let wanted = span
            .as_nanos()
            .div_ceil(u128::from(self.width_secs) * 1_000_000_000);
        wanted.min(self.heads.len() as u128) as usize
    }

    fn width(&self) -> Duration {
        Duration::from_secs(self.width_secs)
    }

    /// The longest span this tier can answer.
    fn coverage(&self) -> Duration {
        self.width().saturating_mul(self.heads.len() as u32)
    }
}

/// Time-bucketed rings of probe results for one target.
pub struct Window {
    start: Instant,
    horizon: Duration,
    thresholds: Box<[Duration]>,
    tiers: Box<[Tier]>,
}

impl Window {
    /// Keeps at least `horizon` of history, with a latency histogram in every
    /// slot, so `stats` answers any span at the finest resolution.
    /// `thresholds`: latency thresholds (from latency SLOs) for which exact
    /// "succeeded within" counts are kept per slot. `start` anchors slot
    /// boundaries; earlier samples count into the first slot.
    pub fn new(horizon: Duration, thresholds: &[Duration], start: Instant) -> Window {
        Window::build(horizon, None, thresholds, start)
    }

    /// Like [`Window::new`], but keeps latency histograms only where `stats`
    /// over one of `latency_spans` reads them, plus the whole coarsest tier.
    /// `stats` over those spans answers exactly as with [`Window::new`]; over
    /// another span it reads the finest tier that keeps enough histograms,
    /// which may be a coarser one. Counts are unaffected.
    pub fn with_latency_spans(
        horizon: Duration,
        latency_spans: &[Duration],
        thresholds: &[Duration],
        start: Instant,
    ) -> Window {
        Window::build(horizon, Some(latency_spans), thresholds, start)
    }

    fn build(
        horizon: Duration,
        latency_spans: Option<&[Duration]>,
        thresholds: &[Duration],
        start: Instant,
    ) -> Window {
        let mut tiers = Vec::new();
        let mut width = 1u64;
        loop {
            // One slot more than the horizon needs: the current one is partial.
            let needed = horizon
                .as_nanos()
                .div_ceil(u128::from(width) * 1_000_000_000)
                + 1;
            let last = needed <= u128::from(MAX_SLOTS) || width.checked_mul(TIER_FACTOR).is_none();
            let slots = needed.min(u128::from(MAX_SLOTS)) as usize;
            tiers.push(Tier::new(width, slots, 0, thresholds.len()));
            if last {
                break;
            }
            width *= TIER_FACTOR;
        }
        let mut window = Window {
            start,
            horizon,
            thresholds: thresholds.into(),
            tiers: tiers.into_boxed_slice(),
        };
        let mut histograms: Vec<usize> = window.tiers.iter().map(|_| 0).collect();
        match latency_spans {
            None => histograms = window.tiers.iter().map(|t| t.heads.len()).collect(),
            Some(spans) => {
                // The coarsest tier in full: any span, however long, gets a
                // distribution that covers it.
                if let (Some(n), Some(t)) = (histograms.last_mut(), window.tiers.last()) {
                    *n = t.heads.len();
                }
                for &span in spans {
                    let i = window.tier_index(span);
                    histograms[i] = histograms[i].max(window.tiers[i].slots_for(span));
                }
            }
        }
        for (tier, n) in window.tiers.iter_mut().zip(histograms) {
            tier.latency = vec![SlotHistogram::EMPTY; n].into_boxed_slice();
        }
        window
    }

    /// Records one probe result. O(number of tiers), no allocation. A sample
    /// older than what a slot already holds (it arrived more than a ring late)
    /// is dropped from that tier.
    pub fn record(&mut self, at: Instant, ok: bool, latency: Duration) {
        // Every answer counts, a failure at the time it took: a probe that
        // timed out took at least its timeout (the prober caps it there),
        // so leaving it out would hide exactly the slowest answers.
        let ns = nanos(latency);
        let bucket = bucket_index(ns);
        let nthr = self.thresholds.len();
        // Widths are 1, 10, 100 … s, so each tier's epoch is the previous one / 10.
        let mut epoch = self.elapsed_secs(at);
        for tier in self.tiers.iter_mut() {
            let i = (epoch % tier.heads.len() as u64) as usize;
            // A full ring of histograms shares the heads' slots and resets
            // with them; a shorter one keeps its own epochs.
            let full = tier.latency.len() == tier.heads.len();
            let head = &mut tier.heads[i];
            let row = i * nthr..(i + 1) * nthr;
            if head.epoch != epoch {
                if head.epoch > epoch {
                    epoch /= TIER_FACTOR;
                    continue;
                }
                *head = Head {
                    epoch,
                    ..Head::default()
                };
                tier.within[row.clone()].fill(0);
                if full {
                    tier.latency[i] = SlotHistogram::EMPTY;
                    tier.latency[i].epoch = epoch;
                }
            }
            if full {
                tier.latency[i].record(bucket, ns);
            } else if !tier.latency.is_empty() {
                let m = tier.latency.len() as u64;
                let slot = &mut tier.latency[(epoch % m) as usize];
                if slot.epoch < epoch {
                    *slot = SlotHistogram::EMPTY;
                    slot.epoch = epoch;
                }
                // A slot already holding a later epoch: the sample is
                // older than any query on this tier reads; drop it.
                if slot.epoch == epoch {
                    slot.record(bucket, ns);
                }
            }
            if ok {
                head.good = head.good.saturating_add(1);
                for (n, t) in tier.within[row].iter_mut().zip(self.thresholds.iter()) {
                    *n = n.saturating_add(u32::from(latency <= *t));
                }
            } else {
                head.bad = head.bad.saturating_add(1);
            }
            epoch /= TIER_FACTOR;
        }
    }

    /// Records many results at once, all at `at`: `good` and `bad` counts,
    /// and per threshold how many were within it (`within[i]` for
    /// `thresholds()[i]`; missing entries are 0). Latency histograms are
    /// left alone: what is recorded this way has no single latency (real
    /// traffic, whose latency the app's own histogram buckets give through
    /// `within`). O(tiers × thresholds), no allocation.
    pub fn record_counts(&mut self, at: Instant, good: u64, bad: u64, within: &[u64]) {
        let nthr = self.thresholds.len();
        let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let mut epoch = self.elapsed_secs(at);
        for tier in self.tiers.iter_mut() {
            let i = (epoch % tier.heads.len() as u64) as usize;
            let head = &mut tier.heads[i];
            let row = i * nthr..(i + 1) * nthr;
            if head.epoch != epoch {
                if head.epoch > epoch {
                    epoch /= TIER_FACTOR;
                    continue;
                }
                *head = Head {
                    epoch,
                    ..Head::default()
                };
                tier.within[row.clone()].fill(0);
            }
            head.good = head.good.saturating_add(narrow(good));
            head.bad = head.bad.saturating_add(narrow(bad));
            for (n, add) in tier.within[row].iter_mut().zip(within) {
                *n = n.saturating_add(narrow(*add));
            }
            epoch /= TIER_FACTOR;
        }
    }

    /// Counts over the last `span` ending at `now`. Never touches histograms.
    pub fn counts(&self, span: Duration, now: Instant) -> Counts {
        let (tier, slots) = self.select(span, now);
        let mut counts = Counts::default();
        for i in slots {
            counts.good += u64::from(tier.heads[i].good);
            counts.bad += u64::from(tier.heads[i].bad);
        }
        counts
    }

    /// Counts plus the latency histogram of all probes over the span.
    pub fn stats(&self, span: Duration, now: Instant) -> Stats {
        let mut stats = Stats {
            counts: self.counts(span, now),
            latency: Histogram::default(),
        };
        let (_, slots) = self.latency_slots(span, now);
        for slot in slots {
            stats.latency.add_slot(slot);
        }
        stats
    }

    /// Counts over the span in batches of [`BATCH_SECS`] (or of one slot
    /// where slots are wider), for judging a young window. Good means good
    /// or, with `threshold` (an index as for [`Window::good_within`]),
    /// good within that latency. Its totals equal [`Window::counts`].
    pub fn spread(&self, span: Duration, now: Instant, threshold: Option<usize>) -> Spread {
        let nthr = self.thresholds.len();
        let (tier, slots) = self.select(span, now);
        let mut batches = Batcher::new(tier.width_secs);
        for i in slots {
            let head = &tier.heads[i];
            let good = match threshold {
                Some(th) => tier.within[i * nthr + th],
                None => head.good,
            };
            let total = u64::from(head.good) + u64::from(head.bad);
            batches.slot(head.epoch, u64::from(good), total);
        }
        batches.finish()
    }

    /// Answers over the span in batches as [`Window::spread`], good being
    /// "no slower than `above`", from the histograms [`Window::stats`]
    /// reads. An answer in the bucket that holds `above` counts as fast:
    /// only answers clearly slower count against the threshold.
    pub fn latency_spread(&self, span: Duration, now: Instant, above: Duration) -> Spread {
        let (width, slots) = self.latency_slots(span, now);
        let mut batches = Batcher::new(width);
        for slot in slots {
            let total = slot.count();
            batches.slot(slot.epoch, slot.at_most(above).min(total), total);
        }
        batches.finish()
    }

    /// The histograms of the slots the span reads, oldest first, from the
    /// finest tier covering the span that keeps a histogram for each of
    /// them (the coarsest tier keeps all of its own), with that tier's
    /// slot width in seconds.
    fn latency_slots(
        &self,
        span: Duration,
        now: Instant,
    ) -> (u64, impl Iterator<Item = &SlotHistogram> + '_) {
        let tier = self
            .tiers
            .iter()
            .find(|t| t.coverage() >= span && t.latency.len() >= t.slots_for(span))
            .or_else(|| self.tiers.iter().rev().find(|t| !t.latency.is_empty()))
            .expect("at least one tier keeps histograms");
        let m = tier.latency.len();
        let last = self.elapsed_secs(now) / tier.width_secs;
        let k = tier.slots_for(span).min(m) as u64;
        let first = (last + 1).saturating_sub(k);
        // A wrapping index, as in `select`, instead of one division per slot.
        let mut j = (first % m as u64) as usize;
        let slots = (first..last + 1).filter_map(move |epoch| {
            let slot = &tier.latency[j];
            j = if j + 1 == m { 0 } else { j + 1 };
            (slot.epoch == epoch).then_some(slot)
        });
        (tier.width_secs, slots)
    }

    /// Successful probes within `thresholds[threshold]` (latency ≤ threshold)
    /// over the span. Exact, not estimated from the histogram.
    ///
    /// # Panics
    /// If `threshold` is not an index into the thresholds given to [`Window::new`].
    pub fn good_within(&self, span: Duration, now: Instant, threshold: usize) -> u64 {
        let nthr = self.thresholds.len();
        assert!(threshold < nthr, "threshold {threshold} of {nthr}");
        let (tier, slots) = self.select(span, now);
        slots
            .map(|i| u64::from(tier.within[i * nthr + threshold]))
            .sum()
    }

    /// The horizon asked for at construction; queries may reach a little further.
    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    /// The latency thresholds, in the order `good_within` indexes them.
    pub fn thresholds(&self) -> &[Duration] {
        &self.thresholds
    }

    /// The tiers as (slot width, slot count), finest first.
    pub fn tiers(&self) -> impl Iterator<Item = (Duration, usize)> + '_ {
        self.tiers.iter().map(|t| (t.width(), t.heads.len()))
    }

    /// Approximate heap bytes held. Fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        let tiers: usize = self
            .tiers
            .iter()
            .map(|t| {
                size_of_val::<[Head]>(&t.heads)
                    + size_of_val::<[SlotHistogram]>(&t.latency)
                    + size_of_val::<[u32]>(&t.within)
            })
            .sum();
        tiers + size_of_val::<[Tier]>(&self.tiers) + size_of_val::<[Duration]>(&self.thresholds)
    }

    /// Whole seconds since `start`; instants before it count as zero.
    fn elapsed_secs(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_secs()
    }

    /// The finest tier covering `span`, the coarsest if none does.
    fn tier_index(&self, span: Duration) -> usize {
        self.tiers
            .iter()
            .position(|t| t.coverage() >= span)
            .unwrap_or(self.tiers.len() - 1)
    }

    /// Picks the tier of [`Window::tier_index`] and yields the indices of
    /// its slots that belong to the last `ceil(span / width)` epochs up to
    /// and including `now`'s. Slots holding any other epoch are stale and
    /// skipped.
    fn select(&self, span: Duration, now: Instant) -> (&Tier, impl Iterator<Item = usize> + '_) {
        let tier = &self.tiers[self.tier_index(span)];
        let n = tier.heads.len();
        let k = tier.slots_for(span) as u64;
        let last = self.elapsed_secs(now) / tier.width_secs;
        let epochs: Range<u64> = (last + 1).saturating_sub(k)..last + 1;
        // Walk the ring with a wrapping index instead of one division per slot.
        let mut i = (epochs.start % n as u64) as usize;
        let slots = epochs.filter_map(move |epoch| {
            let slot = i;
            i = if i + 1 == n { 0 } else { i + 1 };
            (tier.heads[slot].epoch == epoch).then_some(slot)
        });
        (tier, slots)
    }
}
