//! A new pod decides on evidence: virtual-time runs of the engine from a
//! pod's first request, one sample per request, for the situations the
//! young-window judgement (`crate::slo`) must get right.

use super::*;
use crate::probe::Reason;

const S: Duration = Duration::from_secs(1);

/// One target `orders` sampled every `interval` (a request rate), a
/// 99.9 % availability SLO over it, and the given rules.
fn engine(interval: Duration, rules: &str) -> Engine {
    engine_with(interval, rules, Telemetry::detached())
}

fn engine_with(interval: Duration, rules: &str, telemetry: Telemetry) -> Engine {
    let yaml = format!(
        r#"
service: checkout
targets:
  - {{ name: orders, url: "http://127.0.0.1:1/orders", interval: 1s }}
slos:
  - {{ name: availability, objective: 99.9 }}
rollback: {{ webhook: {{ url: "http://127.0.0.1:1/rollback" }} }}
rules: {rules}
"#
    );
    let mut c = crate::config::for_tests(&yaml);
    // Faster than any probe may run: these samples stand for requests.
    c.targets[0].interval = interval;
    Engine::new(Arc::new(c), telemetry, Instant::now())
}

const FAST_BURN: &str = "{ name: fast-burn, when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4 } }, do: [rollback] }";
const ERROR_RATE: &str =
    "{ name: error-rate, when: { error_rate: { above: 5%, window: 2m } }, do: [rollback] }";

/// xorshift64*: a seeded source of failures, so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (x as f64) < p * (1u64 << 53) as f64
    }
}

/// Runs `secs` seconds of requests every `interval`, request `i` (at `t`
/// seconds) failing when `fails(i, t)` says so, evaluating as the daemon
/// does (after each sample, and a tick each second). Returns the rules
/// that fired, with when (seconds from the first request).
fn run(
    e: &mut Engine,
    interval: Duration,
    secs: u64,
    mut fails: impl FnMut(u64, f64) -> bool,
) -> Vec<(String, f64)> {
    let start = e.started;
    let mut fired = Vec::new();
    let mut note = |e: &Engine, d: Vec<Decision>, at: Instant| {
        for d in d.iter().filter(|d| d.kind == DecisionKind::Fired) {
            let name = e.config.rules[d.rule].name.clone();
            fired.push((name, (at - start).as_secs_f64()));
        }
    };
    let n = (secs as u128 * 1_000_000_000 / interval.as_nanos()) as u64;
    let mut next_tick = S;
    for i in 0..n {
        let since = interval * i as u32;
        let at = start + since;
        while next_tick <= since {
            let d = e.evaluate(start + next_tick, Scope::Tick);
            note(e, d, start + next_tick);
            next_tick += S;
        }
        let ok = !fails(i, since.as_secs_f64());
        let outcome = if ok {
            Outcome::Success { status: 200 }
        } else {
            Outcome::Failure {
                reason: Reason::Status,
                detail: "status 503, expected 2xx".into(),
            }
        };
        let sample = Sample {
            generation: 0,
            target: 0,
            at,
            latency: Duration::from_millis(20),
            outcome,
            counted: true,
            scraped: None,
        };
        e.record(&sample);
        let d = e.evaluate(at, Scope::Target(0));
        note(e, d, at);
    }
    fired
}

fn first(fired: &[(String, f64)], rule: &str) -> Option<f64> {
    fired.iter().find(|(r, _)| r == rule).map(|(_, t)| *t)
}

const SEEDS: [u64; 10] = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89];

