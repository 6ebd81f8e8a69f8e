//! Rule tests: hand-built observations, the state machine in paused time.

use super::*;
use crate::window::Window;
use tokio::time::advance;

const S: Duration = Duration::from_secs(1);

/// Two targets and one SLO; each test swaps in the condition it checks.
const BASE: &str = r#"
service: checkout
targets:
  - { name: health, url: "http://127.0.0.1:1/health", interval: 1s }
  - { name: analytics, url: "http://127.0.0.1:1/analytics", interval: 1s }
slos:
  - { name: availability, objective: 99.9 }
rules:
  - { name: r, when: { consecutive_failures: 1, target: health } }
"#;

fn config(when: Condition) -> Config {
    let mut c = crate::config::for_tests(BASE);
    c.rules[0].when = when;
    c
}

/// Two targets' windows plus consecutive failure counts.
struct Data {
    windows: Vec<Window>,
    consecutive: Vec<u32>,
    restarts: Option<u32>,
    /// When each target was first counted; None: long enough ago.
    first: [Option<Instant>; 2],
    now: Instant,
}

impl Data {
    fn new() -> Data {
        // Tests advance the paused clock by an hour first, so the windows
        // can start an hour back and take samples from the whole hour.
        let now = Instant::now();
        let start = now.checked_sub(3600 * S).unwrap_or(now);
        Data {
            windows: (0..2).map(|_| Window::new(3600 * S, &[], start)).collect(),
            consecutive: vec![0, 0],
            restarts: None,
            first: [None; 2],
            now,
        }
    }
    /// `n` samples on target `t`, spread evenly over the last `over`.
    fn add(&mut self, t: usize, n: u32, ok: bool, latency: Duration, over: Duration) {
        self.add_ago(t, n, ok, latency, over, Duration::ZERO);
    }
    /// `n` samples spread evenly over `over`, ending `ago` before now.
    fn add_ago(
        &mut self,
        t: usize,
        n: u32,
        ok: bool,
        latency: Duration,
        over: Duration,
        ago: Duration,
    ) {
        for i in 0..n {
            let at = self.now - ago - over + over * (i + 1) / n.max(1);
            self.windows[t].record(at, ok, latency);
            self.consecutive[t] = if ok { 0 } else { self.consecutive[t] + 1 };
        }
    }
}

impl Observations for Data {
    fn spread(&self, target: Option<usize>, span: Duration) -> Spread {
        let mut batches = crate::window::Batches::default();
        for t in target.map_or(0..2, |t| t..t + 1) {
            self.windows[t].add_batches(span, self.now, None, &mut batches);
        }
        batches.spread()
    }
    fn stats(&self, target: usize, span: Duration) -> Stats {
        self.windows[target].stats(span, self.now)
    }
    fn latency_spread(&self, target: usize, span: Duration, above: Duration) -> Spread {
        self.windows[target].latency_spread(span, self.now, above)
    }
    fn slo_spread(&self, _slo: usize, span: Duration) -> Spread {
        self.spread(None, span)
    }
    fn consecutive_failures(&self, target: usize) -> u32 {
        self.consecutive[target]
    }
    fn restarts(&self, _span: Duration, containers: &Containers) -> Option<u32> {
        // The sidecar restarted too: it must not count.
        let sidecar = self
            .restarts
            .map(|_| 5)
            .filter(|_| containers.counts("backstop"));
        self.restarts.map(|n| n + sidecar.unwrap_or(0))
    }
    fn last_failure(&self, _target: usize) -> Option<String> {
        Some("status 503, expected 2xx".into())
    }
    fn missing(&self, target: usize, span: Duration) -> u64 {
        // As the engine does it, with BASE's 1 s intervals.
        self.first[target].map_or(0, |first| {
            span.saturating_sub(self.now - first + S).as_secs()
        })
    }
}

fn verdict(when: Condition, data: &Data) -> Verdict {
    let c = config(when);
    assess(&c, &c.rules[0], data)
}

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn consecutive_failures_breach_at_the_threshold() {
    advance(3600 * S).await;
    let mut d = Data::new();
    let when = Condition::ConsecutiveFailures {
        target: 0,
        count: 3,
    };
    d.add(0, 2, false, MS, 2 * S);
    assert_eq!(verdict(when.clone(), &d).breached, Some(false));
    d.add(0, 1, false, MS, S);
    let v = verdict(when.clone(), &d);
    assert_eq!(v.breached, Some(true));
    assert_eq!(
        v.evidence.to_string(),
        "health: 3 consecutive failures (threshold 3), last: status 503, expected 2xx"
    );
    d.add(0, 1, true, MS, S);
    assert_eq!(verdict(when, &d).breached, Some(false));
}

