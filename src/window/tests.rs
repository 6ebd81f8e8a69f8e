use std::time::Duration;

use tokio::time::{Instant, advance};

use super::{Counts, Histogram, Stats, Window};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn good(n: u64) -> Counts {
    Counts { good: n, bad: 0 }
}

/// Advances virtual time by one second, then records one good probe: after
/// `n` calls there are samples at start+1 s … start+n s and it is start+n s.
async fn one_per_second(w: &mut Window, n: u64, latency: Duration) {
    for _ in 0..n {
        advance(SEC).await;
        w.record(Instant::now(), true, latency);
    }
}

#[tokio::test(start_paused = true)]
async fn tiers_are_sized_to_the_horizon() {
    let t = Instant::now();
    let layout = |h| Window::new(h, &[], t).tiers().collect::<Vec<_>>();
    assert_eq!(layout(MIN), [(secs(1), 61)]);
    assert_eq!(layout(10 * MIN), [(secs(1), 120), (secs(10), 61)]);
    assert_eq!(layout(5 * MIN), [(secs(1), 120), (secs(10), 31)]);
    assert_eq!(
        layout(60 * MIN),
        [(secs(1), 120), (secs(10), 120), (secs(100), 37)]
    );
    assert_eq!(
        layout(360 * MIN),
        [
            (secs(1), 120),
            (secs(10), 120),
            (secs(100), 120),
            (secs(1000), 23)
        ]
    );
    assert_eq!(layout(Duration::ZERO), [(secs(1), 1)]);
}

#[tokio::test(start_paused = true)]
async fn counts_follow_time_with_the_partial_current_slot() {
    let mut w = Window::new(10 * MIN, &[], Instant::now());
    one_per_second(&mut w, 90, 10 * MS).await;
    // Now = 90 s. 60 one-second slots ending with the current one are
    // seconds 31..=90, holding the samples at 31 … 90: 60 of them.
    assert_eq!(w.counts(MIN, Instant::now()), good(60));
    // Half a second later the current slot is still second 90.
    advance(SEC / 2).await;
    assert_eq!(w.counts(MIN, Instant::now()), good(60));
    // At 91 s the window is 32..=91: sample 31 left, nothing new came.
    advance(SEC / 2).await;
    assert_eq!(w.counts(MIN, Instant::now()), good(59));
    // A 59.5 s span still needs ceil(59.5) = 60 slots.
    assert_eq!(w.counts(MIN - SEC / 2, Instant::now()), good(59));
    assert_eq!(w.counts(10 * SEC, Instant::now()), good(9));
    assert_eq!(w.counts(Duration::ZERO, Instant::now()), good(0));
}

#[tokio::test(start_paused = true)]
async fn longer_spans_use_ten_second_slots() {
    let mut w = Window::new(10 * MIN, &[], Instant::now());
    one_per_second(&mut w, 600, 10 * MS).await;
    // Now = 600 s. 120 s still fits tier 0: seconds 481..=600.
    assert_eq!(w.counts(2 * MIN, Instant::now()).good, 120);
    // 121 s does not: ceil(121/10) = 13 ten-second slots, epochs 48..=60,
    // i.e. seconds 480..610, holding samples 480 … 600.
    assert_eq!(w.counts(2 * MIN + SEC, Instant::now()).good, 121);
    // 5 m: 30 slots, epochs 31..=60 = seconds 310..610 → samples 310 … 600.
    // One-second slots would have given exactly 300.
    assert_eq!(w.counts(5 * MIN, Instant::now()).good, 291);
    // 10 m: 60 slots, seconds 10..610 → samples 10 … 600.
    assert_eq!(w.counts(10 * MIN, Instant::now()).good, 591);
    // Beyond the horizon: clamped to all 61 slots, seconds 0..610.
    assert_eq!(w.counts(60 * MIN, Instant::now()).good, 600);
}

#[tokio::test(start_paused = true)]
async fn samples_expire_after_the_span() {
    let mut w = Window::new(10 * MIN, &[], Instant::now());
    for _ in 0..10 {
        advance(SEC).await;
        w.record(Instant::now(), false, 800 * MS);
    }
    let bad = |n| Counts { good: 0, bad: n };
    // Samples at 1 … 10; now = 10.
    assert_eq!(w.counts(MIN, Instant::now()), bad(10));
    // At 69 s the span is seconds 10..=69: only the sample at 10 is left.
    advance(secs(59)).await;
    assert_eq!(w.counts(MIN, Instant::now()), bad(1));
    advance(SEC).await;
    assert_eq!(w.counts(MIN, Instant::now()), bad(0));
    // The 10 m span still sees all of them (10-second slots 0..=7).
    assert_eq!(w.counts(10 * MIN, Instant::now()), bad(10));
}

