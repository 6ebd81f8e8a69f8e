//! SLO arithmetic on good/total counts: SLI, error ratio, burn rate and
//! remaining error budget, and how a young window is judged. Pure functions
//! with no state; the counts come from [`crate::window`] (`Spread`s, whose
//! good is "good" for availability and "good within" for latency).
//!
//! Objectives are fractions in (0, 1) here (`0.999`); configuration speaks in
//! percent (`99.9`) and converts before calling.
//!
//! # Young windows
//! A window younger than its span (a new pod) has seen part of what a full
//! window will hold. It is judged on a lower bound of the error ratio the
//! full window will show: the failures already seen, plus the events still
//! to come at the lowest error rate the evidence supports with 99 %
//! confidence (one-sided), or at none while fewer than ten failures say
//! too little about how they spread. That rate is the Wilson score lower bound of
//! the ratio seen, over an effective number of events: failures that come
//! together within one 10 s batch may share one cause, so when batches
//! differ more than independent events would, the events count as fewer
//! (the design effect of cluster sampling), and the bound takes Student's
//! t for the number of batches instead of the normal quantile, as that
//! spread is itself estimated from few batches. A sustained failure
//! spreads over every batch and is caught as soon as its count makes it
//! plain; a burst fills one or two batches and weighs what it will weigh
//! in the full window. A full window is judged on its plain ratio.

use std::time::Duration;

use serde::Serialize;

use crate::window::Spread;

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

/// The one-sided confidence of the bound a young window is judged on.
pub const CONFIDENCE: f64 = 0.99;

/// How a young window is judged: the lower bound of the error ratio its
/// full window will show.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Young {
    /// Events seen so far.
    pub seen: u64,
    /// Events a full window is expected to hold.
    pub expected: u64,
    /// The one-sided confidence of the bounds.
    pub confidence: f64,
    /// The full window's error ratio will be at least this.
    pub error_ratio_at_least: f64,
    /// For an SLO: the burn rate that ratio means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burn_rate_at_least: Option<f64>,
}

impl Young {
    /// The words every surface uses for a young window, e.g. "young window,
    /// 2300 of 30000 expected requests seen".
    pub fn seen_of(&self, unit: &str) -> String {
        format!(
            "young window, {} of {} expected {unit} seen",
            self.seen, self.expected
        )
    }

    /// "at least X at 99% confidence".
    pub fn at_least(value: String) -> String {
        format!("at least {value} at {:.0}% confidence", CONFIDENCE * 100.0)
    }
}

/// The error ratio of a window, and for a young one (`missing` > 0: events
/// a full window would hold beyond those seen) its lower bound over the
/// full window. `None` for a window without events.
pub fn judge(spread: &Spread, missing: u64) -> (Option<f64>, Option<Young>) {
    let ratio = error_ratio(spread.good, spread.total);
    let young = (ratio.is_some() && missing > 0).then(|| {
        let rate = error_rate_at_least(spread);
        let expected = spread.total.saturating_add(missing);
        Young {
            seen: spread.total,
            expected,
            confidence: CONFIDENCE,
            error_ratio_at_least: (spread.bad() as f64 + rate * missing as f64) / expected as f64,
            burn_rate_at_least: None,
        }
    });
    (ratio, young)
}

/// Below this many failures their spread in time says too little: the
/// rate is not bounded (taken as 0), and a young window is judged on the
/// failures seen alone, as if every event still to come were good.
pub const MIN_FAILURES: u64 = 10;

/// The error rate that the events of `spread` show at least, at
/// [`CONFIDENCE`] (see the module docs). 0 with fewer than
/// [`MIN_FAILURES`] failures, or fewer than two batches: one batch cannot
/// tell a burst from a trend.
pub fn error_rate_at_least(spread: &Spread) -> f64 {
    let bad = spread.bad();
    if bad < MIN_FAILURES || spread.batches < 2 {
        return 0.0;
    }
    let n = spread.total as f64;
    let p = bad as f64 / n;
    let k = spread.batches as f64;
    // Variance of the ratio as independent events (known once the ratio
    // is: the normal quantile), and as k batches (estimated from them:
    // Student's t with k - 1 degrees of freedom). The larger one counts.
    let independent = p * (1.0 - p) / n;
    let batched = k / (k - 1.0) * spread.residuals() / (n * n);
    if batched > independent && independent > 0.0 {
        wilson_lower(
            p,
            n * independent / batched,
            t99(spread.effective_batches() - 1),
        )
    } else {
        wilson_lower(p, n, Z99)
    }
}

/// The normal quantile of a one-sided 99 % bound.
const Z99: f64 = 2.326_348;

