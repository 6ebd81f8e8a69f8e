//! B: a receiver hangs the post for one rule; another rule fires. Its page
//! reaches the receiver within one attempt's timeout, not after the hung
//! post's retries (for PagerDuty, as an update of the one incident). The
//! delay is printed (`--nocapture`).

use super::DEDUP_KEY;
use crate::common::fake_alertmanager::FakeAlertmanager;
use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::faulty::{Fault, Panics, RawAnswer, RawReceiver};
use crate::common::harness::*;
use crate::common::wait_until;
use backstop::Event;
use backstop::demo::app::{Behaviour, SampleApp};
use backstop::rules::State;
use std::io::Write;
use std::time::Duration;
use tokio::time::{Instant, sleep};

/// The rule that fires second (`RULE` fires first, after 3 failures).
const SECOND: &str = "health-down-long";
/// Per attempt, for the receiver under test.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Two page rules on one target, 100 ms apart: `RULE` fires at the third
/// failure, `SECOND` half a second later.
fn two_rules(app: &SampleApp, receivers: &str) -> String {
    format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 100ms
rules:
  - name: {RULE}
    when: {{ consecutive_failures: 3, target: health }}
    do: [page]
  - name: {SECOND}
    when: {{ consecutive_failures: 8, target: health }}
    do: [page]
{receivers}"#,
        app.url("/health")
    )
}

/// Start failing the app; returns when `SECOND` fired.
async fn fire_both(d: &mut Daemon, app: &SampleApp) -> Instant {
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    app.set(Behaviour::Status(500));
    d.wait_for(
        "the second rule firing",
        Duration::from_secs(3),
        |e| matches!(e, Event::Transition { rule, to: State::Firing, .. } if rule == SECOND),
    )
    .await;
    Instant::now()
}

fn report(receiver: &str, delay: Duration) {
    println!(
        "{receiver}: with {RULE}'s post hung, {SECOND}'s page arrived {:.3} s after it fired (attempt timeout {:?})",
        delay.as_secs_f64(),
        TIMEOUT
    );
}

/// PagerDuty has one incident per revision, posted one event at a time
/// (so a resolve never overtakes its trigger): the first rule's trigger
/// hangs, the second rule fires. The update waits for the hung attempt but
/// not for its retries: it reaches PagerDuty within one attempt's timeout.
#[tokio::test]
async fn b_pagerduty_hung_delays_the_incident_update_by_one_attempt_at_most() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    pd.plan(&[Fault::Hang]);
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let receivers = format!(
        "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\", timeout: 1s }}\n",
        key.path().display(),
        pd.url
    );
    let mut d = Daemon::start(&two_rules(&app, &receivers)).await;
    let fired = fire_both(&mut d, &app).await;
    d.wait_for(
        "the second rule's trigger",
        Duration::from_secs(8),
        |e| matches!(e, Event::Action(r) if r.rule == SECOND && r.outcome == "triggered"),
    )
    .await;
    let delay = fired.elapsed();
    report("PagerDuty", delay);
    assert!(delay < TIMEOUT, "{delay:?}");
    // The hung post was the first rule's trigger alone, and was not tried
    // again: the update that PagerDuty took names both rules.
    let seen = pd.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].0, 0, "the first post hung");
    let accepted = pd.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert_eq!(accepted[0]["dedup_key"], DEDUP_KEY);
    let summary = accepted[0]["payload"]["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("; also {SECOND};")), "{summary}");
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

/// One Alertmanager of an HA pair hangs every post: the other gets each
/// rule's alert within one attempt's timeout of the rule firing.
#[tokio::test]
async fn b_alertmanager_hung_delays_neither_its_peer_nor_another_rule() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let hung = FakeAlertmanager::start().await;
    hung.plan(&[Fault::Hang; 50]);
    let peer = FakeAlertmanager::start().await;
    let receivers = format!(
        "page:\n  alertmanager: {{ url: [\"{}\", \"{}\"], timeout: 1s, resend_interval: 10m }}\n",
        hung.url(),
        peer.url()
    );
    let mut d = Daemon::start(&two_rules(&app, &receivers)).await;
    let fired = fire_both(&mut d, &app).await;
    let took = |rule: &str| {
        peer.taken()
            .iter()
            .any(|t| t.alert["labels"]["rule"] == rule && !t.resolved)
    };
    // The first rule fired half a second earlier: its alert is there already.
    assert!(took(RULE), "{:#?}", peer.taken());
    wait_until("the second rule's alert", Duration::from_secs(8), || {
        took(SECOND)
    })
    .await;
    let delay = fired.elapsed();
    report("Alertmanager", delay);
    // The post under way when it fired ends with the hung peer's attempt.
    assert!(delay < TIMEOUT + Duration::from_millis(100), "{delay:?}");
    // Every alert is recorded once both Alertmanagers had their try.
    for rule in [RULE, SECOND] {
        let e = d
            .wait_for(
                "the record",
                Duration::from_secs(8),
                |e| matches!(e, Event::Action(r) if r.rule == rule && r.action == "page"),
            )
            .await;
        let Event::Action(r) = e else { unreachable!() };
        assert_eq!(r.outcome, "triggered", "{}", r.detail);
        assert_eq!(r.detail, "firing alert sent to 1 of 2 Alertmanager(s)");
    }
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

/// Grafana hangs the first rule's marks: the second rule's mark still
/// arrives at once (Grafana's timeout is 5 s).
#[tokio::test]
async fn b_grafana_hung_for_one_rule_delays_no_other() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let grafana = RawReceiver::start(|body| {
        let first = format!("rule:{RULE}");
        match body["tags"].as_array() {
            Some(tags) if tags.iter().any(|t| t == first.as_str()) => RawAnswer::Hang,
            _ => RawAnswer::Status(200),
        }
    })
    .await;
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let receivers = format!(
        "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\" }}\nannotate:\n  grafana: {{ url: \"{}\" }}\n",
        key.path().display(),
        pd.url,
        grafana.url("/")
    );
    let mut d = Daemon::start(&two_rules(&app, &receivers)).await;
    let fired = fire_both(&mut d, &app).await;
    let second = format!("rule:{SECOND}");
    let arrived = || {
        grafana.requests().into_iter().find(|r| {
            r.body["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == second.as_str()))
        })
    };
    wait_until("the second rule's mark", Duration::from_secs(20), || {
        arrived().is_some()
    })
    .await;
    let delay = arrived().unwrap().at.saturating_duration_since(fired);
    report("Grafana", delay);
    assert!(delay < TIMEOUT, "{delay:?}");
    sleep(Duration::from_millis(100)).await;
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}