#[tokio::test(start_paused = true)]
async fn a_gap_longer_than_the_horizon_leaves_nothing_behind() {
    let mut w = Window::new(2 * MIN, &[200 * MS], Instant::now());
    // Tiers 120 × 1 s and 13 × 10 s.
    one_per_second(&mut w, 10, 100 * MS).await;
    // 1560 s is a multiple of both ring lengths (120 s and 130 s), so after
    // the gap every query lands on the very ring positions that still hold
    // the old samples: only their epochs tell them apart.
    advance(secs(1560)).await;
    let now = Instant::now();
    for span in [MIN, 2 * MIN, 10 * MIN] {
        assert_eq!(w.counts(span, now), Counts::default(), "{span:?}");
        assert_eq!(w.stats(span, now).latency.count(), 0);
        assert_eq!(w.good_within(span, now, 0), 0);
    }
    // A new sample reuses the stale slot and starts from zero.
    w.record(now, true, 300 * MS);
    let stats = w.stats(2 * MIN, now);
    assert_eq!(stats.counts, good(1));
    assert_eq!(stats.latency.percentile(50.0), Some(300 * MS));
    assert_eq!(w.good_within(2 * MIN, now, 0), 0);
}

#[tokio::test(start_paused = true)]
async fn a_young_window_answers_with_what_it_has() {
    let mut w = Window::new(10 * MIN, &[], Instant::now());
    for _ in 0..5 {
        w.record(Instant::now(), true, 10 * MS);
        advance(SEC).await;
    }
    // Samples at 0 … 4, now = 5.
    assert_eq!(w.counts(MIN, Instant::now()), good(5));
    assert_eq!(w.counts(10 * MIN, Instant::now()), good(5));
}

#[tokio::test(start_paused = true)]
async fn samples_before_start_count_into_the_first_slot() {
    let now = Instant::now();
    advance(secs(5)).await;
    let mut w = Window::new(MIN, &[], Instant::now());
    w.record(now, true, MS);
    assert_eq!(w.counts(SEC, Instant::now()), good(1));
}

#[tokio::test(start_paused = true)]
async fn late_samples_count_until_their_slot_is_reused() {
    let mut w = Window::new(MIN, &[], Instant::now());
    advance(secs(100)).await;
    let now = Instant::now();
    w.record(now, true, MS);
    // 30 s late: its slot (second 70 of a 61-slot ring) is free, it counts.
    w.record(now - secs(30), true, MS);
    assert_eq!(w.counts(MIN, now), good(2));
    // 61 s late: second 39 shares the ring position of second 100, which
    // holds newer data; the late sample is dropped.
    w.record(now - secs(61), true, MS);
    assert_eq!(w.counts(MIN, now), good(2));
}

#[tokio::test(start_paused = true)]
async fn good_within_is_exact_at_the_threshold() {
    let mut w = Window::new(10 * MIN, &[200 * MS, SEC], Instant::now());
    let now = Instant::now();
    for ms in [199, 200, 201, 1000, 2000] {
        w.record(now, true, ms * MS);
    }
    // A fast failure is still a failure: never "within".
    w.record(now, false, 50 * MS);
    w.record(now, true, 200 * MS + Duration::from_nanos(1));
    assert_eq!(w.good_within(MIN, now, 0), 2); // 199, 200
    assert_eq!(w.good_within(MIN, now, 1), 5); // + 200.000001, 201, 1000
    assert_eq!(w.good_within(10 * MIN, now, 1), 5);
    assert_eq!(w.counts(MIN, now), Counts { good: 6, bad: 1 });
    // The fast failure is in the latency distribution, at its 50 ms.
    assert_eq!(w.stats(MIN, now).latency.count(), 7);
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "threshold 1 of 1")]
async fn good_within_rejects_an_unknown_threshold() {
    let w = Window::new(MIN, &[SEC], Instant::now());
    w.good_within(MIN, Instant::now(), 1);
}

/// Exact nearest-rank percentile of a sorted sample.
fn exact(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64 / 100.0).ceil() as usize;
    sorted[rank.max(1) - 1]
}

fn assert_close(got: Option<Duration>, want: Duration, what: &str) {
    let got = got.expect(what).as_secs_f64();
    let want = want.as_secs_f64();
    let err = (got - want).abs() / want;
    assert!(
        err <= 0.03,
        "{what}: got {got}, want {want}, error {err:.4}"
    );
}

