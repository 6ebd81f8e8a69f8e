//! C: receivers down while a rule flaps; shutdown while a receiver hangs.

use super::{DEDUP_KEY, config};
use crate::common::fake_alertmanager::FakeAlertmanager;
use crate::common::fake_deployer::FakeDeployer;
use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::faulty::{Fault, Panics};
use crate::common::harness::*;
use crate::common::wait_until;
use backstop::Event;
use backstop::act::ActionRecord;
use backstop::demo::app::{Behaviour, SampleApp};
use backstop::rules::State;
use std::io::Write;
use std::time::Duration;
use tokio::time::{Instant, sleep};

/// PagerDuty is down while the rule fires and resolves fifty times.
#[tokio::test]
async fn c_pagerduty_down_while_a_rule_flaps() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    pd.down().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 1, target: health }}
    do: [page]
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}", timeout: 300ms, max_per_minute: 10000 }}
"#,
        app.url("/health"),
        key.path().display(),
        pd.url
    );
    let mut d = Daemon::start(&yaml).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let queue = QueueWatch::start(&d, "pagerduty");
    let mark = d.mark().await;
    flap(&mut d, &app, 50).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    assert_eq!(queue.max(), 2, "a trigger and a resolve wait, no more");

    pd.up().await;
    // Undelivered events go out again within 10 s.
    wait_until(
        "the last state at PagerDuty",
        Duration::from_secs(15),
        || pd.incident(DEDUP_KEY).len() == 2,
    )
    .await;
    sleep(Duration::from_millis(300)).await;
    // Whatever was in flight when PagerDuty came back may land as well
    // (a trigger into the open incident is deduplicated): one incident,
    // opened and resolved, and resolved is the last word.
    let accepted = pd.accepted();
    assert!(
        accepted.iter().all(|e| e["dedup_key"] == DEDUP_KEY),
        "{accepted:#?}"
    );
    assert!(
        accepted.len() <= 3,
        "the state, not a backlog: {accepted:#?}"
    );
    assert_eq!(
        pd.incident(DEDUP_KEY),
        ["opened", "resolved"],
        "{accepted:#?}"
    );
    assert_eq!(accepted.last().unwrap()["event_action"], "resolve");
    let text = d.metrics().await;
    assert_eq!(
        sum(
            &text,
            "backstop_page_queue_length",
            &[("receiver", "pagerduty")]
        ),
        0.0
    );
    assert_nothing_lost(&d);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

/// Alertmanager is down while the rule fires and resolves fifty times.
#[tokio::test]
async fn c_alertmanager_down_while_a_rule_flaps() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let am = FakeAlertmanager::start().await;
    am.down().await;
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 1, target: health }}
    do: [page]
page:
  alertmanager: {{ url: "{}", timeout: 300ms, resend_interval: 1s, max_per_minute: 10000 }}
"#,
        app.url("/health"),
        am.url()
    );
    let mut d = Daemon::start(&yaml).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let queue = QueueWatch::start(&d, "alertmanager");
    let mark = d.mark().await;
    flap(&mut d, &app, 50).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    assert_eq!(queue.max(), 1, "one alert per rule, no more");

    am.up().await;
    // The current state (resolved) goes out at once, or at the next
    // interval. A post in flight when it came back may land first with the
    // state it started with; the resolved alert is the last word.
    wait_until("the resolved alert", Duration::from_secs(3), || {
        am.taken().last().is_some_and(|t| t.resolved)
    })
    .await;
    sleep(Duration::from_millis(300)).await;
    let taken = am.taken();
    assert!(taken.last().unwrap().resolved, "{taken:#?}");
    assert!(taken.len() <= 3, "the state, not a backlog: {taken:#?}");
    assert!(taken.iter().all(|t| t.alert["labels"]["rule"] == RULE));
    assert_nothing_lost(&d);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

