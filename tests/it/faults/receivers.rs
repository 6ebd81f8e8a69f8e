//! B: a receiver misbehaves (500, 429, hangs, unreachable), then recovers.

use super::{DEDUP_KEY, config};
use crate::common::fake_alertmanager::FakeAlertmanager;
use crate::common::fake_deployer::FakeDeployer;
use crate::common::fake_kube::{FakeKube, checkout_cluster};
use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::faulty::{Fault, Panics};
use crate::common::harness::*;
use backstop::Event;
use backstop::demo::app::{Behaviour, SampleApp};
use backstop::rules::State;
use std::io::Write;
use std::time::Duration;

/// How a receiver misbehaves before it recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trouble {
    ServerError,
    /// 429 with `Retry-After: 1`, then 429 without.
    Throttled,
    /// Two requests never answered.
    Hang,
    /// Nothing listens until two attempts have failed.
    Unreachable,
}

impl Trouble {
    /// What the receiver answers its first requests with.
    fn faults(self) -> Vec<Fault> {
        match self {
            Trouble::ServerError => vec![Fault::Status(500), Fault::Status(500)],
            Trouble::Throttled => vec![Fault::Throttle(Some(1)), Fault::Throttle(None)],
            Trouble::Hang => vec![Fault::Hang, Fault::Hang],
            Trouble::Unreachable => vec![],
        }
    }

    /// The statuses the receiver answered before it took the event (0: never answered).
    fn refusals(self) -> Vec<u16> {
        match self {
            Trouble::ServerError => vec![500, 500],
            Trouble::Throttled => vec![429, 429],
            Trouble::Hang => vec![0, 0],
            Trouble::Unreachable => vec![],
        }
    }
}

