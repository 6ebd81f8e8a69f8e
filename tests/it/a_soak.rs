//! Soak in real time: the whole daemon against the sample app answering
//! like a real service (jittered latency, slow queries, rare errors, a cold
//! start, one 3 s outage), with the runbook's rules, a rollback webhook and
//! a strict fake PagerDuty. A good release must be neither rolled back nor
//! paged for `BACKSTOP_SOAK_SECS` (default 120); bad releases must be, no
//! later than their rule's arithmetic says over the probes the daemon
//! reported, plus a tick.
//!
//! The crash loop needs the Kubernetes fake: `a_crash_loop_rolls_back` in
//! `kubernetes` rolls one back for real, and the virtual-time soak
//! (src/engine/soak) checks when.

use crate::common::Daemon;
use crate::common::fake_pagerduty::FakePagerDuty;
use backstop::Event;
use backstop::demo::app::{Behaviour, Noise};
use backstop::probe::Outcome;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, sleep};

const S: Duration = Duration::from_secs(1);
/// The daemon's rule tick, plus room for the HTTP call that follows.
const SLACK: Duration = Duration::from_millis(1500);

/// The probed endpoints and their intervals (timeouts are the intervals).
const TARGETS: [(&str, &str, u64); 4] = [
    ("health", "/health", 100),
    ("ready", "/ready", 500),
    ("analytics-executive", "/api/v1/analytics/executive", 500),
    ("analytics-operations", "/api/v1/analytics/operations", 500),
];

/// Analytics around 40 ms (p95 ≈ 90 ms), 1 % slow queries of 150 ms,
/// 0.05 % errors, answers up to 400 ms slower while cold.
const GOOD: Noise = Noise {
    error_rate: 0.0005,
    latency: Duration::from_millis(40),
    jitter: 0.5,
    spike_rate: 0.01,
    spike: Duration::from_millis(150),
    cold: Duration::from_millis(400),
    cold_half_life: S,
    seed: 20,
};

/// Warm from the start (after an outage, or for a fault switched on).
const WARM: Noise = Noise {
    cold: Duration::ZERO,
    seed: 21,
    ..GOOD
};

fn config(pd: &FakePagerDuty, key: &std::path::Path) -> String {
    let targets: String = TARGETS
        .iter()
        .map(|(name, path, ms)| {
            format!(
                "  - {{ name: {name}, url: \"{{app}}{path}\", interval: {ms}ms, warmup: 10s }}\n"
            )
        })
        .collect();
    format!(
        r#"
service: checkout
targets:
{targets}slos:
  - {{ name: availability, objective: 99.9 }}
  - name: analytics-latency
    objective: 95
    latency_threshold: 200ms
    targets: [analytics-executive, analytics-operations]
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    for: 30s
    do: [rollback, page]
  - name: fast-burn
    when: {{ burn_rate: {{ slo: availability, short: 1m, long: 5m, factor: 14.4 }} }}
    do: [rollback, page]
  - name: slow-burn
    when: {{ burn_rate: {{ slo: availability, short: 30m, long: 6h, factor: 6 }} }}
    do: [page]
  - name: error-rate
    when: {{ error_rate: {{ above: "5%", window: 10m, min_samples: 30 }} }}
    do: [page]
  - name: slow-analytics
    when: {{ latency: {{ target: analytics-executive, percentile: 95, above: 200ms, window: 5m }} }}
    for: 1m
    do: [page]
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}" }}
"#,
        key.display(),
        pd.url
    )
}

/// Everything the daemon reported, with when the test saw it.
#[derive(Clone, Default)]
struct Log {
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    lost: Arc<AtomicU64>,
}

impl Log {
    fn take(&self) -> Vec<(Instant, Event)> {
        let lost = self.lost.load(Ordering::Relaxed);
        assert_eq!(lost, 0, "the test lost {lost} daemon events");
        self.events.lock().unwrap().clone()
    }

    /// When each counted probe of `target` (any, when None) that `pred`
    /// accepts was reported, from `since` on.
    fn probes(
        &self,
        target: Option<&str>,
        since: Instant,
        pred: impl Fn(&Outcome, Duration) -> bool,
    ) -> Vec<Instant> {
        self.take()
            .into_iter()
            .filter_map(|(at, e)| match e {
                Event::Probe {
                    target: t,
                    outcome,
                    latency,
                    counted: true,
                } if at >= since && target.is_none_or(|x| x == t) && pred(&outcome, latency) => {
                    Some(at)
                }
                _ => None,
            })
            .collect()
    }
}

struct Run {
    pd: FakePagerDuty,
    s: Daemon,
    log: Log,
    _key: tempfile::NamedTempFile,
}

/// The daemon guarding "v2", and the app starting it: not listening for
/// 2 s, then serving v2 cold.
async fn deploy() -> Run {
    backstop::init_tls();
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let s = Daemon::with_app(&config(&pd, key.path())).await;
    // No probe has run yet: this runtime has not yielded since the start.
    s.app().refuse(true).await.unwrap();
    let log = Log::default();
    let mut events = s.running.events();
    let sink = log.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => sink.events.lock().unwrap().push((Instant::now(), e)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    sink.lost.fetch_add(n, Ordering::Relaxed);
                }
                Err(_) => return,
            }
        }
    });
    sleep(2 * S).await;
    s.app().refuse(false).await.unwrap();
    s.app().deploy("v2", Behaviour::Noisy(GOOD));
    Run {
        pd,
        s,
        log,
        _key: key,
    }
}

fn soak_duration() -> Duration {
    match std::env::var("BACKSTOP_SOAK_SECS") {
        Err(_) => Duration::from_secs(120),
        Ok(v) => Duration::from_secs(v.parse().unwrap_or_else(|_| {
            panic!("BACKSTOP_SOAK_SECS must be a whole number of seconds, got {v:?}")
        })),
    }
}

