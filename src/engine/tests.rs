//! Engine tests in paused time: samples in, decisions out.

use super::*;
use crate::config::{Action, Expect, Rollback, Rule, Slo, Target};
use crate::probe::Reason;
use std::collections::BTreeMap;
use tokio::time::advance;

const S: Duration = Duration::from_secs(1);

fn config(rules: Vec<Rule>) -> Arc<Config> {
    let target = |name: &str| Target {
        name: name.into(),
        url: "http://127.0.0.1:1/".parse().unwrap(),
        interval: S,
        timeout: S,
        warmup: Duration::ZERO,
        method: "GET".into(),
        headers: BTreeMap::new(),
        expect: Expect::default(),
    };
    Arc::new(Config {
        service: "checkout".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        targets: vec![target("health"), target("analytics")],
        slos: vec![
            Slo {
                name: "availability".into(),
                objective: 0.999,
                latency_threshold: None,
                targets: vec![0, 1],
            },
            Slo {
                name: "latency".into(),
                objective: 0.95,
                latency_threshold: Some(Duration::from_millis(200)),
                targets: vec![1],
            },
        ],
        rules,
        rollback: Rollback {
            backend: None,
            bake: 1800 * S,
            cooldown: 600 * S,
            dry_run: false,
        },
    })
}

fn rule(name: &str, when: Condition, for_: Duration) -> Rule {
    Rule {
        name: name.into(),
        when,
        for_,
        actions: vec![Action::Rollback],
    }
}

fn sample(target: usize, ok: bool, latency_ms: u64) -> Sample {
    Sample {
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
    }
}

fn engine(rules: Vec<Rule>) -> Engine {
    let c = config(rules);
    Engine::new(c.clone(), Telemetry::new(&c.service), Instant::now())
}

fn kinds(d: &[Decision]) -> Vec<DecisionKind> {
    d.iter().map(|d| d.kind).collect()
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_fire_after_for_and_resolve_on_success() {
    let mut e = engine(vec![rule(
        "health-down",
        Condition::ConsecutiveFailures {
            target: 0,
            count: 3,
        },
        2 * S,
    )]);
    for _ in 0..2 {
        e.record(&sample(0, false, 5));
        assert!(e.evaluate(Instant::now(), Some(0)).is_empty());
        advance(S).await;
    }
    e.record(&sample(0, false, 5));
    assert!(
        e.evaluate(Instant::now(), Some(0)).is_empty(),
        "pending, not firing"
    );
    assert_eq!(e.next_deadline(), Some(Instant::now() + 2 * S));
    advance(2 * S).await;
    e.record(&sample(0, false, 5));
    let d = e.evaluate(Instant::now(), Some(0));
    assert_eq!(kinds(&d), vec![DecisionKind::Fired]);
    assert!(
        d[0].evidence
            .to_string()
            .starts_with("health: 4 consecutive failures")
    );
    // While firing, the tick reminds the actions stage; samples do not.
    e.record(&sample(0, false, 5));
    assert!(e.evaluate(Instant::now(), Some(0)).is_empty());
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), None)),
        vec![DecisionKind::Firing]
    );
    e.record(&sample(0, true, 5));
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Some(0))),
        vec![DecisionKind::Resolved]
    );
    let status = e.status(Instant::now());
    assert_eq!(status.rules[0].state, State::Ok);
    assert_eq!(status.targets[0].bad, 5);
}

#[tokio::test(start_paused = true)]
async fn samples_only_wake_rules_that_read_their_target() {
    let mut e = engine(vec![rule(
        "health-down",
        Condition::ConsecutiveFailures {
            target: 0,
            count: 1,
        },
        Duration::ZERO,
    )]);
    e.record(&sample(1, false, 5));
    assert!(e.evaluate(Instant::now(), Some(1)).is_empty());
    e.record(&sample(0, false, 5));
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Some(0))),
        vec![DecisionKind::Fired]
    );
}

#[tokio::test(start_paused = true)]
async fn uncounted_warmup_failures_stay_out_of_windows_and_counters() {
    let mut e = engine(vec![rule(
        "health-down",
        Condition::ConsecutiveFailures {
            target: 0,
            count: 1,
        },
        Duration::ZERO,
    )]);
    let mut s = sample(0, false, 5);
    s.counted = false;
    e.record(&s);
    assert!(e.evaluate(Instant::now(), Some(0)).is_empty());
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
    let mut e = engine(vec![]);
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
    let when = Condition::BurnRate {
        slo: 0,
        short: 60 * S,
        long: 300 * S,
        factor: 14.4,
        min_samples: 20,
    };
    let mut e = engine(vec![rule("fast-burn", when, Duration::ZERO)]);
    for i in 0..19 {
        e.record(&sample(i % 2, false, 5));
        assert!(
            e.evaluate(Instant::now(), Some(i % 2)).is_empty(),
            "only {} samples",
            i + 1
        );
        advance(S).await;
    }
    e.record(&sample(0, false, 5));
    assert_eq!(
        kinds(&e.evaluate(Instant::now(), Some(0))),
        vec![DecisionKind::Fired]
    );
}

#[tokio::test(start_paused = true)]
async fn rules_without_actions_transition_but_send_no_decisions() {
    let mut r = rule(
        "observe",
        Condition::ConsecutiveFailures {
            target: 0,
            count: 1,
        },
        Duration::ZERO,
    );
    r.actions.clear();
    let mut e = engine(vec![r]);
    e.record(&sample(0, false, 5));
    assert!(e.evaluate(Instant::now(), Some(0)).is_empty());
    assert_eq!(e.status(Instant::now()).rules[0].state, State::Firing);
}
