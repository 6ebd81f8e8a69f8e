//! Counts over a span split into batches of about ten seconds, summarised
//! by the sums that the variance of a ratio over those batches needs. A
//! young window is judged on how spread out its failures are in time: a
//! burst fills a few batches, a sustained failure all of them.

use std::ops::{Add, AddAssign};

use serde::Serialize;

use super::Counts;

/// Failures that arrive within the same this-many seconds may share one
/// cause (a pause, a dependency restarting), so they are one batch.
pub const BATCH_SECS: u64 = 10;

/// Good and total counts of a span plus, over its non-empty batches `i`
/// with `n_i` events of which `b_i` bad, the sums `Σ n_i²`, `Σ b_i·n_i` and
/// `Σ b_i²`. Adds across targets: each target's batches are batches of
/// their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// Good events (by whatever definition of good the caller asked for).
    pub good: u64,
    /// All events.
    pub total: u64,
    /// Batches holding at least one event.
    pub batches: u64,
    #[serde(skip)]
    sum_nn: u128,
    #[serde(skip)]
    sum_bn: u128,
    #[serde(skip)]
    sum_bb: u128,
}

impl Spread {
    /// Adds one batch of `good` good events out of `total` (empty batches
    /// are skipped: they hold no evidence either way).
    pub fn add_batch(&mut self, good: u64, total: u64) {
        if total == 0 {
            return;
        }
        let good = good.min(total);
        let (n, b) = (u128::from(total), u128::from(total - good));
        self.good += good;
        self.total += total;
        self.batches += 1;
        self.sum_nn += n * n;
        self.sum_bn += b * n;
        self.sum_bb += b * b;
    }

    /// Bad events.
    pub fn bad(&self) -> u64 {
        self.total - self.good
    }

    /// The good and bad counts, without the batches.
    pub fn counts(&self) -> Counts {
        Counts {
            good: self.good,
            bad: self.bad(),
        }
    }

    /// How many equal batches the batches weigh as, `(Σ n_i)² / Σ n_i²`,
    /// rounded down: a batch of one event next to batches of a hundred
    /// hardly tells anything about how they spread.
    pub fn effective_batches(&self) -> u64 {
        if self.sum_nn == 0 {
            return 0;
        }
        let n = u128::from(self.total);
        u64::try_from(n * n / self.sum_nn).unwrap_or(u64::MAX)
    }

    /// `Σ (b_i - R·n_i)²` with `R = bad / total`: how far the batches stray
    /// from the overall error ratio. 0 when every batch fails alike.
    pub fn residuals(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let r = self.bad() as f64 / self.total as f64;
        let (nn, bn, bb) = (self.sum_nn as f64, self.sum_bn as f64, self.sum_bb as f64);
        // Rounding may leave a hair below zero when every batch is alike.
        (bb - 2.0 * r * bn + r * r * nn).max(0.0)
    }
}

impl Add for Spread {
    type Output = Spread;
    fn add(self, o: Spread) -> Spread {
        Spread {
            good: self.good + o.good,
            total: self.total + o.total,
            batches: self.batches + o.batches,
            sum_nn: self.sum_nn + o.sum_nn,
            sum_bn: self.sum_bn + o.sum_bn,
            sum_bb: self.sum_bb + o.sum_bb,
        }
    }
}

impl AddAssign for Spread {
    fn add_assign(&mut self, o: Spread) {
        *self = *self + o;
    }
}

/// How many batches back [`Batches`] tells apart; older ones (only past a
/// tier's 120 slots, which no query reads) join the oldest.
const MAX_BATCHES: usize = 128;

/// Counts per batch, keyed by how many batches ago they were: adding
/// several targets' windows into one sums what happened at the same time,
/// so an outage of every target is one burst, not one per target.
#[derive(Clone)]
pub struct Batches {
    good: [u64; MAX_BATCHES],
    total: [u64; MAX_BATCHES],
}

impl Default for Batches {
    fn default() -> Self {
        Batches {
            good: [0; MAX_BATCHES],
            total: [0; MAX_BATCHES],
        }
    }
}

impl Batches {
    /// Adds `good` of `total` events to the batch `ago` batches back.
    pub(super) fn add(&mut self, ago: u64, good: u64, total: u64) {
        let i = usize::try_from(ago).map_or(MAX_BATCHES - 1, |a| a.min(MAX_BATCHES - 1));
        self.good[i] += good.min(total);
        self.total[i] += total;
    }

    /// The batches summarised.
    pub fn spread(&self) -> Spread {
        let mut spread = Spread::default();
        for (&good, &total) in self.good.iter().zip(&self.total) {
            spread.add_batch(good, total);
        }
        spread
    }
}

/// Which batch back a slot `slot_ago` slots of `slot_secs` seconds before
/// the current one falls in: ten 1 s slots make a batch, a wider slot is one.
pub(super) fn batch_ago(slot_ago: u64, slot_secs: u64) -> u64 {
    if slot_secs < BATCH_SECS {
        slot_ago * slot_secs / BATCH_SECS
    } else {
        slot_ago
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residuals_are_zero_when_batches_fail_alike() {
        let mut s = Spread::default();
        for _ in 0..5 {
            s.add_batch(980, 1000);
        }
        assert_eq!((s.good, s.total, s.batches), (4900, 5000, 5));
        assert!(s.residuals() < 1e-6, "{}", s.residuals());
    }

    #[test]
    fn residuals_measure_a_burst() {
        // 60 bad in one batch of three: R = 0.02, residuals
        // (0 - 20)² + (0 - 20)² + (60 - 20)² = 2400.
        let mut s = Spread::default();
        s.add_batch(1000, 1000);
        s.add_batch(1000, 1000);
        s.add_batch(940, 1000);
        assert!((s.residuals() - 2400.0).abs() < 1e-6, "{}", s.residuals());
        assert_eq!(
            s.counts(),
            Counts {
                good: 2940,
                bad: 60
            }
        );
    }

    #[test]
    fn empty_batches_are_skipped_and_spreads_add() {
        let mut a = Spread::default();
        a.add_batch(0, 0);
        assert_eq!(a, Spread::default());
        a.add_batch(1, 2);
        let mut b = Spread::default();
        b.add_batch(3, 3);
        a += b;
        assert_eq!((a.good, a.total, a.batches, a.bad()), (4, 5, 2, 1));
    }

    #[test]
    fn batches_sum_the_same_time_and_group_ten_seconds() {
        let mut b = Batches::default();
        for ago in 0..25 {
            b.add(batch_ago(ago, 1), 1, 1);
        }
        // Seconds 0-9, 10-19 and 20-24 back: three batches.
        assert_eq!(b.spread().batches, 3);
        // Another target at the same time adds into the same batches.
        b.add(batch_ago(3, 1), 0, 2);
        let s = b.spread();
        assert_eq!((s.batches, s.good, s.total), (3, 25, 27));
        assert_eq!(batch_ago(4, 100), 4, "a 100 s slot is its own batch");
        b.add(u64::MAX, 1, 1);
        assert_eq!(
            b.spread().batches,
            4,
            "the oldest batch takes what is older"
        );
    }
}