/// Lower end of the Wilson score interval for a ratio `p` over `n` events
/// with quantile `z`.
fn wilson_lower(p: f64, n: f64, z: f64) -> f64 {
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

/// Student's t quantile for a one-sided 99 % bound with `df` degrees of
/// freedom: a table to 30, then the Cornish-Fisher expansion around the
/// normal quantile (within 0.001 of the exact value past 30).
fn t99(df: u64) -> f64 {
    // 2.718 is t at 11 degrees of freedom, not e.
    #[allow(clippy::approx_constant)]
    const TABLE: [f64; 30] = [
        31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896, 2.821, 2.764, 2.718, 2.681, 2.650,
        2.624, 2.602, 2.583, 2.567, 2.552, 2.539, 2.528, 2.518, 2.508, 2.500, 2.492, 2.485, 2.479,
        2.473, 2.467, 2.462, 2.457,
    ];
    const Z: f64 = Z99;
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df as usize - 1],
        _ => {
            let v = df as f64;
            let (z3, z5) = (Z.powi(3), Z.powi(5));
            Z + (z3 + Z) / (4.0 * v) + (5.0 * z5 + 16.0 * z3 + 3.0 * Z) / (96.0 * v * v)
        }
    }
}

/// Everything `/status`, the metrics and the rules show for one SLO over
/// one window, from [`evaluate`]. The ratios are `None` when the window
/// holds no events; they are what was seen. A young window also carries
/// the bound it is judged on.
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
    /// Set while the window is younger than its span: judged on this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub young: Option<Young>,
}

impl SloWindow {
    /// The burn rate the rules judge: the lower bound for a young window,
    /// the burn rate seen for a full one.
    pub fn judged_burn_rate(&self) -> Option<f64> {
        match self.young {
            Some(y) => y.burn_rate_at_least,
            None => self.burn_rate,
        }
    }
}