async fn rollback_webhook_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let deployer = FakeDeployer::start().await;
    deployer.plan(&trouble.faults());
    let extra = format!(
        "rollback:\n  webhook: {{ url: \"{}\", timeout: 300ms }}\n",
        deployer.url()
    );
    let mut d = Daemon::start(&config(&app, "rollback", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        deployer.down().await;
    }
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("rollback", 2.0).await;
        deployer.up().await;
    }
    let e = d
        .wait_for(
            "the rollback outcome",
            Duration::from_secs(10),
            action("rollback"),
        )
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for(
        "the rule resolving",
        Duration::from_secs(3),
        rule_went(State::Ok),
    )
    .await;

    // Taken once; every attempt (the hung ones too) carried the same key.
    let calls = deployer.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    let mut expected = trouble.refusals();
    expected.push(200);
    assert_eq!(statuses, expected, "{calls:#?}");
    for c in &calls {
        assert_eq!(c.idempotency_key.as_deref(), Some("backstop/checkout/v2"));
        assert_eq!(c.body["idempotency_key"], "backstop/checkout/v2");
    }
    // One rollback in flight, within its attempts: what backstop tried is
    // what reached the deployer (plus the refused connections).
    let text = d.metrics().await;
    let attempts = sum(
        &text,
        "backstop_action_attempts_total",
        &[("action", "rollback")],
    );
    if trouble == Trouble::Unreachable {
        assert!((3.0..=5.0).contains(&attempts), "{attempts} attempts");
    } else {
        assert_eq!(attempts, calls.len() as f64);
    }
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn b_webhook_answers_500() {
    rollback_webhook_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_webhook_answers_429() {
    rollback_webhook_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_webhook_hangs() {
    rollback_webhook_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_webhook_is_unreachable() {
    rollback_webhook_misbehaves(Trouble::Unreachable).await;
}

async fn pagerduty_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    pd.plan(&trouble.faults());
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let extra = format!(
        "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\", timeout: 300ms }}\n",
        key.path().display(),
        pd.url
    );
    let mut d = Daemon::start(&config(&app, "page", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        pd.down().await;
    }
    let queue = QueueWatch::start(&d, "pagerduty");
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("page", 2.0).await;
        pd.up().await;
    }
    d.wait_for("the trigger", Duration::from_secs(10), page("triggered"))
        .await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for("the resolve", Duration::from_secs(5), page("resolved"))
        .await;

    // PagerDuty took one trigger and one resolve; what it saw before (the
    // hung requests too) was the same event under the same dedup key.
    let accepted = pd.accepted();
    let taken: Vec<(String, String)> = accepted
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (field("event_action"), field("dedup_key"))
        })
        .collect();
    let want = |a: &str| (a.to_string(), DEDUP_KEY.to_string());
    assert_eq!(taken, [want("trigger"), want("resolve")], "{accepted:#?}");
    let seen = pd.seen();
    let statuses: Vec<u16> = seen.iter().map(|(s, _)| *s).collect();
    let mut expected = trouble.refusals();
    expected.extend([202, 202]);
    assert_eq!(statuses, expected);
    for (_, body) in &seen[..trouble.refusals().len()] {
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["dedup_key"], DEDUP_KEY);
    }
    // At most a trigger and a resolve wait, and nothing once delivered.
    assert!(
        (1..=2).contains(&queue.max()),
        "queue reached {}",
        queue.max()
    );
    let text = d.metrics().await;
    assert_eq!(
        sum(
            &text,
            "backstop_page_queue_length",
            &[("receiver", "pagerduty")]
        ),
        0.0
    );
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn b_pagerduty_answers_500() {
    pagerduty_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_pagerduty_answers_429() {
    pagerduty_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_pagerduty_hangs() {
    pagerduty_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_pagerduty_is_unreachable() {
    pagerduty_misbehaves(Trouble::Unreachable).await;
}

async fn alertmanager_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let am = FakeAlertmanager::start().await;
    am.plan(&trouble.faults());
    // A long resend interval: every post the fake sees is a delivery, not a reminder.
    let extra = format!(
        "page:\n  alertmanager: {{ url: \"{}\", timeout: 300ms, resend_interval: 10m }}\n",
        am.url()
    );
    let mut d = Daemon::start(&config(&app, "page", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        am.down().await;
    }
    let queue = QueueWatch::start(&d, "alertmanager");
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("page", 2.0).await;
        am.up().await;
    }
    d.wait_for(
        "the firing alert",
        Duration::from_secs(10),
        page("triggered"),
    )
    .await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for(
        "the resolved alert",
        Duration::from_secs(5),
        page("resolved"),
    )
    .await;

    // One alert (one label set, one start) taken firing, then resolved.
    let taken = am.taken();
    assert_eq!(taken.len(), 2, "{taken:#?}");
    let (firing, resolved) = (&taken[0], &taken[1]);
    assert!(!firing.resolved && resolved.resolved, "{taken:#?}");
    assert_eq!(firing.alert["labels"], resolved.alert["labels"]);
    assert_eq!(firing.alert["labels"]["rule"], RULE);
    assert_eq!(firing.alert["startsAt"], resolved.alert["startsAt"]);
    let posts = am.posts();
    let statuses: Vec<u16> = posts.iter().map(|(s, _)| *s).collect();
    let mut expected = trouble.refusals();
    expected.extend([200, 200]);
    assert_eq!(statuses, expected);
    for (_, body) in &posts[..trouble.refusals().len()] {
        assert_eq!(
            body[0]["labels"], firing.alert["labels"],
            "a retry is the same alert"
        );
    }
    // One alert per rule is all that is held.
    assert_eq!(queue.max(), 1);
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn b_alertmanager_answers_500() {
    alertmanager_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_alertmanager_answers_429() {
    alertmanager_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_alertmanager_hangs() {
    alertmanager_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_alertmanager_is_unreachable() {
    alertmanager_misbehaves(Trouble::Unreachable).await;
}

const NS: &str = "shop";
const DEPLOYMENT: &str = "/deployments/checkout";

async fn kubernetes_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let fake = FakeKube::start().await;
    checkout_cluster(&fake);
    let app = SampleApp::start("1.43.0").await.unwrap();
    match trouble {
        Trouble::ServerError => fake.fail_next("PATCH", DEPLOYMENT, 500, 2),
        Trouble::Throttled => fake.fail_next("PATCH", DEPLOYMENT, 429, 2),
        // Held far beyond the test: never applied, never answered.
        Trouble::Hang => fake.delay("PATCH", DEPLOYMENT, Duration::from_secs(3600), 2),
        Trouble::Unreachable => {}
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Like the in-cluster client: no read timeout of its own.
    let mut kube_config = kube::Config::new(fake.url().parse().unwrap());
    kube_config.default_namespace = NS.into();
    let mut options = backstop::Options::new("ignored-in-a-pod");
    options.kubernetes = Some(backstop::cluster::Connection {
        client: kube::Client::try_from(kube_config).unwrap(),
        namespace: NS.into(),
        pod: "checkout-5f7c9d8e4b-abcde".into(),
    });
    let extra = "rollback:\n  kubernetes: { deployment: checkout, timeout: 300ms }\n";
    let yaml = config(&app, "rollback", extra);
    let mut d = Daemon::start_with(&yaml, options).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        fake.down().await;
    }
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("rollback", 2.0).await;
        fake.up().await;
    }
    let e = d
        .wait_for(
            "the rollback outcome",
            Duration::from_secs(10),
            action("rollback"),
        )
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for(
        "the rule resolving",
        Duration::from_secs(3),
        rule_went(State::Ok),
    )
    .await;

    // One write applied; the refused and hung ones were not.
    assert_eq!(fake.patches().len(), 1);
    let patches: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    let mut expected = trouble.refusals();
    expected.push(200);
    assert_eq!(patches, expected);
    let text = d.metrics().await;
    let attempts = sum(
        &text,
        "backstop_action_attempts_total",
        &[("action", "rollback")],
    );
    assert!(attempts <= 5.0, "{attempts} attempts");
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn b_kubernetes_answers_500() {
    kubernetes_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_kubernetes_answers_429() {
    kubernetes_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_kubernetes_hangs() {
    kubernetes_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_kubernetes_is_unreachable() {
    kubernetes_misbehaves(Trouble::Unreachable).await;
}
