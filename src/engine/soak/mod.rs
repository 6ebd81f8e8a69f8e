//! Soak tests in virtual time: hours of realistic probe results through the
//! real windows, rules and actor, in seconds. A good release, noisy the way
//! real ones are, must never make a rollback or page rule fire; bad ones
//! must be caught no later than their rule's arithmetic says (plus a tick).
//!
//! The targets and SLOs are `examples/checkout.yaml`'s; the rules are the
//! runbook's, as the README's running example writes them, with a fast
//! and a slow burn.

mod app;
mod driver;
mod oracle;

use app::{App, Fault, NOISE};
use driver::{Sim, TICK, What};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::DecisionKind;
use crate::config::{Action, Config};

const S: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

const RULES: &str = r#"
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: health }
    for: 30s
    do: [rollback, page]
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4 } }
    do: [rollback, page]
  - name: slow-burn
    when: { burn_rate: { slo: availability, short: 30m, long: 6h, factor: 6 } }
    do: [page]
  - name: error-rate
    when: { error_rate: { above: "5%", window: 10m, min_samples: 30 } }
    do: [page]
  - name: slow-analytics
    when: { latency: { target: analytics-executive, percentile: 95, above: 200ms, window: 5m } }
    for: 1m
    do: [page]
  - name: crashloop
    when: { restarts: { above: 3, window: 10m } }
    do: [rollback, page]
rollback:
  kubernetes: { deployment: checkout }
  dry_run: true
page:
  alertmanager: { url: "http://127.0.0.1:1" }
"#;

/// The example's service, targets and SLOs with `rules`.
fn config(rules: &str) -> Arc<Config> {
    let example = include_str!("../../../examples/checkout.yaml");
    let head = &example[..example.find("\nrules:").expect("the example has rules")];
    let yaml = format!("{head}\n{rules}");
    let env = |name: &str| (name == "APP_TOKEN").then(|| "soak".to_string());
    Arc::new(crate::config::parse(&yaml, &env).unwrap_or_else(|e| panic!("{e}")))
}

/// Seconds, for messages.
fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[tokio::test(start_paused = true)]
async fn six_hours_of_a_good_release_decide_nothing() {
    let wall = std::time::Instant::now();
    let t0 = Instant::now();
    let app = App::new(42, NOISE, t0).blip(t0 + 2 * HOUR + 13 * MIN, 3 * S);
    let config = config(RULES);
    // What six hours of the example's targets probe, at their intervals.
    let six_hours: f64 = config
        .targets
        .iter()
        .map(|t| (6 * HOUR).as_secs_f64() / t.interval.as_secs_f64())
        .sum();
    let mut sim = Sim::new(config, app);
    sim.run_until(t0 + 6 * HOUR + 10 * MIN, |_| false).await;
    let sim = sim.stop().await;
    let decisions: Vec<_> = sim
        .seen
        .iter()
        .filter(|s| matches!(s.what, What::Decision(_)))
        .collect();
    let pending: Vec<_> = sim
        .seen
        .iter()
        .filter(|s| s.what == What::Pending)
        .map(|s| format!("{} at {}", s.rule, secs(s.at - t0)))
        .collect();
    eprintln!(
        "soak: {} virtual, {} counted + {} warm-up samples, {} decisions, pending: {pending:?}, wall {:?}",
        secs(Instant::now() - t0),
        sim.samples.0,
        sim.samples.1,
        decisions.len(),
        wall.elapsed()
    );
    assert!(decisions.is_empty(), "{}", sim.story());
    assert!(sim.log.latest().is_empty(), "{:#?}", sim.log.latest());
    assert!(
        sim.samples.0 as f64 > 0.95 * six_hours,
        "{:?} of {six_hours}",
        sim.samples
    );
}