#[tokio::test]
async fn a_noisy_good_release_is_never_rolled_back_or_paged() {
    let length = soak_duration();
    let t0 = Instant::now();
    let run = deploy().await;
    // One total outage halfway: every request hangs for 3 s.
    sleep((t0 + length / 2).saturating_duration_since(Instant::now())).await;
    run.s.app().set(Behaviour::Hang);
    sleep(3 * S).await;
    run.s.app().set(Behaviour::Noisy(WARM));
    sleep((t0 + length).saturating_duration_since(Instant::now())).await;

    let events = run.log.take();
    let probes = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Probe { .. }))
        .count();
    let counted = run.log.probes(None, t0, |_, _| true).len();
    let failed = run.log.probes(None, t0, |o, _| !o.is_success()).len();
    let transitions: Vec<String> = events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Transition { rule, to, .. } => {
                Some(format!("{:.1}s {rule} → {to:?}", (*at - t0).as_secs_f64()))
            }
            _ => None,
        })
        .collect();
    eprintln!(
        "soak: {:.0}s, {probes} probes ({counted} counted, {failed} of them failed), transitions {transitions:?}",
        (Instant::now() - t0).as_secs_f64()
    );
    assert!(run.s.app().rollbacks().is_empty(), "{transitions:?}");
    assert!(run.pd.seen().is_empty(), "{:#?}", run.pd.seen());
    assert!(
        !transitions.iter().any(|t| t.ends_with("Firing")),
        "{transitions:?}"
    );
    // The noise was there: the outage and the cold start failed probes.
    assert!(failed >= 30, "only {failed} failed probes");
    run.s.shutdown().await;
}

/// The instant the `n`-th of `times` happened (1-based).
fn nth(times: &[Instant], n: usize, what: &str) -> Instant {
    *times
        .get(n - 1)
        .unwrap_or_else(|| panic!("only {} {what}, {n} needed", times.len()))
}

#[tokio::test]
async fn ten_percent_errors_are_rolled_back_when_the_fast_burn_arithmetic_says() {
    let run = deploy().await;
    sleep(10 * S).await;
    let fault = Instant::now();
    run.s.app().set(Behaviour::Noisy(Noise {
        error_rate: 0.10,
        ..WARM
    }));
    let deadline = fault + 120 * S;
    while run.s.app().rollbacks().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    let call = run
        .s
        .app()
        .rollbacks()
        .first()
        .cloned()
        .expect("a rollback within 120 s");
    assert_eq!(call.body["rule"], "fast-burn", "{}", call.body);
    // The 5m window holds (or, young, is taken to hold) this many probes;
    // the burn passes 14.4 once more than 1.44 % of them failed.
    let full: u64 = TARGETS.iter().map(|(_, _, ms)| 300_000 / ms).sum();
    let need = (0.0144 * full as f64).floor() as usize + 1;
    let failures = run.log.probes(None, fault, |o, _| !o.is_success());
    let due = nth(&failures, need, "failed probes");
    eprintln!(
        "10 % errors: rolled back after {:.1}s; the {need}th failure (1.44 % of {full}) came after {:.1}s; nominal 43.2s",
        (call.at - fault).as_secs_f64(),
        (due - fault).as_secs_f64()
    );
    assert!(
        call.at <= due + SLACK,
        "rolled back {:?} after the {need}th failure",
        call.at - due
    );
    run.s.shutdown().await;
}

// Named to sort second: the test threads take tests in name order, and
// this slowest one (3 minutes) should not wait for a free thread.
#[tokio::test]
async fn a_release_three_times_slower_pages_after_the_window_fills_and_for() {
    let run = deploy().await;
    sleep(10 * S).await;
    let fault = Instant::now();
    run.s.app().set(Behaviour::Noisy(Noise {
        latency: WARM.latency * 3,
        spike: WARM.spike * 3,
        ..WARM
    }));
    let mut events = run.s.running.events();
    let paged = tokio::time::timeout(300 * S, async {
        loop {
            if let Ok(Event::Action(r)) = events.recv().await
                && r.action == "page"
                && r.rule == "slow-analytics"
            {
                return (Instant::now(), r);
            }
        }
    })
    .await;
    let (at, record) = paged.expect("a page within 300 s");
    assert_eq!(record.outcome, "triggered", "{}", record.detail);
    // p95 of the 5m window (600 answers at 500 ms, some assumed) passes
    // 200 ms once 31 of them are slower; answers within one histogram
    // bucket of the threshold are not counted, to stay on the safe side.
    let full = 300_000 / TARGETS[2].2;
    let need = (full - (0.95 * full as f64).ceil() as u64 + 1) as usize;
    let clearly_slow = Duration::from_millis(200).mul_f64(2f64.powf(1.0 / 12.0));
    let slow = run.log.probes(Some("analytics-executive"), fault, |o, l| {
        o.is_success() && l > clearly_slow
    });
    let due = nth(&slow, need, "slow answers") + 60 * S;
    eprintln!(
        "3x latency: paged after {:.1}s; the {need}th slow answer plus `for: 1m` came after {:.1}s; nominal 154s",
        (at - fault).as_secs_f64(),
        (due - fault).as_secs_f64()
    );
    assert!(at <= due + SLACK, "paged {:?} after due", at - due);
    let pages = run.pd.accepted();
    assert!(
        pages.iter().any(|p| p["event_action"] == "trigger"
            && p["dedup_key"] == "backstop/local/checkout/v2"
            && p["payload"]["custom_details"]["rules"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["rule"] == "slow-analytics"))),
        "{pages:#?}"
    );
    run.s.shutdown().await;
}
