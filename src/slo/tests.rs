//! SLO arithmetic and young-window tests.

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
    // 60 failures in 30 s, once spread evenly and once as a 3 s burst of
    // 20 % errors 20 s after start.
    let even = seconds(30, 100, |_| 2);
    let burst = seconds(30, 100, |s| if (20..23).contains(&s) { 20 } else { 0 });
    assert_eq!((even.bad(), burst.bad()), (60, 60));
    let bound = |s: &Spread| judge(s, 30_000 - 3000).1.unwrap().error_ratio_at_least;
    // In one batch it may be one event: the full window will absorb it.
    assert!(bound(&burst) < 0.0144, "{}", bound(&burst));
    assert!(bound(&burst) < bound(&even), "{}", bound(&even));
    assert!(error_rate_at_least(&burst) < error_rate_at_least(&even) / 2.0);
}

#[test]
fn two_batches_cannot_tell_a_burst_from_a_trend() {
    let two = seconds(19, 100, |_| 50);
    assert_eq!(two.batches, 2);
    assert_eq!(error_rate_at_least(&two), 0.0);
    assert!(error_rate_at_least(&seconds(30, 100, |_| 50)) > 0.4);
    // Nor can batches of a few probes: 10 per 10 s, every one failing.
    assert_eq!(error_rate_at_least(&seconds(60, 1, |_| 1)), 0.0);
    let one = seconds(9, 100, |_| 50);
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
