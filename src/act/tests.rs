//! The actions stage against a real HTTP webhook (the sample app), in real
//! time: guards, dry run, retries, and what is recorded.

use super::*;
use crate::daemon::{Event, Telemetry as Process};
use crate::demo::app::SampleApp;
use crate::rules::Evidence;

fn config(webhook: &str, dry_run: bool) -> Arc<Config> {
    Arc::new(crate::config::for_tests(&format!(
        r#"
service: checkout
targets: [{{ name: health, url: "http://127.0.0.1:1/health", interval: 1s }}]
rules:
  - {{ name: health-down, when: {{ consecutive_failures: 3, target: health }}, do: [rollback] }}
rollback:
  webhook: {{ url: "{webhook}", timeout: 2s }}
  dry_run: {dry_run}
"#
    )))
}

fn decision(kind: DecisionKind) -> ToActor {
    ToActor::Decision(decision_of(0, 0, kind))
}

/// A decision of `rule` in configuration generation `generation`.
fn decision_of(generation: u64, rule: usize, kind: DecisionKind) -> Decision {
    Decision {
        generation,
        rule,
        kind,
        evidence: Evidence::ConsecutiveFailures {
            target: "health".into(),
            failures: 3,
            threshold: 3,
            last_failure: Some("status: status 503".into()),
        },
        at: SystemTime::now(),
    }
}

struct Harness {
    app: SampleApp,
    tx: mpsc::Sender<ToActor>,
    events: tokio::sync::broadcast::Receiver<Event>,
    telemetry: Telemetry,
    log: ActionLog,
    stop: CancellationToken,
}

async fn harness(dry_run: bool, revision_age: Duration) -> Harness {
    crate::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    app.deploy("v2", crate::demo::app::Behaviour::Status(500));
    let config = config(&app.url("/admin/rollback"), dry_run);
    let process = Process::new("checkout");
    let telemetry = process.act.clone();
    let backend = Backend::from_config(&config, None, None).unwrap();
    let revision = Revision {
        id: "v2".into(),
        since: Instant::now() - revision_age,
    };
    let log = ActionLog::default();
    let actor = Actor::new(config, telemetry.clone(), backend, revision, log.clone());
    let (tx, rx) = mpsc::channel(16);
    let stop = CancellationToken::new();
    tokio::spawn(actor.run(rx, stop.clone(), Duration::from_millis(500)));
    Harness {
        app,
        tx,
        events: process.subscribe(),
        telemetry,
        log,
        stop,
    }
}

impl Harness {
    async fn next_action(&mut self) -> ActionRecord {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await;
            if let Event::Action(r) = e
                .expect("an action within 10 s")
                .expect("event stream open")
            {
                return r;
            }
        }
    }
    fn counter(&self, result: &str) -> u64 {
        self.telemetry.rollbacks("health-down", result)
    }
}

#[tokio::test]
async fn webhook_rollback_carries_the_evidence_and_happens_once() {
    let mut h = harness(false, Duration::ZERO).await;
    h.tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let r = h.next_action().await;
    assert_eq!((r.action, r.outcome.as_str()), ("rollback", "succeeded"));
    assert_eq!(h.app.version(), "v1");
    let calls = h.app.rollbacks();
    assert_eq!(calls.len(), 1);
    let body = &calls[0].body;
    assert_eq!(body["service"], "checkout");
    assert_eq!(body["revision"], "v2");
    assert_eq!(body["rule"], "health-down");
    assert_eq!(body["idempotency_key"], "backstop/checkout/v2");
    assert_eq!(body["evidence"]["kind"], "consecutive_failures");
    assert_eq!(body["evidence"]["failures"], 3);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("3 consecutive failures")
    );
    // Reminders while still firing: nothing new, nothing sent or recorded.
    for _ in 0..3 {
        h.tx.send(decision(DecisionKind::Firing)).await.unwrap();
    }
    // The rule fires again later on the same revision: held back, said once.
    h.tx.send(decision(DecisionKind::Fired)).await.unwrap();
    h.tx.send(decision(DecisionKind::Firing)).await.unwrap();
    let r = h.next_action().await;
    assert_eq!(r.outcome, "prevented: already_rolled_back");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.app.rollbacks().len(), 1);
    assert_eq!(h.log.latest().len(), 2);
    assert_eq!(h.counter("succeeded"), 1);
    let prevented = h.telemetry.prevented("health-down", "already_rolled_back");
    assert_eq!(prevented, 1);
    h.stop.cancel();
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let mut h = harness(false, Duration::ZERO).await;
    h.app.fail_webhook(&[500, 503]);
    h.tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let r = h.next_action().await;
    assert_eq!(r.outcome, "succeeded");
    assert_eq!(h.app.rollbacks().len(), 3);
    let attempts = |o| h.telemetry.attempts("rollback", o);
    assert_eq!((attempts("retryable"), attempts("ok")), (2, 1));
    h.stop.cancel();
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_is_reported_failed() {
    let mut h = harness(false, Duration::ZERO).await;
    h.app.fail_webhook(&[400]);
    h.tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let r = h.next_action().await;
    assert_eq!(r.outcome, "failed");
    assert!(r.detail.contains("HTTP 400"), "{}", r.detail);
    assert_eq!(h.app.rollbacks().len(), 1);
    assert_eq!(h.app.version(), "v2");
    assert_eq!(h.counter("failed"), 1);
    // The next reminder comes too soon after the failure: nothing is sent.
    h.tx.send(decision(DecisionKind::Firing)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.app.rollbacks().len(), 1);
    h.stop.cancel();
}

