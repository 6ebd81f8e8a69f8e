//! Engine tests in paused time: samples in, decisions out.

use super::*;
use crate::probe::Reason;
use tokio::time::advance;

const S: Duration = Duration::from_secs(1);

/// Two targets, an availability and a latency SLO, and the given rules.
fn engine(rules: &str) -> Engine {
    let yaml = format!(
        r#"
service: checkout
targets:
  - {{ name: health, url: "http://127.0.0.1:1/health", interval: 1s }}
  - {{ name: analytics, url: "http://127.0.0.1:1/analytics", interval: 1s }}
slos:
  - {{ name: availability, objective: 99.9 }}
  - {{ name: latency, objective: 95, latency_threshold: 200ms, targets: [analytics] }}
rollback: {{ webhook: {{ url: "http://127.0.0.1:1/rollback" }} }}
rules: {rules}
"#
    );
    let c = Arc::new(crate::config::for_tests(&yaml));
    Engine::new(c.clone(), Telemetry::detached(), Instant::now())
}

fn sample(target: usize, ok: bool, latency_ms: u64) -> Sample {
    Sample {
        generation: 0,
        target,
        at: Instant::now(),
        latency: Duration::from_millis(latency_ms),
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

fn kinds(d: &[Decision]) -> Vec<DecisionKind> {
    d.iter().map(|d| d.kind).collect()
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_fire_after_for_and_resolve_on_success() {
    let mut e = engine(
        "[{ name: health-down, when: { consecutive_failures: 3, target: health }, for: 2s, do: [rollback] }]",
    );
    for _ in 0..2 {
        e.record(&sample(0, false, 5));
        assert!(e.evaluate(Instant::now(), Scope::Target(0)).is_empty());
        advance(S).await;
    }
    e.record(&sample(0, false, 5));
    assert!(
        e.evaluate(Instant::now(), Scope::Target(0)).is_empty(),
        "pending, not firing"
    );
    assert_eq!(e.next_deadline(), Some(Instant::now() + 2 * S));
    advance(2 * S).await;
    e.record(&sample(0, false, 5));
    let d = e.evaluate(Instant::now(), Scope::Target(0));
    assert_eq!(kinds(&d), vec![DecisionKind::Fired]);
    assert!(
        d[0].evidence
            .to_string()
            .starts_with("health: 4 consecutive failures")
    );
    // While firing, the tick reminds the actions stage; samples do not.
    e.record(&sample(0, false, 5));
    assert!(e.evaluate(Instant::now(), Scope::Target(0)).is_empty());
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Scope::Tick)),
        vec![DecisionKind::Firing]
    );
    e.record(&sample(0, true, 5));
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Scope::Target(0))),
        vec![DecisionKind::Resolved]
    );
    let status = e.status(Instant::now());
    assert_eq!(status.rules[0].state, State::Ok);
    assert_eq!(status.targets[0].bad, 5);
}

#[tokio::test(start_paused = true)]
async fn samples_only_wake_rules_that_read_their_target() {
    let mut e = engine(
        "[{ name: health-down, when: { consecutive_failures: 1, target: health }, do: [rollback] }]",
    );
    e.record(&sample(1, false, 5));
    assert!(e.evaluate(Instant::now(), Scope::Target(1)).is_empty());
    e.record(&sample(0, false, 5));
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Scope::Target(0))),
        vec![DecisionKind::Fired]
    );
}

#[tokio::test(start_paused = true)]
async fn uncounted_warmup_failures_stay_out_of_windows_and_counters() {
    let mut e = engine(
        "[{ name: health-down, when: { consecutive_failures: 1, target: health }, do: [rollback] }]",
    );
    let mut s = sample(0, false, 5);
    s.counted = false;
    e.record(&s);
    assert!(e.evaluate(Instant::now(), Scope::Target(0)).is_empty());
    let status = e.status(Instant::now());
    assert_eq!(
        (
            status.targets[0].good,
            status.targets[0].bad,
            status.targets[0].probes
        ),
        (0, 0, 1)
    );
    assert!(!status.ready, "analytics has not been probed yet");
    e.record(&sample(1, true, 5));
    assert!(e.status(Instant::now()).ready);
}