#[test]
fn a_fast_burn_at_100_requests_a_second_rolls_back_within_70s() {
    // 2 % failing against 14.4 × 0.1 %: a full 5 m window fires when its
    // errors pass 1.44 %, which after a healthy past takes 216 s.
    let interval = Duration::from_millis(10);
    let mut e = engine(interval, &format!("[{FAST_BURN}]"));
    let fired = run(&mut e, interval, 120, |i, _| i % 50 == 49);
    let steady = first(&fired, "fast-burn").expect("fast-burn fires");
    // Failures at random: the ratio seen wanders around 2 %, and so does
    // the time it takes to be sure.
    let mut random = Vec::new();
    for seed in SEEDS {
        let mut e = engine(interval, &format!("[{FAST_BURN}]"));
        let mut rng = Rng(seed);
        let fired = run(&mut e, interval, 120, |_, _| rng.chance(0.02));
        random.push(first(&fired, "fast-burn").expect("fast-burn fires"));
    }
    eprintln!("fast burn fired after {steady} s (every 50th failing), {random:?} s (at random)");
    assert!(steady < 70.0, "{steady}");
    let late = random.iter().filter(|t| **t >= 70.0).count();
    assert!(late <= 1, "{random:?}");
}

#[test]
fn a_route_failing_8_percent_rolls_back_within_45s() {
    let interval = Duration::from_millis(40);
    let mut e = engine(interval, &format!("[{ERROR_RATE}]"));
    let fired = run(&mut e, interval, 120, |i, _| i % 25 < 2);
    let steady = first(&fired, "error-rate").expect("error-rate fires");
    assert!(steady < 45.0, "{steady}");
    let mut times = Vec::new();
    for seed in SEEDS {
        let mut e = engine(interval, &format!("[{ERROR_RATE}]"));
        let mut rng = Rng(seed);
        let fired = run(&mut e, interval, 120, |_, _| rng.chance(0.08));
        times.push(first(&fired, "error-rate").expect("error-rate fires"));
    }
    eprintln!("8 % errors fired after {steady} s (2 of every 25), {times:?} s (at random)");
    assert!(times.iter().all(|t| *t < 45.0), "{times:?}");
}

#[test]
fn a_3s_burst_of_20_percent_errors_after_20s_fires_nothing() {
    for interval in [Duration::from_millis(10), Duration::from_millis(40)] {
        for seed in SEEDS {
            let mut e = engine(interval, &format!("[{FAST_BURN}, {ERROR_RATE}]"));
            let mut rng = Rng(seed);
            let burst = |t: f64| (20.0..23.0).contains(&t);
            let fired = run(&mut e, interval, 600, |_, t| {
                rng.chance(if burst(t) { 0.2 } else { 0.0 })
            });
            assert_eq!(fired, vec![], "{interval:?}, seed {seed}");
        }
    }
}

#[test]
fn one_failure_among_few_requests_fires_nothing() {
    for secs in [2, 3, 5] {
        let interval = secs * S;
        for failing in [0, 1, 5, 20] {
            let mut e = engine(interval, &format!("[{FAST_BURN}, {ERROR_RATE}]"));
            let fired = run(&mut e, interval, 600, |i, _| i == failing);
            assert_eq!(
                fired,
                vec![],
                "one request every {secs} s, #{failing} failing"
            );
        }
    }
}

/// Probes once a second against `error_rate` 5 % over 2m, `fails(i)`
/// saying which probe fails: when the rule fires, and when it fired before
/// young windows were judged on a bound (the missing past taken as good:
/// failures over the probes a full window holds, read from the same
/// evidence).
fn probes(fails: impl Fn(u64) -> bool) -> (Option<u64>, Option<u64>) {
    let mut e = engine(S, &format!("[{ERROR_RATE}]"));
    let start = Instant::now();
    let (mut now_fires, mut padded_fires) = (None, None);
    for i in 0..180u64 {
        let at = start + S * i as u32;
        let mut sample = sample_at(at, !fails(i));
        sample.latency = Duration::from_millis(20);
        e.record(&sample);
        if !e.evaluate(at, Scope::Target(0)).is_empty() {
            now_fires.get_or_insert(i);
        }
        let Some(Evidence::ErrorRate {
            bad,
            good,
            young,
            min_samples,
            ..
        }) = e.status(at).rules[0].evidence.clone()
        else {
            panic!("error rate evidence")
        };
        let all = young.map_or(good + bad, |y| y.expected);
        if good + bad >= min_samples && bad as f64 > 0.05 * all as f64 {
            padded_fires.get_or_insert(i);
        }
    }
    (now_fires, padded_fires)
}