#[tokio::test]
async fn dry_run_only_says_what_it_would_do() {
    let mut h = harness(true, Duration::ZERO).await;
    h.tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let r = h.next_action().await;
    assert_eq!(r.outcome, "dry_run");
    assert!(
        r.detail
            .contains("would ask the webhook to roll back revision v2")
    );
    assert!(h.app.rollbacks().is_empty());
    assert_eq!(h.app.version(), "v2");
    assert_eq!(h.counter("dry_run"), 1);
    h.stop.cancel();
}

#[tokio::test]
async fn a_baked_revision_is_not_rolled_back() {
    let mut h = harness(false, Duration::from_secs(1801)).await;
    h.tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let r = h.next_action().await;
    assert_eq!(r.outcome, "prevented: baked");
    assert!(r.detail.contains("longer than bake 30m"), "{}", r.detail);
    assert!(h.app.rollbacks().is_empty());
    let prevented = h.telemetry.prevented("health-down", "baked");
    assert_eq!(prevented, 1);
    h.stop.cancel();
}

/// Decisions made under one configuration and read after a reload that
/// inserted a rule before the firing one act for the rule that fired, and
/// only once; decisions of the new generation use its positions.
#[tokio::test]
async fn decisions_across_a_reload_act_for_the_rule_that_fired() {
    crate::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    app.deploy("v2", crate::demo::app::Behaviour::Status(500));
    let old = config(&app.url("/admin/rollback"), false);
    let new = Arc::new(crate::config::for_tests(&format!(
        r#"
service: checkout
targets: [{{ name: health, url: "http://127.0.0.1:1/health", interval: 1s }}]
rules:
  - {{ name: inserted, when: {{ error_rate: {{ above: 50%, window: 1m }} }}, do: [rollback] }}
  - {{ name: health-down, when: {{ consecutive_failures: 3, target: health }}, do: [rollback] }}
rollback:
  webhook: {{ url: "{}", timeout: 2s }}
"#,
        app.url("/admin/rollback")
    )));
    let process = Process::new("checkout");
    let revision = Revision {
        id: "v2".into(),
        since: Instant::now(),
    };
    let log = ActionLog::default();
    let backend = Backend::from_config(&old, None, None).unwrap();
    let mut events = process.subscribe();
    let actor = Actor::new(old, process.act.clone(), backend, revision, log.clone());
    let (tx, rx) = mpsc::channel(16);
    // Everything waits before the actor first looks: a decision of the old
    // generation, the reload, and reminders of the new one (the rule now
    // second).
    tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let (applied_tx, applied) = oneshot::channel();
    let diff = crate::config::ConfigDiff::new(&config(&app.url("/admin/rollback"), false), &new);
    assert_eq!(diff.rules, vec![None, Some(0)]);
    let reconfigure = Reconfigure {
        generation: 1,
        config: new.clone(),
        backend: Backend::from_config(&new, None, None).unwrap(),
        receivers: Receivers::default(),
        changes: crate::config::ReceiverChanges::default(),
        carried: crate::engine::Carried {
            targets: diff.targets.clone(),
            rules: diff.rules.clone(),
            dropped: Vec::new(),
        },
    };
    tx.send(ToActor::Reconfigure(Box::new(reconfigure), applied_tx))
        .await
        .unwrap();
    for _ in 0..3 {
        let reminder = decision_of(1, 1, DecisionKind::Firing);
        tx.send(ToActor::Decision(reminder)).await.unwrap();
    }
    let stop = CancellationToken::new();
    let run = tokio::spawn(actor.run(rx, stop.clone(), Duration::from_millis(500)));
    applied.await.unwrap();
    let first = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        if let Event::Action(r) = e.expect("an action within 10 s").unwrap() {
            break r;
        }
    };
    assert_eq!(
        (first.rule.as_str(), first.outcome.as_str()),
        ("health-down", "succeeded")
    );
    // A stray decision of the old generation is not read against the new
    // rules; the rule firing anew in the new one is told it was done.
    tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let again = decision_of(1, 1, DecisionKind::Fired);
    tx.send(ToActor::Decision(again)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = app.rollbacks();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].body["rule"], "health-down");
    let records: Vec<(String, String)> = log
        .latest()
        .into_iter()
        .map(|r| (r.rule, r.outcome.to_string()))
        .collect();
    assert_eq!(
        records,
        [
            ("health-down".into(), "succeeded".into()),
            (
                "health-down".into(),
                "prevented: already_rolled_back".into()
            )
        ]
    );
    stop.cancel();
    run.await.unwrap();
}