fn check_percentiles(mut sample: Vec<Duration>, name: &str) {
    let mut h = Histogram::default();
    for &d in &sample {
        h.record(d);
    }
    sample.sort();
    assert_eq!(h.count(), sample.len() as u64);
    for p in [50.0, 90.0, 95.0, 99.0] {
        assert_close(h.percentile(p), exact(&sample, p), &format!("{name} p{p}"));
    }
    assert_eq!(h.percentile(100.0), sample.last().copied(), "{name} p100");
    assert_eq!(
        h.percentile(0.001),
        sample.first().copied(),
        "{name} p0.001"
    );
}

#[test]
fn percentiles_are_within_three_percent() {
    // Uniform 1 … 1000 ms.
    check_percentiles((1..=1000).map(|i| i * MS).collect(), "uniform");
    // Exponential, mean 100 ms (inverse CDF at evenly spaced quantiles).
    let n = 10_000;
    let exp = (0..n)
        .map(|i| Duration::from_secs_f64(-0.1 * (1.0 - (i as f64 + 0.5) / n as f64).ln()))
        .collect();
    check_percentiles(exp, "exponential");
    // Long tail: 20 ms growing 0.1 % per sample up to ≈ 2.9 s.
    let tail = (0..5000)
        .map(|i| Duration::from_secs_f64(0.02 * 1.001f64.powi(i)))
        .collect();
    check_percentiles(tail, "geometric");
    // A constant latency comes back exactly (min and max pin it).
    check_percentiles(vec![200 * MS; 100], "constant");
    // Sub-millisecond and multi-minute latencies hit the under/overflow buckets.
    check_percentiles(
        vec![Duration::from_micros(7), 200 * MS, 300 * SEC],
        "extremes",
    );
}

#[test]
fn an_empty_histogram_has_no_percentiles() {
    let h = Histogram::default();
    assert_eq!(h.count(), 0);
    assert_eq!(h.percentile(50.0), None);
    assert_eq!(h.percentile(100.0), None);
    assert_eq!((h.min(), h.max()), (None, None));
}

#[tokio::test(start_paused = true)]
async fn stats_sum_the_histograms_of_the_span() {
    let mut w = Window::new(10 * MIN, &[], Instant::now());
    // 10 … 600 ms, one per second over ten minutes; a failure every 10 s.
    for i in 1..=600u64 {
        advance(SEC).await;
        w.record(
            Instant::now(),
            !i.is_multiple_of(10),
            Duration::from_millis(i),
        );
    }
    let now = Instant::now();
    let stats = w.stats(5 * MIN, now);
    // Seconds 310 … 600 (see longer_spans_use_ten_second_slots): 291
    // samples, 30 of them failures.
    assert_eq!(stats.counts, Counts { good: 261, bad: 30 });
    // Failures count at the time they took: 310 … 600 ms, p50 the 146th.
    assert_eq!(stats.latency.count(), 291);
    assert_close(stats.latency.percentile(50.0), 455 * MS, "window p50");
    assert_eq!(stats.latency.max(), Some(600 * MS));
    assert_eq!(w.counts(5 * MIN, now), stats.counts);
}

#[test]
fn counts_and_stats_aggregate() {
    let a = Counts { good: 3, bad: 1 };
    let mut b = Counts { good: 1, bad: 3 };
    assert_eq!(a + b, Counts { good: 4, bad: 4 });
    b += a;
    assert_eq!(b.total(), 8);
    assert_eq!(b.error_ratio(), Some(0.5));
    assert_eq!(Counts::default().error_ratio(), None);

    let mut s = Stats::default();
    let mut t = Stats {
        counts: Counts { good: 2, bad: 0 },
        latency: Histogram::default(),
    };
    t.latency.record(10 * MS);
    t.latency.record(30 * MS);
    s.merge(&t);
    s.merge(&t);
    assert_eq!(s.counts, Counts { good: 4, bad: 0 });
    assert_eq!(s.latency.count(), 4);
    assert_eq!(s.latency.min(), Some(10 * MS));
    assert_eq!(s.latency.max(), Some(30 * MS));
}

#[tokio::test(start_paused = true)]
async fn memory_is_fixed_at_construction() {
    let mut w = Window::new(10 * MIN, &[200 * MS], Instant::now());
    let before = w.memory_bytes();
    for i in 0..20_000u64 {
        advance(Duration::from_millis(97)).await;
        w.record(
            Instant::now(),
            !i.is_multiple_of(7),
            Duration::from_micros(i * 37),
        );
    }
    assert_eq!(w.memory_bytes(), before);
}