/// Make the rule fire and resolve `times` times.
async fn flap(d: &mut Daemon, app: &SampleApp, times: usize) {
    let within = Duration::from_secs(2);
    for _ in 0..times {
        app.set(Behaviour::Status(500));
        d.wait_for("the rule firing", within, rule_went(State::Firing))
            .await;
        app.set(Behaviour::Healthy);
        d.wait_for("the rule resolving", within, rule_went(State::Ok))
            .await;
    }
    assert_eq!(d.transitions("firing").await, times as f64);
}

/// No notice was dropped on its way from the actor to a receiver.
fn assert_nothing_lost(d: &Daemon) {
    let lost: Vec<&ActionRecord> = d
        .actions
        .iter()
        .filter(|r| r.action == "page" && r.detail.contains("queue is full"))
        .collect();
    assert!(
        lost.is_empty(),
        "notices lost on the way to a receiver: {lost:#?}"
    );
}

/// A receiver that never answers (with its default timeout) holds up
/// neither probing nor shutdown.
async fn shutdown_while_hanging(receiver: &str) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    let am = FakeAlertmanager::start().await;
    pd.plan(&[Fault::Hang; 3]);
    am.plan(&[Fault::Hang; 3]);
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let extra = match receiver {
        "pagerduty" => format!(
            "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\" }}\n",
            key.path().display(),
            pd.url
        ),
        _ => format!("page:\n  alertmanager: {{ url: \"{}\" }}\n", am.url()),
    };
    let mut d = Daemon::start(&config(&app, "page", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    wait_until("a hung request", Duration::from_secs(3), || {
        !pd.seen().is_empty() || !am.posts().is_empty()
    })
    .await;
    sleep(Duration::from_millis(500)).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    let started = Instant::now();
    d.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
}

#[tokio::test]
async fn b_shutdown_is_bounded_while_pagerduty_hangs() {
    shutdown_while_hanging("pagerduty").await;
}

#[tokio::test]
async fn b_shutdown_is_bounded_while_alertmanager_hangs() {
    shutdown_while_hanging("alertmanager").await;
}

/// The rollback webhook is down while the rule fires and resolves twenty
/// times: episodes do not queue rollbacks up. One rollback is in flight,
/// it gives up after its attempts, and the next try waits for the guard's
/// pause (30 s), whatever the rule does meanwhile.
#[tokio::test]
async fn c_webhook_down_while_a_rule_flaps() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let deployer = FakeDeployer::start().await;
    deployer.down().await;
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 1, target: health }}
    do: [rollback]
rollback:
  webhook: {{ url: "{}", timeout: 300ms }}
"#,
        app.url("/health"),
        deployer.url()
    );
    let mut d = Daemon::start(&yaml).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let mark = d.mark().await;
    flap(&mut d, &app, 20).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    // The attempts may have run out while the rule was still flapping
    // (probes every 100 ms, the floor, make twenty episodes take ~6 s).
    let r = match d.actions.iter().find(|r| r.action == "rollback") {
        Some(r) => r.clone(),
        None => {
            let e = d
                .wait_for(
                    "the rollback outcome",
                    Duration::from_secs(5),
                    action("rollback"),
                )
                .await;
            let Event::Action(r) = e else { unreachable!() };
            r
        }
    };
    assert_eq!(r.outcome, "failed", "{}", r.detail);
    sleep(Duration::from_millis(500)).await;
    let text = d.metrics().await;
    let attempts = |outcome| {
        sum(
            &text,
            "backstop_action_attempts_total",
            &[("action", "rollback"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (attempts("retryable"), attempts("ok")),
        (5.0, 0.0),
        "one rollback, five attempts"
    );
    let results = sum(&text, "backstop_rollbacks_total", &[("rule", RULE)]);
    assert_eq!(results, 1.0, "one rollback ended, for twenty episodes");
    assert!(d.actions.iter().filter(|r| r.action == "rollback").count() == 1);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}