#[tokio::test(start_paused = true)]
async fn latency_slo_counts_good_only_within_the_threshold() {
    let mut e = engine("[]");
    for ms in [100, 150, 200, 250] {
        e.record(&sample(1, true, ms));
        advance(S).await;
    }
    e.record(&sample(1, false, 5));
    let st = e.status(Instant::now());
    let latency = &st.slos[1].windows[0];
    // 3 of 5 within 200 ms (200 itself included); the failure is bad.
    assert_eq!((latency.good, latency.total), (3, 5));
    assert!((latency.sli.unwrap() - 0.6).abs() < 1e-12);
    let avail = &st.slos[0].windows[0];
    assert_eq!((avail.good, avail.total), (4, 5));
}

#[tokio::test(start_paused = true)]
async fn burn_rate_rule_fires_on_a_young_window_once_min_samples_are_met() {
    let mut e = engine(
        "[{ name: fast-burn, do: [rollback],
            when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4, min_samples: 20 } } }]",
    );
    for i in 0..19 {
        e.record(&sample(i % 2, false, 5));
        assert!(
            e.evaluate(Instant::now(), Scope::Target(i % 2)).is_empty(),
            "only {} samples",
            i + 1
        );
        advance(S).await;
    }
    e.record(&sample(0, false, 5));
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Scope::Target(0))),
        vec![DecisionKind::Fired]
    );
}

#[tokio::test(start_paused = true)]
async fn rules_without_actions_transition_but_send_no_decisions() {
    let mut e = engine("[{ name: observe, when: { consecutive_failures: 1, target: health } }]");
    e.record(&sample(0, false, 5));
    assert!(e.evaluate(Instant::now(), Scope::Target(0)).is_empty());
    assert_eq!(e.status(Instant::now()).rules[0].state, State::Firing);
}

/// A rule over many targets is assessed in a batch at most `BATCH` after
/// the samples that concern it, not on each of them: with every target
/// probed, assessing it per sample would cost O(targets²) a second.
#[tokio::test(start_paused = true)]
async fn rules_over_many_targets_are_assessed_in_batches() {
    let targets: Vec<String> = (0..12)
        .map(|i| format!("{{ name: t{i}, url: \"http://127.0.0.1:1/{i}\", interval: 1s }}"))
        .collect();
    let yaml = format!(
        "service: checkout\ntargets: [{}]\nrollback: {{ webhook: {{ url: \"http://127.0.0.1:1/rb\" }} }}\nrules:\n  - {{ name: all, when: {{ error_rate: {{ above: 1%, window: 1m, min_samples: 5 }} }}, do: [rollback] }}\n  - {{ name: t0-down, when: {{ consecutive_failures: 1, target: t0 }}, do: [rollback] }}\n",
        targets.join(", ")
    );
    let mut e = Engine::new(
        Arc::new(crate::config::for_tests(&yaml)),
        Telemetry::detached(),
        Instant::now(),
    );
    assert_eq!(e.batch_due(), None);
    for t in 0..12 {
        e.record(&sample(t, false, 5));
        let d = e.evaluate(Instant::now(), Scope::Target(t));
        // The one-target rule still answers at once.
        let fired: Vec<usize> = d.iter().map(|d| d.rule).collect();
        assert_eq!(fired, if t == 0 { vec![1] } else { vec![] }, "sample {t}");
    }
    // Twelve samples, one batch due, 100 ms after the first.
    assert_eq!(e.batch_due(), Some(Instant::now() + BATCH));
    advance(BATCH).await;
    let d = e.evaluate(Instant::now(), Scope::Batch);
    assert_eq!(
        d.iter().map(|d| (d.rule, d.kind)).collect::<Vec<_>>(),
        vec![(0, DecisionKind::Fired)]
    );
    assert_eq!(e.batch_due(), None);
}