#[test]
fn documented_memory_per_target() {
    let full = |h| Window::new(h, &[200 * MS], Instant::now()).memory_bytes();
    let lean =
        |h| Window::with_latency_spans(h, &[5 * MIN], &[200 * MS], Instant::now()).memory_bytes();
    // Keep the table in the module doc in step with these.
    assert_eq!(full(5 * MIN), 162_604);
    assert_eq!(full(10 * MIN), 194_884);
    assert_eq!(full(60 * MIN), 298_236);
    assert_eq!(full(360 * MIN), 412_348);
    assert_eq!(lean(5 * MIN), 35_884);
    assert_eq!(lean(10 * MIN), 68_164);
    assert_eq!(lean(60 * MIN), 76_476);
    assert_eq!(lean(360 * MIN), 63_868);
}

/// Records the same probes, latencies spread over 1 … 997 ms with a failure
/// every 13th, into a window with every histogram and one keeping only
/// those for 5 m and 90 s queries.
async fn full_and_lean(horizon: Duration, seconds: u64) -> (Window, Window) {
    let start = Instant::now();
    let mut full = Window::new(horizon, &[200 * MS], start);
    let mut lean = Window::with_latency_spans(horizon, &[5 * MIN, 90 * SEC], &[200 * MS], start);
    for i in 1..=seconds {
        advance(SEC).await;
        let (ok, latency) = (
            !i.is_multiple_of(13),
            Duration::from_millis(i * 7919 % 997 + 1),
        );
        full.record(Instant::now(), ok, latency);
        lean.record(Instant::now(), ok, latency);
    }
    (full, lean)
}