/// Evaluates one SLO (`objective` as a fraction, e.g. `0.999`) over one
/// window; `missing` as for [`judge`]. The one function behind every SLO
/// number backstop shows or acts on.
pub fn evaluate(spread: &Spread, missing: u64, objective: f64, window: Duration) -> SloWindow {
    let (error_ratio, young) = judge(spread, missing);
    let (good, total) = (spread.good, spread.total);
    SloWindow {
        window_seconds: window.as_secs_f64(),
        good,
        total,
        sli: sli(good, total),
        error_ratio,
        burn_rate: error_ratio.map(|e| burn_rate(e, objective)),
        budget_remaining: error_ratio.map(|e| budget_remaining(e, objective)),
        young: young.map(|y| Young {
            burn_rate_at_least: Some(burn_rate(y.error_ratio_at_least, objective)),
            ..y
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Window;
    use tokio::time::Instant;

    const FIVE_MIN: Duration = Duration::from_secs(300);

    /// A full window of `total` events, `good` of them good.
    fn full(good: u64, total: u64, objective: f64, window: Duration) -> SloWindow {
        let mut spread = Spread::default();
        spread.add_batch(good, total);
        evaluate(&spread, 0, objective, window)
    }

    /// Seconds of `per_sec` events, `bad_at(second)` of them bad each
    /// second, in 10 s batches.
    fn seconds(secs: u64, per_sec: u64, bad_at: impl Fn(u64) -> u64) -> Spread {
        let mut spread = Spread::default();
        for batch in 0..secs.div_ceil(10) {
            let range = batch * 10..((batch + 1) * 10).min(secs);
            let bad: u64 = range.clone().map(&bad_at).sum();
            let total = per_sec * (range.end - range.start);
            spread.add_batch(total - bad, total);
        }
        spread
    }

    #[track_caller]
    fn approx(got: Option<f64>, want: f64) {
        let got = got.expect("a value");
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn exactly_on_objective_burns_at_one() {
        // 999 of 1000 at 99.9 %: error 1/1000, budget 1/1000 → burn 1, none left.
        let w = full(999, 1000, 0.999, FIVE_MIN);
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
        let w = full(9856, 10_000, 0.999, Duration::from_secs(3600));
        approx(w.error_ratio, 0.0144);
        approx(w.burn_rate, 14.4);
        approx(w.budget_remaining, -13.4);
    }

    #[test]
    fn half_the_budget() {
        // 5 bad of 10 000 at 99.9 %: error 0.0005 → burn 0.5, half left.
        let w = full(9995, 10_000, 0.999, FIVE_MIN);
        approx(w.burn_rate, 0.5);
        approx(w.budget_remaining, 0.5);
    }

    #[test]
    fn an_empty_window_has_no_ratios() {
        let w = full(0, 0, 0.999, FIVE_MIN);
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
                young: None,
            }
        );
        assert_eq!(sli(0, 0), None);
        assert_eq!(error_ratio(0, 0), None);
    }

    #[test]
    fn one_sample() {
        let ok = full(1, 1, 0.999, FIVE_MIN);
        assert_eq!((ok.sli, ok.error_ratio), (Some(1.0), Some(0.0)));
        assert_eq!((ok.burn_rate, ok.budget_remaining), (Some(0.0), Some(1.0)));
        // One failure out of one: error 1, budget 0.001 → burn 1000.
        let bad = full(0, 1, 0.999, FIVE_MIN);
        assert_eq!((bad.sli, bad.error_ratio), (Some(0.0), Some(1.0)));
        approx(bad.burn_rate, 1000.0);
        approx(bad.budget_remaining, -999.0);
    }

    #[test]
    fn all_bad() {
        // 50 of 50 bad at 95 %: error 1 / budget 0.05 → burn 20, -19 left.
        let w = full(0, 50, 0.95, FIVE_MIN);
        approx(w.sli, 0.0);
        approx(w.error_ratio, 1.0);
        approx(w.burn_rate, 20.0);
        approx(w.budget_remaining, -19.0);
    }

    #[test]
    fn four_nines_survive_floating_point() {
        // 1 - 0.9999 is 0.00009999999999998899 in binary, not 1e-4: compare
        // with a tolerance. 1 bad of 10 000 → burn 1; 5 of 100 000 → 0.5.
        let w = full(9999, 10_000, 0.9999, FIVE_MIN);
        approx(w.error_ratio, 0.0001);
        approx(w.burn_rate, 1.0);
        approx(w.budget_remaining, 0.0);
        let w = full(99_995, 100_000, 0.9999, FIVE_MIN);
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

    #[test]
    fn quantiles_match_published_values() {
        // Wilson 95 % two-sided (z = 1.96) for 50 of 100: 0.4038.
        assert!((wilson_lower(0.5, 100.0, 1.96) - 0.4038).abs() < 1e-4);
        // Student's t at 99 %: tabled to 30, expanded past it.
        assert_eq!(t99(1), 31.821);
        assert_eq!(t99(30), 2.457);
        for (df, exact) in [(40, 2.423), (60, 2.390), (120, 2.358)] {
            assert!((t99(df) - exact).abs() < 1e-3, "t99({df}) = {}", t99(df));
        }
        assert_eq!(t99(0), f64::INFINITY);
    }

    #[test]
    fn a_full_window_is_judged_on_what_it_holds() {
        let (ratio, young) = judge(&seconds(300, 100, |_| 2), 0);
        assert_eq!(young, None);
        assert!((ratio.unwrap() - 0.02).abs() < 1e-12);
    }

    #[test]
    fn a_sustained_failure_is_plain_in_a_young_window() {
        // 100 events a second, 2 of them bad, for 50 s of a 5 m window:
        // 100 of 5000. The full window (30 000) will show at least 1.48 %,
        // past 14.4 × 0.1 % = 1.44 %.
        let spread = seconds(50, 100, |_| 2);
        let (_, young) = judge(&spread, 25_000);
        let young = young.expect("young");
        assert_eq!((young.seen, young.expected), (5000, 30_000));
        assert!(
            young.error_ratio_at_least > 0.0144 && young.error_ratio_at_least < 0.02,
            "{young:?}"
        );
        let w = evaluate(&spread, 25_000, 0.999, FIVE_MIN);
        approx(w.burn_rate, 20.0);
        assert_eq!(w.judged_burn_rate(), w.young.unwrap().burn_rate_at_least);
        assert!(w.judged_burn_rate().unwrap() > 14.4);
    }

    #[test]
    fn a_burst_weighs_what_it_will_weigh_in_the_full_window() {
        // The same 2.6 % over 23 s, once spread evenly and once as a 3 s
        // burst of 20 % errors 20 s after start.
        let even = seconds(23, 100, |s| if s % 5 < 3 && s < 22 { 3 } else { 2 });
        let burst = seconds(23, 100, |s| if s >= 20 { 20 } else { 0 });
        assert_eq!((even.bad(), burst.bad()), (60, 60));
        let bound = |s: &Spread| judge(s, 30_000 - 2300).1.unwrap().error_ratio_at_least;
        // In one batch it may be one event: the full window will absorb it.
        assert!(bound(&burst) < 0.0144, "{}", bound(&burst));
        assert!(bound(&burst) < bound(&even), "{}", bound(&even));
        assert!(error_rate_at_least(&burst) < error_rate_at_least(&even) / 2.0);
    }

    #[test]
    fn one_batch_cannot_tell_a_burst_from_a_trend() {
        let one = seconds(9, 100, |_| 50);
        assert_eq!(one.batches, 1);
        assert_eq!(error_rate_at_least(&one), 0.0);
        // Then only the failures seen count: 450 of 30 000.
        let (_, young) = judge(&one, 30_000 - 900);
        assert!((young.unwrap().error_ratio_at_least - 450.0 / 30_000.0).abs() < 1e-12);
        assert_eq!(judge(&Spread::default(), 100), (None, None));
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
        let w = full(good, total, 0.95, FIVE_MIN);
        approx(w.sli, 0.9);
        approx(w.error_ratio, 0.1);
        approx(w.burn_rate, 2.0);
        approx(w.budget_remaining, -1.0);
    }
}
