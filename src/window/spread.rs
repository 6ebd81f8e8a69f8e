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

/// Folds slots, oldest first, into batches: `per_batch` consecutive slot
/// epochs (epoch / per_batch) make one batch.
pub(super) struct Batcher {
    per_batch: u64,
    current: Option<(u64, u64, u64)>,
    pub(super) spread: Spread,
}

impl Batcher {
    pub(super) fn new(slot_secs: u64) -> Batcher {
        Batcher {
            per_batch: (BATCH_SECS / slot_secs.max(1)).max(1),
            current: None,
            spread: Spread::default(),
        }
    }

    pub(super) fn slot(&mut self, epoch: u64, good: u64, total: u64) {
        let batch = epoch / self.per_batch;
        match &mut self.current {
            Some((b, g, n)) if *b == batch => {
                *g += good;
                *n += total;
            }
            current => {
                if let Some((_, g, n)) = current.take() {
                    self.spread.add_batch(g, n);
                }
                *current = Some((batch, good, total));
            }
        }
    }

    pub(super) fn finish(mut self) -> Spread {
        if let Some((_, g, n)) = self.current.take() {
            self.spread.add_batch(g, n);
        }
        self.spread
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
    fn batcher_groups_consecutive_epochs() {
        let mut by_ten = Batcher::new(1);
        for epoch in 5..25 {
            by_ten.slot(epoch, 1, 1);
        }
        // Epochs 5-9, 10-19 and 20-24: three batches.
        assert_eq!(by_ten.finish().batches, 3);
        let mut coarse = Batcher::new(100);
        coarse.slot(1, 1, 2);
        coarse.slot(2, 1, 2);
        assert_eq!(coarse.finish().batches, 2, "a 100 s slot is its own batch");
    }
}