#[tokio::test(start_paused = true)]
async fn error_rate_needs_min_samples_then_compares_strictly() {
    advance(3600 * S).await;
    let mut d = Data::new();
    let when = |min| Condition::ErrorRate {
        target: None,
        above: 0.05,
        window: 600 * S,
        min_samples: min,
    };
    // 2 bad of 20 = 10 %, but only 20 samples where 21 are needed.
    d.add(0, 18, true, MS, 300 * S);
    d.add(1, 2, false, MS, 10 * S);
    assert_eq!(verdict(when(21), &d).breached, None);
    let fired = verdict(when(20), &d);
    assert_eq!(fired.breached, Some(true));
    // Percentages as the configuration writes them: 5%, not 0.05 or 5.00%.
    assert_eq!(
        fired.evidence.to_string(),
        "all targets: error rate 10% over 10m (2 bad of 20), threshold 5%"
    );
    // 2 bad of 40 = exactly 5 %: not above.
    d.add(0, 20, true, MS, 200 * S);
    let v = verdict(when(21), &d);
    assert_eq!(v.breached, Some(false));
    match v.evidence {
        Evidence::ErrorRate {
            good,
            bad,
            error_ratio,
            ..
        } => {
            assert_eq!((good, bad), (38, 2));
            assert!((error_ratio.unwrap() - 0.05).abs() < 1e-12);
        }
        other => panic!("unexpected evidence {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn error_rate_of_one_target_ignores_the_other() {
    advance(3600 * S).await;
    let mut d = Data::new();
    d.add(0, 30, true, MS, 60 * S);
    d.add(1, 30, false, MS, 60 * S);
    let one = Condition::ErrorRate {
        target: Some(0),
        above: 0.05,
        window: 600 * S,
        min_samples: 10,
    };
    assert_eq!(verdict(one, &d).breached, Some(false));
}

#[tokio::test(start_paused = true)]
async fn burn_rate_needs_both_windows_above_the_factor() {
    advance(3600 * S).await;
    let mut d = Data::new();
    let when = Condition::BurnRate {
        slo: 0,
        short: 60 * S,
        long: 3600 * S,
        factor: 14.4,
        min_samples: 10,
    };
    // Long window: 2 bad of 1000 = 0.2 % → burn 2. Short window (1 min): all 30 bad.
    d.add_ago(0, 968, true, MS, 3000 * S, 100 * S);
    d.add_ago(0, 2, false, MS, 2000 * S, 100 * S);
    assert_eq!(
        verdict(when.clone(), &d).breached,
        None,
        "the short window is empty"
    );
    d.add(1, 30, false, MS, 30 * S);
    // Short: 30 bad of 30 → burn 1000; long: 32 of 1000 → 3.2 % → burn 32.
    let v = verdict(when.clone(), &d);
    assert_eq!(v.breached, Some(true));
    let Evidence::BurnRate { short, long, .. } = v.evidence else {
        panic!()
    };
    assert_eq!((short.total, long.total), (30, 1000));
    assert!((long.burn_rate.unwrap() - 32.0).abs() < 1e-9);
    // A short blip alone (long window clean) does not breach.
    let mut blip = Data::new();
    blip.add(0, 2000, true, MS, 3000 * S);
    blip.add(0, 10, false, MS, 10 * S);
    assert_eq!(verdict(when, &blip).breached, Some(false));
}

#[tokio::test(start_paused = true)]
async fn latency_percentile_above_threshold() {
    advance(3600 * S).await;
    let mut d = Data::new();
    let when = Condition::Latency {
        target: 1,
        percentile: 95.0,
        above: 200 * MS,
        window: 300 * S,
        min_samples: 20,
    };
    d.add(1, 19, true, 50 * MS, 60 * S);
    assert_eq!(
        verdict(when.clone(), &d).breached,
        None,
        "19 samples < min_samples 20"
    );
    d.add(1, 1, true, 900 * MS, S);
    // 20 samples: p95 = 19th value = 50 ms.
    assert_eq!(verdict(when.clone(), &d).breached, Some(false));
    d.add(1, 5, true, 900 * MS, S);
    // 25 samples, 6 slow: rank ceil(0.95·25) = 24 → slow.
    let v = verdict(when, &d);
    assert_eq!(v.breached, Some(true));
    let Evidence::Latency {
        value_seconds,
        samples,
        ..
    } = v.evidence
    else {
        panic!()
    };
    assert_eq!(samples, 25);
    assert!(
        (value_seconds.unwrap() - 0.9).abs() < 0.9 * 0.03,
        "{value_seconds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_failures_count_in_the_latency_percentile() {
    // Half the answers time out at 2 s: p99 is 2 s, whatever the others do.
    advance(3600 * S).await;
    let mut d = Data::new();
    d.add(1, 30, true, 20 * MS, 60 * S);
    d.add(1, 30, false, 2 * S, 30 * S);
    let when = Condition::Latency {
        target: 1,
        percentile: 99.0,
        above: 200 * MS,
        window: 300 * S,
        min_samples: 20,
    };
    let v = verdict(when, &d);
    assert_eq!(v.breached, Some(true), "{}", v.evidence);
    assert!(
        v.evidence
            .to_string()
            .starts_with("analytics: p99 2000ms over 5m (60 samples)"),
        "{}",
        v.evidence
    );
}

#[tokio::test(start_paused = true)]
async fn empty_windows_never_breach() {
    let d = Data::new();
    for when in [
        Condition::ErrorRate {
            target: None,
            above: 0.05,
            window: 60 * S,
            min_samples: 1,
        },
        Condition::BurnRate {
            slo: 0,
            short: 60 * S,
            long: 300 * S,
            factor: 1.0,
            min_samples: 1,
        },
        Condition::Latency {
            target: 0,
            percentile: 50.0,
            above: MS,
            window: 60 * S,
            min_samples: 1,
        },
    ] {
        assert_eq!(verdict(when, &d).breached, None);
    }
}

#[tokio::test(start_paused = true)]
async fn machine_waits_for_then_fires_then_resolves() {
    let mut m = Machine::new(Instant::now());
    let for_ = 60 * S;
    let t = |from, to| Some(Transition { from, to });
    assert_eq!(m.step(Some(false), for_, Instant::now()), None);
    assert_eq!(
        m.step(Some(true), for_, Instant::now()),
        t(State::Ok, State::Pending)
    );
    assert_eq!(m.deadline(for_), Some(Instant::now() + for_));
    advance(59 * S).await;
    assert_eq!(m.step(Some(true), for_, Instant::now()), None);
    advance(S).await;
    assert_eq!(
        m.step(Some(true), for_, Instant::now()),
        t(State::Pending, State::Firing)
    );
    assert_eq!(m.deadline(for_), None);
    // Missing data does not resolve a firing rule.
    assert_eq!(m.step(None, for_, Instant::now()), None);
    assert_eq!(
        m.step(Some(false), for_, Instant::now()),
        t(State::Firing, State::Ok)
    );
}

#[tokio::test(start_paused = true)]
async fn a_breach_that_clears_while_pending_restarts_the_clock() {
    let mut m = Machine::new(Instant::now());
    let for_ = 10 * S;
    m.step(Some(true), for_, Instant::now());
    advance(9 * S).await;
    assert_eq!(
        m.step(Some(false), for_, Instant::now()),
        Some(Transition {
            from: State::Pending,
            to: State::Ok
        })
    );
    m.step(Some(true), for_, Instant::now());
    advance(9 * S).await;
    assert_eq!(
        m.step(Some(true), for_, Instant::now()),
        None,
        "only 9 s into the new breach"
    );
    // Too little data while pending cannot confirm the breach.
    assert_eq!(
        m.step(None, for_, Instant::now()),
        Some(Transition {
            from: State::Pending,
            to: State::Ok
        })
    );
}

#[tokio::test(start_paused = true)]
async fn zero_for_fires_at_once() {
    let mut m = Machine::new(Instant::now());
    assert_eq!(
        m.step(Some(true), Duration::ZERO, Instant::now()),
        Some(Transition {
            from: State::Ok,
            to: State::Firing
        })
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_breach_above_the_threshold_once_pods_were_seen() {
    let mut d = Data::new();
    let when = Condition::Restarts {
        above: 3,
        window: 600 * S,
        containers: Containers::AllBut("backstop".into()),
    };
    assert_eq!(
        verdict(when.clone(), &d).breached,
        None,
        "pods not looked at yet"
    );
    d.restarts = Some(3);
    assert_eq!(verdict(when.clone(), &d).breached, Some(false));
    d.restarts = Some(4);
    let v = verdict(when, &d);
    assert_eq!(v.breached, Some(true));
    assert_eq!(
        v.evidence.to_string(),
        "4 container restarts (every container but backstop) of this revision's pods over 10m, threshold 3"
    );
}

/// `n` probes on target `t`, one a second up to now, the first counted
/// `n` seconds ago; `slow(i)` answers take 600 ms, the others 40 ms.
fn young(d: &mut Data, t: usize, n: u32, ok: impl Fn(u32) -> bool, slow: impl Fn(u32) -> bool) {
    d.first[t] = Some(d.now - (n - 1) * S);
    for i in 0..n {
        let latency = if slow(i) { 600 * MS } else { 40 * MS };
        d.windows[t].record(d.now - (n - 1 - i) * S, ok(i), latency);
    }
}

#[test]
fn decide_is_undecided_between_the_bound_and_what_was_seen() {
    assert_eq!(decide(Some(0.1), None, 0.05), Some(true));
    assert_eq!(decide(Some(0.05), None, 0.05), Some(false));
    assert_eq!(decide(Some(0.1), Some(0.06), 0.05), Some(true));
    assert_eq!(decide(Some(0.1), Some(0.04), 0.05), None);
    assert_eq!(decide(Some(0.04), Some(0.01), 0.05), Some(false));
    assert_eq!(decide(None, None, 0.05), None);
}

#[tokio::test(start_paused = true)]
async fn a_young_error_rate_says_what_it_has_seen_and_its_bound() {
    advance(3600 * S).await;
    let when = Condition::ErrorRate {
        target: Some(0),
        above: 0.05,
        window: 120 * S,
        min_samples: 21,
    };
    // 30 probes, every other one failing: 15 failures, more than the six a
    // full 2m window of 120 may hold. Probes are too few a batch to
    // extrapolate: the bound is what was seen, 15 of 120.
    let mut d = Data::new();
    young(&mut d, 0, 30, |i| i % 2 == 0, |_| false);
    let v = verdict(when.clone(), &d);
    assert_eq!(v.breached, Some(true), "{v:?}");
    let Evidence::ErrorRate { young: Some(y), .. } = &v.evidence else {
        panic!("{v:?}")
    };
    assert_eq!((y.seen, y.expected), (30, 120));
    assert_eq!(y.error_ratio_at_least, 15.0 / 120.0, "{y:?}");
    let text = v.evidence.to_string();
    assert!(
        text.starts_with("health: error rate 50% over 2m (15 bad of 30; young window, 30 of 120 expected probes seen: at least "),
        "{text}"
    );
    assert!(
        text.ends_with("% at 99% confidence), threshold 5%"),
        "{text}"
    );
    // Three failures of 30 are 10 %, but may be a blip: undecided.
    let mut d = Data::new();
    young(&mut d, 0, 30, |i| i % 10 != 0, |_| false);
    assert_eq!(verdict(when, &d).breached, None);
}

#[tokio::test(start_paused = true)]
async fn a_young_latency_window_is_judged_on_its_share_of_slow_answers() {
    advance(3600 * S).await;
    let when = Condition::Latency {
        target: 1,
        percentile: 95.0,
        above: 200 * MS,
        window: 300 * S,
        min_samples: 20,
    };
    // A cold start: the first 4 of 20 answers slow. p95 of what was seen is
    // slow, but 4 slow answers are not 5 % of the 300 a full window holds.
    let mut d = Data::new();
    young(&mut d, 1, 20, |_| true, |i| i < 4);
    let v = verdict(when.clone(), &d);
    assert_eq!(v.breached, None, "{}", v.evidence);
    assert!(
        v.evidence.to_string().contains("(20 samples; young window, 20 of 300 expected probes seen: at least 1.33% slower than 200ms at 99% confidence, limit 5%)"),
        "{}",
        v.evidence
    );
    // The same answers in a full window breach.
    d.first[1] = None;
    assert_eq!(verdict(when.clone(), &d).breached, Some(true));
    // Every answer slow, from the first: 20 of 300 are not yet 5 %, but
    // the rate of slow answers bounds the rest.
    let mut d = Data::new();
    young(&mut d, 1, 20, |_| true, |_| true);
    let v = verdict(when, &d);
    assert_eq!(v.breached, Some(true), "{}", v.evidence);
}