#[tokio::test(start_paused = true)]
async fn lean_windows_answer_their_latency_spans_like_full_ones() {
    let (full, lean) = full_and_lean(60 * MIN, 5000).await;
    assert!(lean.memory_bytes() < full.memory_bytes() * 2 / 3);
    let now = Instant::now();
    for span in [90 * SEC, 5 * MIN] {
        let (a, b) = (full.stats(span, now), lean.stats(span, now));
        assert_eq!(a.counts, b.counts, "counts over {span:?}");
        assert_eq!(a.latency, b.latency, "latency over {span:?}");
        assert_eq!(
            b.latency.count(),
            b.counts.total(),
            "every probe over {span:?}"
        );
    }
    // Counts never depend on histograms.
    for span in [SEC, 10 * MIN, 60 * MIN] {
        assert_eq!(full.counts(span, now), lean.counts(span, now));
        assert_eq!(
            full.good_within(span, now, 0),
            lean.good_within(span, now, 0)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn lean_windows_answer_other_spans_from_a_coarser_tier() {
    let (full, lean) = full_and_lean(60 * MIN, 5000).await;
    let now = Instant::now();
    // 10 m is read from 10 s slots in full, from 100 s slots when lean:
    // between 500 and 600 s of samples, one a second, 1 in 13 failed.
    let (a, b) = (full.stats(10 * MIN, now), lean.stats(10 * MIN, now));
    assert_eq!(a.counts, b.counts);
    let n = b.latency.count();
    assert!((450..=600).contains(&n), "{n} latencies");
    // 1 h and longer: the coarsest tier, full in both.
    for span in [60 * MIN, 600 * MIN] {
        assert_eq!(full.stats(span, now).latency, lean.stats(span, now).latency);
    }
    // A span shorter than the declared ones: the 90 s ring serves it.
    assert_eq!(
        full.stats(10 * SEC, now).latency,
        lean.stats(10 * SEC, now).latency
    );
    // No ring on 1 s slots at all: the current 10 s slot answers.
    let mut coarse = Window::with_latency_spans(60 * MIN, &[5 * MIN], &[], now);
    coarse.record(now, true, 10 * MS);
    assert_eq!(coarse.stats(SEC, now).latency.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_late_sample_lands_in_its_own_histogram_slot() {
    let start = Instant::now();
    let mut w = Window::with_latency_spans(10 * MIN, &[5 * SEC], &[], start);
    advance(20 * SEC).await;
    w.record(Instant::now(), true, 10 * MS);
    // Started 3 s ago, finished now: still inside the 5 s the ring keeps.
    w.record(Instant::now() - 3 * SEC, true, 30 * MS);
    let stats = w.stats(5 * SEC, Instant::now());
    assert_eq!(stats.counts, good(2));
    assert_eq!(stats.latency.count(), 2);
    // 8 s late: older than the ring of five 1 s histograms; counted, not timed.
    w.record(Instant::now() - 8 * SEC, true, 50 * MS);
    assert_eq!(w.stats(5 * SEC, Instant::now()).latency.count(), 2);
    assert_eq!(w.counts(10 * SEC, Instant::now()), good(3));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_probe_counts_at_its_timeout() {
    // A 2.5 s endpoint behind a 1 s timeout: every probe fails at 1 s. The
    // percentiles say 1 s, not the latency of the rare fast answer.
    let mut w = Window::new(5 * MIN, &[200 * MS], Instant::now());
    for i in 0..100u64 {
        advance(SEC).await;
        let fast = i % 20 == 0;
        let latency = if fast { 46 * MS } else { SEC };
        w.record(Instant::now(), fast, latency);
    }
    let stats = w.stats(5 * MIN, Instant::now());
    assert_eq!(stats.latency.count(), 100);
    assert_close(stats.latency.percentile(95.0), SEC, "p95");
    // A failure is never good within a latency SLO's threshold, however fast.
    w.record(Instant::now(), false, MS);
    assert_eq!(w.good_within(5 * MIN, Instant::now(), 0), 5);
}

#[tokio::test(start_paused = true)]
async fn spreads_batch_ten_seconds_and_match_the_counts() {
    let mut w = Window::new(10 * MIN, &[200 * MS], Instant::now());
    // 40 s, one probe a second; seconds 20-22 fail, second 30 is slow.
    for i in 1..=40u64 {
        advance(SEC).await;
        let latency = if i == 30 { 300 * MS } else { 10 * MS };
        w.record(Instant::now(), !(20..=22).contains(&i), latency);
    }
    let now = Instant::now();
    for span in [MIN, 5 * MIN] {
        let s = w.spread(span, now, None);
        assert_eq!(s.counts(), w.counts(span, now), "{span:?}");
        // Seconds 1-9, 10-19, 20-29, 30-39 and 40: five batches.
        assert_eq!(s.batches, 5, "{span:?}");
        // The three failures share one batch: R = 3/40, and the batch that
        // holds them strays from it the most.
        let r: f64 = 3.0 / 40.0;
        let want =
            (9.0 * r).powi(2) + 2.0 * (10.0 * r).powi(2) + (3.0 - 10.0 * r).powi(2) + r.powi(2);
        assert!((s.residuals() - want).abs() < 1e-9, "{}", s.residuals());
    }
    // Within the 200 ms threshold: the slow second is not good either.
    let within = w.spread(MIN, now, Some(0));
    assert_eq!((within.good, within.total), (36, 40));
    // Slower than 200 ms: one answer, in the batch of seconds 30-39.
    let slow = w.latency_spread(MIN, now, 200 * MS);
    assert_eq!((slow.good, slow.total, slow.batches), (39, 40, 5));
}

#[tokio::test(start_paused = true)]
async fn batched_counts_slide_like_single_records_and_keep_thresholds_exact() {
    let t = Instant::now();
    let bounds = [
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::MAX,
    ];
    let mut w = Window::new(secs(10 * 60), &bounds, t);
    // One scrape: 500 requests, 40 failed; 300 within 100 ms, 480 within 500 ms.
    w.record_counts(t, 460, 40, &[300, 480, 500]);
    advance(secs(30)).await;
    let now = Instant::now();
    w.record_counts(now, 10, 0, &[10]);
    assert_eq!(w.counts(MIN, now), Counts { good: 470, bad: 40 });
    assert_eq!(w.good_within(MIN, now, 0), 310);
    assert_eq!(w.good_within(MIN, now, 1), 480);
    assert_eq!(w.good_within(MIN, now, 2), 500);
    // Past the first scrape's slot only the second remains, on every tier.
    advance(secs(45)).await;
    let now = Instant::now();
    assert_eq!(w.counts(MIN, now), Counts { good: 10, bad: 0 });
    assert_eq!(w.counts(secs(10 * 60), now), Counts { good: 470, bad: 40 });
    // Nothing went into the latency histograms.
    assert_eq!(w.stats(MIN, now).latency.count(), 0);
    // Counts beyond a slot's u32 saturate instead of wrapping.
    w.record_counts(now, u64::MAX, 0, &[]);
    assert_eq!(w.counts(SEC, now).good, u64::from(u32::MAX));
}