/// One bad release: the app turns bad at `onset` after the sidecar started.
/// Runs until every rule in `expect` has fired (or `limit` passes) and
/// checks each fired no later than the oracle's due time plus a tick, and
/// that the actor acted on it. `expect` pairs each rule with its nominal
/// time from the rule's arithmetic, which is only reported: the release's
/// errors and latencies are random, the oracle's due time is exact.
/// Returns each rule's firing time after onset.
async fn bad_release(
    fault: Fault,
    onset: Duration,
    expect: &[(&str, Duration)],
    limit: Duration,
) -> Vec<Duration> {
    let t0 = Instant::now();
    let app = App::new(7, NOISE, t0).fault(t0 + onset, fault);
    let mut sim = Sim::new(config(RULES), app);
    sim.run_until(t0 + onset, |_| false).await;
    assert!(
        sim.seen
            .iter()
            .all(|s| !matches!(s.what, What::Decision(_))),
        "decided before the fault:\n{}",
        sim.story()
    );
    sim.start_oracle();
    let fired = What::Decision(DecisionKind::Fired);
    // Until the engine fired and the oracle says when it had to.
    sim.run_until(t0 + onset + limit, |sim| {
        expect
            .iter()
            .all(|(r, _)| sim.first(r, &fired).is_some() && sim.due(r).is_some())
    })
    .await;
    let sim = sim.stop().await;
    let since = t0 + onset;
    let mut took = Vec::new();
    for (rule, nominal) in expect {
        let due = sim.due(rule).unwrap_or_else(|| {
            panic!(
                "{rule}: the oracle says it never had to fire ({fault:?} from {}, now {})\n{}",
                secs(onset),
                secs(Instant::now() - t0),
                sim.rules_now()
            )
        });
        let at = sim.first(rule, &fired).unwrap_or_else(|| {
            panic!(
                "{rule} did not fire within {limit:?}; due after {}",
                secs(due - since)
            )
        });
        eprintln!(
            "{fault:?} from {}: {rule} fired after {} (due after {}, nominal {})",
            secs(onset),
            secs(at - since),
            secs(due - since),
            secs(*nominal)
        );
        assert!(
            at <= due + TICK,
            "{rule} fired after {}, due after {}\n{}",
            secs(at - since),
            secs(due - since),
            sim.story()
        );
        took.push(at - since);
    }
    // The actor acted: the first rollback rule to fire rolled back (a dry
    // run here), and every paging rule that fired paged.
    let rules = &sim.config.rules;
    let fired_rules: Vec<_> = sim.seen.iter().filter(|s| s.what == fired).collect();
    let first_rollback = fired_rules
        .iter()
        .find(|s| rules[sim.rule(&s.rule)].actions.contains(&Action::Rollback));
    if let Some(first) = first_rollback {
        assert!(
            sim.seen
                .iter()
                .any(|s| s.rule == first.rule
                    && s.what == What::Action("rollback", "dry_run".into())),
            "no rollback for {}:\n{}",
            first.rule,
            sim.story()
        );
    }
    for s in fired_rules {
        if rules[sim.rule(&s.rule)].actions.contains(&Action::Page) {
            assert!(
                sim.seen
                    .iter()
                    .any(|p| p.rule == s.rule && p.what == What::Page { firing: true }),
                "{} fired but did not page",
                s.rule
            );
        }
    }
    took
}

/// 14.4 × 0.1 % = 1.44 % of the 5 m window must fail: at 10 % errors that
/// takes 0.0144 × 300 s / 0.1 = 43.2 s. The 10 m error rate passes 5 % after
/// 0.05 × 600 s / 0.1 = 300 s; the slow burn (6 × 0.1 % over 30 m and 6 h)
/// after 0.006 × 6 h / 0.1 = 1296 s.
const TEN_PERCENT: [(&str, Duration); 3] = [
    ("fast-burn", Duration::from_millis(43_200)),
    ("error-rate", Duration::from_secs(300)),
    ("slow-burn", Duration::from_secs(1296)),
];

