//! Sliding windows of probe results for one target, in fixed memory.
//!
//! A [`Window`] is a stack of rings of time slots: tier 0 has 1 s slots,
//! tier k has 10^k s slots, each at most 120 slots, and only as many tiers
//! as the horizon needs (the last one sized to the horizon plus the partial
//! current slot). Every sample goes into every tier; a query uses the finest
//! tier that spans it. Each slot counts good and bad probes, successful
//! probes within each latency-SLO threshold (exact), and keeps a
//! [`Histogram`] of successful latencies. Nothing is stored per sample, so
//! memory does not depend on the probe rate.
//!
//! Heap held per target with one latency threshold (from
//! [`Window::memory_bytes`], checked by a test). About 1 KiB per slot, nearly
//! all of it the slot's histogram:
//!
//! | horizon | tiers (slots × width)                           | memory                |
//! |---------|-------------------------------------------------|-----------------------|
//! | 5 m     | 120 × 1 s, 31 × 10 s                            | 158 KiB (161 396 B)   |
//! | 10 m    | 120 × 1 s, 61 × 10 s                            | 189 KiB (193 436 B)   |
//! | 1 h     | 120 × 1 s, 120 × 10 s, 37 × 100 s               | 289 KiB (296 020 B)   |
//! | 6 h     | 120 × 1 s, 120 × 10 s, 120 × 100 s, 23 × 1000 s | 400 KiB (409 284 B)   |
//!
//! A query sums the `ceil(span / width)` most recent slots, the current
//! partial one included, so it covers between `span - width` and `span` of
//! history, and a young window is judged on what it has. Coarse tiers make
//! that edge coarse: a 6 h span on 1000 s slots covers 21 000–22 000 s.
//!
//! Time is [`tokio::time::Instant`] so tests run in paused virtual time.

mod histogram;
#[cfg(test)]
mod tests;

use std::ops::{Add, AddAssign, Range};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

pub use histogram::Histogram;
use histogram::{SlotHistogram, bucket_index, nanos};

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

/// Counts plus the latency distribution of the successful probes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Good and bad probes.
    pub counts: Counts,
    /// Latencies of the good probes only: a timeout says nothing about speed.
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
    latency: Box<[SlotHistogram]>,
    /// `heads.len()` rows of one counter per threshold.
    within: Box<[u32]>,
}

impl Tier {
    fn new(width_secs: u64, slots: usize, thresholds: usize) -> Tier {
        Tier {
            width_secs,
            heads: vec![Head::default(); slots].into_boxed_slice(),
            latency: vec![SlotHistogram::EMPTY; slots].into_boxed_slice(),
            within: vec![0; slots * thresholds].into_boxed_slice(),
        }
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
    /// Keeps at least `horizon` of history. `thresholds`: latency thresholds
    /// (from latency SLOs) for which exact "succeeded within" counts are kept
    /// per slot. `start` anchors slot boundaries; earlier samples count into
    /// the first slot.
    pub fn new(horizon: Duration, thresholds: &[Duration], start: Instant) -> Window {
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
            tiers.push(Tier::new(width, slots, thresholds.len()));
            if last {
                break;
            }
            width *= TIER_FACTOR;
        }
        Window {
            start,
            horizon,
            thresholds: thresholds.into(),
            tiers: tiers.into_boxed_slice(),
        }
    }

    /// Records one probe result. O(number of tiers), no allocation. A sample
    /// older than what a slot already holds (it arrived more than a ring late)
    /// is dropped from that tier.
    pub fn record(&mut self, at: Instant, ok: bool, latency: Duration) {
        let ns = nanos(latency);
        // Only successful probes have a meaningful latency; skip the log2 otherwise.
        let bucket = if ok { bucket_index(ns) } else { 0 };
        let nthr = self.thresholds.len();
        // Widths are 1, 10, 100 … s, so each tier's epoch is the previous one / 10.
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
                tier.latency[i] = SlotHistogram::EMPTY;
                tier.within[row.clone()].fill(0);
            }
            if ok {
                head.good = head.good.saturating_add(1);
                tier.latency[i].record(bucket, ns);
                for (n, t) in tier.within[row].iter_mut().zip(self.thresholds.iter()) {
                    *n = n.saturating_add(u32::from(latency <= *t));
                }
            } else {
                head.bad = head.bad.saturating_add(1);
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

    /// Counts plus the latency histogram of successful probes over the span.
    pub fn stats(&self, span: Duration, now: Instant) -> Stats {
        let (tier, slots) = self.select(span, now);
        let mut stats = Stats::default();
        for i in slots {
            let head = tier.heads[i];
            stats.counts.good += u64::from(head.good);
            stats.counts.bad += u64::from(head.bad);
            stats.latency.add_slot(&tier.latency[i], head.good);
        }
        stats
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

    /// Picks the finest tier covering `span` (the coarsest if none does) and
    /// yields the indices of its slots that belong to the last
    /// `ceil(span / width)` epochs up to and including `now`'s. Slots holding
    /// any other epoch are stale and skipped.
    fn select(&self, span: Duration, now: Instant) -> (&Tier, impl Iterator<Item = usize> + '_) {
        let tier = self
            .tiers
            .iter()
            .find(|t| t.coverage() >= span)
            .unwrap_or_else(|| self.tiers.last().expect("at least one tier"));
        let n = tier.heads.len();
        let wanted = span
            .as_nanos()
            .div_ceil(u128::from(tier.width_secs) * 1_000_000_000);
        let k = wanted.min(n as u128) as u64;
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