fn sample_at(at: Instant, ok: bool) -> Sample {
    Sample {
        generation: 0,
        target: 0,
        at,
        latency: Duration::from_millis(20),
        outcome: if ok {
            Outcome::Success { status: 200 }
        } else {
            Outcome::Failure {
                reason: Reason::Status,
                detail: "status 503, expected 2xx".into(),
            }
        },
        counted: true,
        scraped: None,
    }
}

#[test]
fn probes_failing_10_percent_are_caught_no_later_than_with_a_good_past() {
    let (now, before) = probes(|i| i % 10 == 9);
    eprintln!(
        "10 % probe errors: fired after {now:?} s, {before:?} s taking the missing past as good"
    );
    // The 7th failure: 7 of 120 > 5 %. Seven failures are too few to
    // bound the rate, so the bound is the same.
    assert_eq!((now, before), (Some(69), Some(69)));
}

#[test]
fn a_five_probe_outage_in_a_new_pod_fires_nothing() {
    // 5 of the first 25 probes fail: 4.2 % of the 120 a full window holds.
    for from in 0..100 {
        let (now, before) = probes(|i| (from..from + 5).contains(&i));
        assert_eq!((now, before), (None, None), "failing from {from} s");
    }
}

#[test]
fn metrics_status_and_evidence_show_the_same_numbers() {
    // 90 s of 2 % errors at 100 requests a second: the 1m window is full,
    // the 5m one young.
    let registry = crate::telemetry::Registry::new();
    let telemetry = Telemetry::register(&registry, crate::telemetry::Emitter::none());
    let interval = Duration::from_millis(10);
    let mut e = engine_with(interval, &format!("[{FAST_BURN}]"), telemetry);
    let fired = run(&mut e, interval, 90, |i, _| i % 50 == 49);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let now = e.started + 90 * S - interval;
    e.evaluate(now, Scope::Tick);
    e.publish_slos(now);
    let status = e.status(now);
    let Some(Evidence::BurnRate { short, long, .. }) = status.rules[0].evidence.clone() else {
        panic!("burn-rate evidence")
    };
    assert_eq!(status.slos[0].windows, vec![short, long]);
    assert_eq!(short.young, None);
    let young = long.young.expect("the 5m window is young");
    assert_eq!(young.seen, 9000);
    let text = registry.encode();
    let metric = |name: &str, window: &str| -> f64 {
        let key = format!("{name}{{slo=\"availability\",window=\"{window}\"}} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("{key} in\n{text}"));
        line[key.len()..].parse().expect("a number")
    };
    for (w, window) in [(short, "1m"), (long, "5m")] {
        assert_eq!(
            metric("backstop_slo_burn_rate", window),
            w.burn_rate.unwrap()
        );
        assert_eq!(metric("backstop_slo_sli_ratio", window), w.sli.unwrap());
        assert_eq!(
            metric("backstop_slo_burn_rate_at_least", window),
            w.judged_burn_rate().unwrap()
        );
        assert_eq!(
            metric("backstop_slo_window_young", window),
            f64::from(u8::from(w.young.is_some()))
        );
    }
    // The same words: /status's summary is the evidence's sentence.
    let summary = status.rules[0].summary.clone().unwrap();
    let phrase = format!(
        "20.00 over 5m (young window, 9000 of 30000 expected probes seen: at least {:.2} at 99% confidence)",
        young.burn_rate_at_least.unwrap()
    );
    assert!(summary.contains(&phrase), "{summary}\n{phrase}");
    assert!(summary.contains("20.00 over 1m and"), "{summary}");
}
