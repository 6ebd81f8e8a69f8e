//! A: the probed app misbehaves, then recovers.

use crate::common::fake_deployer::FakeDeployer;
use crate::common::faulty::{FaultyApp, Mode, Panics};
use crate::common::harness::*;
use crate::common::wait_until;
use backstop::Event;
use backstop::probe::{Outcome, Reason};
use backstop::rules::State;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::sleep;

/// How the probed app misbehaves.
enum AppFault {
    Answer(Mode),
    Refused,
}

/// The probed app misbehaves for a while, then recovers.
async fn app_misbehaves(fault: AppFault, reason: Reason, expect: &str) {
    let panics = Panics::watch();
    let app = FaultyApp::start().await;
    let deployer = FakeDeployer::start().await;
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{app}"
    interval: 100ms
    timeout: 95ms
    expect: {{ json: {{ status: ok }}{expect} }}
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [rollback]
rollback:
  webhook: {{ url: "{hook}", timeout: 500ms }}
"#,
        app = app.url("/health"),
        hook = deployer.url()
    );
    let mut d = Daemon::start(&yaml).await;
    let second = Duration::from_secs(1);
    d.wait_for("a healthy probe", 3 * second, probe_succeeded)
        .await;

    match fault {
        AppFault::Answer(mode) => app.set(mode),
        AppFault::Refused => app.refuse().await,
    }
    let fault_at = d.mark().await;
    let e = d
        .wait_for("a failed probe", 2 * second, probe_failed(TARGET))
        .await;
    let Event::Probe {
        outcome: Outcome::Failure {
            reason: got,
            detail,
        },
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(got, reason, "{detail}");
    d.wait_for("the rule firing", 2 * second, rule_went(State::Firing))
        .await;
    // The fault lasts: the daemon keeps its pace and keeps serving.
    sleep(Duration::from_millis(800)).await;
    d.assert_on_schedule(&fault_at).await;
    d.assert_serving().await;
    wait_until("the rollback call", 2 * second, || {
        !deployer.calls().is_empty()
    })
    .await;

    if matches!(fault, AppFault::Refused) {
        app.accept().await;
    }
    app.set(Mode::Healthy);
    d.wait_for("the rule resolving", 2 * second, rule_went(State::Ok))
        .await;
    // A few healthy probes more: nothing fires again.
    sleep(Duration::from_millis(300)).await;

    assert_eq!(d.transitions("firing").await, 1.0, "fired once");
    assert_eq!(d.transitions("ok").await, 1.0, "resolved once");
    let text = d.metrics().await;
    let failures: BTreeMap<String, f64> = series(&text, "backstop_probes_total")
        .into_iter()
        .filter(|(l, _)| l["target"] == TARGET && l["result"] == "failure")
        .map(|(l, v)| (l["reason"].clone(), v))
        .collect();
    assert_eq!(
        failures.keys().collect::<Vec<_>>(),
        [reason.metric_label()],
        "every failed probe has reason {}: {failures:?}",
        reason.metric_label()
    );
    assert!(failures[reason.metric_label()] >= 3.0, "{failures:?}");
    let calls = deployer.calls();
    assert_eq!(calls.len(), 1, "one rollback call: {calls:#?}");
    assert_eq!(calls[0].status, 200);
    assert_eq!(
        calls[0].idempotency_key.as_deref(),
        Some("backstop/checkout/v2")
    );
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn a1_app_hangs() {
    app_misbehaves(AppFault::Answer(Mode::Hang), Reason::Timeout, "").await;
}

#[tokio::test]
async fn a2_app_resets_connections() {
    app_misbehaves(AppFault::Answer(Mode::Reset), Reason::Connect, "").await;
}

/// Not HTTP at all: no exchange took place, as with a reset.
#[tokio::test]
async fn a3_app_answers_garbage() {
    app_misbehaves(AppFault::Answer(Mode::NotHttp), Reason::Connect, "").await;
}

#[tokio::test]
async fn a3_app_answers_a_truncated_response() {
    app_misbehaves(AppFault::Answer(Mode::Truncated), Reason::Body, "").await;
}

#[tokio::test]
async fn a4_app_answers_after_the_timeout() {
    let slow = Mode::Slow(Duration::from_millis(200));
    app_misbehaves(AppFault::Answer(slow), Reason::Timeout, "").await;
}

/// Within the 95 ms timeout, over `max_latency`: the margin to the
/// timeout leaves room for a loaded test machine.
#[tokio::test]
async fn a4_app_answers_slowly_within_the_timeout() {
    let slow = Mode::Slow(Duration::from_millis(40));
    app_misbehaves(
        AppFault::Answer(slow),
        Reason::Latency,
        ", max_latency: 15ms",
    )
    .await;
}

#[tokio::test]
async fn a5_app_refuses_connections() {
    app_misbehaves(AppFault::Refused, Reason::Connect, "").await;
}

/// A redirect to another origin is the answer, not followed: the probe
/// fails on its status even though the other host answers healthy.
#[tokio::test]
async fn a6_app_redirects_to_another_origin() {
    let other = FaultyApp::start().await;
    let port = url::Url::parse(&other.url("/")).unwrap().port().unwrap();
    app_misbehaves(AppFault::Answer(Mode::RedirectTo(port)), Reason::Status, "").await;
}

/// Valid JSON over the 1 MiB read cap: said as a cut, not as "not JSON".
#[tokio::test]
async fn a7_app_answers_a_body_over_the_cap() {
    app_misbehaves(AppFault::Answer(Mode::Oversized), Reason::Truncated, "").await;
}