#[tokio::test(start_paused = true)]
async fn ten_percent_errors_roll_back_when_the_burn_rate_arithmetic_says() {
    let took = bad_release(Fault::Errors(0.10), 15 * MIN, &TEN_PERCENT, 30 * MIN).await;
    assert!(took[0] < MIN, "the fast burn took {:?}", took[0]);
}

#[tokio::test(start_paused = true)]
async fn ten_percent_errors_from_the_first_answer_are_caught_as_fast() {
    // The app listens 12 s after start: the same arithmetic from there.
    let listening = NOISE.listening_after;
    let expect = TEN_PERCENT.map(|(rule, t)| (rule, t + listening));
    let took = bad_release(Fault::Errors(0.10), Duration::ZERO, &expect, 30 * MIN).await;
    assert!(
        took[0] < MIN + listening,
        "the fast burn took {:?}",
        took[0]
    );
}

/// p95 of analytics goes from about 90 ms to 270 ms against a 200 ms
/// threshold: 16 % of answers (15 % of the log-normal, the 1 % slow
/// queries) are then above it. p95 over 5 m passes 200 ms once more than
/// 5 % of the window is slow: 0.05 × 300 s / 0.16 = 94 s, then `for: 1m`.
const THREE_TIMES: (&str, Duration) = ("slow-analytics", Duration::from_secs(94 + 60));

#[tokio::test(start_paused = true)]
async fn three_times_slower_pages_after_the_window_fills_and_for() {
    bad_release(Fault::Slower(3.0), 15 * MIN, &[THREE_TIMES], 15 * MIN).await;
    let listening = NOISE.listening_after;
    let from_start = (THREE_TIMES.0, THREE_TIMES.1 + listening);
    bad_release(Fault::Slower(3.0), Duration::ZERO, &[from_start], 15 * MIN).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_rolls_back() {
    // Never answers: failures count from the end of the 30 s warm-up. The
    // fast burn needs its 70 probes (3.2 a second, 22 s); health-down 3
    // failures then `for: 30s`; the crash loop its 4th restart, which the
    // kubelet's back-off puts at 5 + 10 + 5 + 20 + 5 + 40 + 5 + 80 = 170 s,
    // seen at the next 5 s poll.
    let took = bad_release(
        Fault::CrashLoop,
        Duration::ZERO,
        &[
            ("fast-burn", Duration::from_secs(30 + 22)),
            ("health-down", Duration::from_secs(30 + 3 + 30)),
            ("crashloop", Duration::from_secs(170)),
        ],
        10 * MIN,
    )
    .await;
    assert!(took[2] <= Duration::from_secs(170) + driver::POLL);
}

#[tokio::test(start_paused = true)]
async fn three_failures_in_a_row_without_for_roll_back_on_a_three_second_blip() {
    // The running example's `health-down` has no `for:`: a 3 s outage at a 1 s
    // interval is exactly three failures in a row, and it rolls back. The
    // soak's rules hold it for 30 s (RULES), which the six hours pass.
    let design = RULES.replacen("    for: 30s\n", "", 1);
    let t0 = Instant::now();
    let blip = t0 + 10 * MIN;
    let app = App::new(3, NOISE, t0).blip(blip, 3 * S);
    let mut sim = Sim::new(config(&design), app);
    sim.run_until(t0 + 12 * MIN, |_| false).await;
    let sim = sim.stop().await;
    let fired = sim
        .first("health-down", &What::Decision(DecisionKind::Fired))
        .unwrap_or_else(|| panic!("{}", sim.story()));
    // The third failing probe starts within 3 s of the blip and times out
    // after 800 ms.
    assert!(fired > blip && fired <= blip + 3 * S + Duration::from_millis(800));
    assert!(
        sim.seen
            .iter()
            .any(|s| s.what == What::Action("rollback", "dry_run".into())),
        "{}",
        sim.story()
    );
    let others: Vec<_> = sim
        .seen
        .iter()
        .filter(|s| s.rule != "health-down")
        .collect();
    assert!(others.is_empty(), "{}", sim.story());
}