/// A rollback that failed is tried again while the rule fires; the rule's
/// incident is told each time where the rollback stands: started, failed,
/// started again.
#[tokio::test(start_paused = true)]
async fn a_retried_rollback_is_told_to_the_incident_again() {
    crate::init_tls();
    let config = Arc::new(crate::config::for_tests(
        r#"
service: checkout
targets: [{ name: health, url: "http://127.0.0.1:1/health", interval: 1s }]
rules:
  - { name: health-down, when: { consecutive_failures: 3, target: health }, do: [rollback, page] }
rollback:
  webhook: { url: "http://127.0.0.1:1/admin/rollback", timeout: 1s }
page:
  webhook: { url: "http://127.0.0.1:1/notify" }
"#,
    ));
    let backend = Backend::from_config(&config, None, None).unwrap();
    let revision = Revision {
        id: "v2".into(),
        since: Instant::now(),
    };
    let (page_tx, mut pages) = mpsc::channel(16);
    let receivers = Receivers {
        webhook: Some(page_tx),
        ..Receivers::default()
    };
    let actor = Actor::new(
        config,
        Telemetry::detached(),
        backend,
        revision,
        ActionLog::default(),
    )
    .with_receivers(receivers);
    let (tx, rx) = mpsc::channel(16);
    let stop = CancellationToken::new();
    tokio::spawn(actor.run(rx, stop.clone(), Duration::from_millis(500)));
    let mut next = async || {
        let n = tokio::time::timeout(Duration::from_secs(120), pages.recv()).await;
        n.expect("a notice").expect("the channel is open")
    };
    tx.send(decision(DecisionKind::Fired)).await.unwrap();
    let fired = next().await;
    assert_eq!(fired.rollback, Some(RollbackNote::Started));
    let failed = next().await;
    assert!(
        matches!(
            &failed.rollback,
            Some(RollbackNote::Done {
                outcome: ActionOutcome::Failed,
                ..
            })
        ),
        "{:?}",
        failed.rollback
    );
    // Reminders within the pause after a failure say nothing new.
    tx.send(decision(DecisionKind::Firing)).await.unwrap();
    tokio::time::sleep(guard::RETRY_FAILED_AFTER).await;
    tx.send(decision(DecisionKind::Firing)).await.unwrap();
    let again = next().await;
    assert!(again.firing);
    assert_eq!(again.rollback, Some(RollbackNote::Started));
    assert!(
        again.summary.ends_with("; rolling back"),
        "{}",
        again.summary
    );
    stop.cancel();
}
