//! SLO arithmetic on good/total counts: SLI, error ratio, burn rate and
//! remaining error budget. Pure functions with no state; the counts come from
//! [`crate::window`] (`Counts` for availability, `good_within` for latency).
//!
//! Objectives are fractions in (0, 1) here (`0.999`); configuration speaks in
//! percent (`99.9`) and converts before calling.

use std::time::Duration;

use serde::Serialize;

/// Fraction of good events, `None` when there were none at all.
///
/// `good` above `total` is a caller bug; it is clamped to `total`.
pub fn sli(good: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| good.min(total) as f64 / total as f64)
}

/// Fraction of bad events (`1 - sli`), `None` when there were none at all.
///
/// Computed as `bad / total` rather than `1 - sli`: `1 - 999/1000` is
/// `0.0010000000000000009`, `1/1000` is the closest double to 0.001.
pub fn error_ratio(good: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| (total - good.min(total)) as f64 / total as f64)
}

/// How fast the error budget burns: `error_ratio / (1 - objective)`.
///
/// 1.0 spends exactly the budget over the SLO period; 14.4 spends a 30-day
/// budget's 2 % in one hour. With an objective of 1 (no budget at all) any
/// error burns infinitely fast and no error burns nothing.
pub fn burn_rate(error_ratio: f64, objective: f64) -> f64 {
    let budget = 1.0 - objective;
    if budget > 0.0 {
        error_ratio / budget
    } else if error_ratio > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Fraction of the error budget left if the whole SLO period went like this
/// window: `1 - burn_rate`. Not clamped: a negative value says by how much
/// the budget is overspent (-1.0 means spent twice over), which a clamp at
/// zero would hide.
pub fn budget_remaining(error_ratio: f64, objective: f64) -> f64 {
    1.0 - burn_rate(error_ratio, objective)
}

/// Everything `/status` and the metrics show for one SLO over one window.
/// The ratios are `None` when the window holds no events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SloWindow {
    /// Length of the window the counts cover.
    pub window_seconds: f64,
    /// Events that met the objective's definition of good.
    pub good: u64,
    /// All events.
    pub total: u64,
    /// `good / total`.
    pub sli: Option<f64>,
    /// `1 - sli`.
    pub error_ratio: Option<f64>,
    /// `error_ratio / (1 - objective)`.
    pub burn_rate: Option<f64>,
    /// `1 - burn_rate`; negative when overspent.
    pub budget_remaining: Option<f64>,
    /// Of `good` and `total`: good events assumed by a rule for the part of
    /// a young window before its first probe. 0 (and not shown) for measurements.
    #[serde(skip_serializing_if = "is_zero")]
    pub assumed_good: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Evaluates one SLO (`objective` as a fraction, e.g. `0.999`) over one window.
pub fn evaluate(good: u64, total: u64, objective: f64, window: Duration) -> SloWindow {
    let error_ratio = error_ratio(good, total);
    SloWindow {
        window_seconds: window.as_secs_f64(),
        good,
        total,
        sli: sli(good, total),
        error_ratio,
        burn_rate: error_ratio.map(|e| burn_rate(e, objective)),
        budget_remaining: error_ratio.map(|e| budget_remaining(e, objective)),
        assumed_good: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Window;
    use tokio::time::Instant;

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[track_caller]
    fn approx(got: Option<f64>, want: f64) {
        let got = got.expect("a value");
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn exactly_on_objective_burns_at_one() {
        // 999 of 1000 at 99.9 %: error 1/1000, budget 1/1000 → burn 1, none left.
        let w = evaluate(999, 1000, 0.999, FIVE_MIN);
        assert_eq!((w.good, w.total, w.window_seconds), (999, 1000, 300.0));
        approx(w.sli, 0.999);
        approx(w.error_ratio, 0.001);
        approx(w.burn_rate, 1.0);
        approx(w.budget_remaining, 0.0);
    }

    #[test]
    fn fast_burn_example() {
        // 144 bad of 10 000: error 0.0144; / 0.001 → burn 14.4, the classic
        // "2 % of a 30-day budget in an hour" page; budget overspent 13.4×.
        let w = evaluate(9856, 10_000, 0.999, Duration::from_secs(3600));
        approx(w.error_ratio, 0.0144);
        approx(w.burn_rate, 14.4);
        approx(w.budget_remaining, -13.4);
    }

    #[test]
    fn half_the_budget() {
        // 5 bad of 10 000 at 99.9 %: error 0.0005 → burn 0.5, half left.
        let w = evaluate(9995, 10_000, 0.999, FIVE_MIN);
        approx(w.burn_rate, 0.5);
        approx(w.budget_remaining, 0.5);
    }

    #[test]
    fn an_empty_window_has_no_ratios() {
        let w = evaluate(0, 0, 0.999, FIVE_MIN);
        assert_eq!(
            w,
            SloWindow {
                window_seconds: 300.0,
                good: 0,
                total: 0,
                sli: None,
                error_ratio: None,
                burn_rate: None,
                budget_remaining: None,
                assumed_good: 0,
            }
        );
        assert_eq!(sli(0, 0), None);
        assert_eq!(error_ratio(0, 0), None);
    }

    #[test]
    fn one_sample() {
        let ok = evaluate(1, 1, 0.999, FIVE_MIN);
        assert_eq!((ok.sli, ok.error_ratio), (Some(1.0), Some(0.0)));
        assert_eq!((ok.burn_rate, ok.budget_remaining), (Some(0.0), Some(1.0)));
        // One failure out of one: error 1, budget 0.001 → burn 1000.
        let bad = evaluate(0, 1, 0.999, FIVE_MIN);
        assert_eq!((bad.sli, bad.error_ratio), (Some(0.0), Some(1.0)));
        approx(bad.burn_rate, 1000.0);
        approx(bad.budget_remaining, -999.0);
    }

    #[test]
    fn all_bad() {
        // 50 of 50 bad at 95 %: error 1 / budget 0.05 → burn 20, -19 left.
        let w = evaluate(0, 50, 0.95, FIVE_MIN);
        approx(w.sli, 0.0);
        approx(w.error_ratio, 1.0);
        approx(w.burn_rate, 20.0);
        approx(w.budget_remaining, -19.0);
    }

    #[test]
    fn four_nines_survive_floating_point() {
        // 1 - 0.9999 is 0.00009999999999998899 in binary, not 1e-4: compare
        // with a tolerance. 1 bad of 10 000 → burn 1; 5 of 100 000 → 0.5.
        let w = evaluate(9999, 10_000, 0.9999, FIVE_MIN);
        approx(w.error_ratio, 0.0001);
        approx(w.burn_rate, 1.0);
        approx(w.budget_remaining, 0.0);
        let w = evaluate(99_995, 100_000, 0.9999, FIVE_MIN);
        approx(w.burn_rate, 0.5);
        approx(w.budget_remaining, 0.5);
        // 10 bad of 10 000 → 0.001 / 0.0001 → burn 10.
        approx(Some(burn_rate(0.001, 0.9999)), 10.0);
    }

    #[test]
    fn error_ratio_is_computed_from_the_bad_count() {
        assert_eq!(error_ratio(999, 1000), Some(0.001));
        assert_eq!(error_ratio(7, 5), Some(0.0)); // clamped, never negative
        assert_eq!(sli(7, 5), Some(1.0));
    }

    #[test]
    fn a_perfect_objective_has_no_budget() {
        assert_eq!(burn_rate(0.0, 1.0), 0.0);
        assert_eq!(burn_rate(0.01, 1.0), f64::INFINITY);
        assert_eq!(budget_remaining(0.01, 1.0), f64::NEG_INFINITY);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_sli_from_good_within() {
        // p95 < 200 ms as "95 % of probes succeed within 200 ms".
        let mut win = Window::new(
            Duration::from_secs(600),
            &[Duration::from_millis(200)],
            Instant::now(),
        );
        let now = Instant::now();
        // 90 fast, 6 slow but successful, 4 failures: 90 good of 100.
        for _ in 0..90 {
            win.record(now, true, Duration::from_millis(120));
        }
        for _ in 0..6 {
            win.record(now, true, Duration::from_millis(450));
        }
        for _ in 0..4 {
            win.record(now, false, Duration::from_millis(10));
        }
        let good = win.good_within(FIVE_MIN, now, 0);
        let total = win.counts(FIVE_MIN, now).total();
        assert_eq!((good, total), (90, 100));
        // sli 0.9, error 0.1, budget 0.05 → burn 2, budget overspent once.
        let w = evaluate(good, total, 0.95, FIVE_MIN);
        approx(w.sli, 0.9);
        approx(w.error_ratio, 0.1);
        approx(w.burn_rate, 2.0);
        approx(w.budget_remaining, -1.0);
    }
}
