//! backstop in a pod, against the strict fake API server through the real
//! `kube` client: identity, `kubectl rollout undo` semantics, refusals,
//! racing sidecars, retries, crash loops, Events and the bake window.

use crate::common::Daemon;
use crate::common::fake_kube::{FakeKube, checkout_cluster};
use crate::common::harness::action;
use backstop::Event;
use backstop::act::ActionRecord;
use backstop::cluster::Connection;
use backstop::demo::app::{Behaviour, SampleApp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use std::time::Duration;

mod crashloop;
mod gitops;
mod hold;
mod page_only;
mod parity;

const NS: &str = "shop";
const PODS: [&str; 3] = [
    "checkout-5f7c9d8e4b-abcde",
    "checkout-5f7c9d8e4b-fghij",
    "checkout-5f7c9d8e4b-klmno",
];

const CONFIG: &str = r#"
service: checkout
targets:
  - name: health
    url: "{app}/health"
    interval: 100ms
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: health }
    do: [rollback]
  - name: crashloop
    when: { restarts: { above: 3, window: 10m } }
    do: [rollback]
rollback:
  kubernetes: { deployment: checkout }
"#;

/// backstop as a sidecar in `pod`, probing `app`.
async fn sidecar(
    fake: &FakeKube,
    app: &SampleApp,
    pod: &str,
    yaml: &str,
) -> Result<Daemon, String> {
    let mut options = backstop::Options::new("ignored-in-a-pod");
    options.kubernetes = Some(Connection {
        client: fake.client(NS),
        namespace: NS.into(),
        pod: pod.into(),
    });
    options.restart_poll = Duration::from_millis(100);
    Daemon::try_start(&yaml.replace("{app}", &app.url("")), options).await
}

/// The first rollback outcome (succeeded, failed, prevented: ...).
async fn rollback_outcome(s: &mut Daemon) -> ActionRecord {
    let within = Duration::from_secs(10);
    match s
        .wait_for("a rollback outcome", within, action("rollback"))
        .await
    {
        Event::Action(r) => r,
        _ => unreachable!(),
    }
}

fn prevented(s: &Daemon, rule: &str, reason: &str) -> u64 {
    s.running.telemetry().act.prevented(rule, reason)
}

async fn setup() -> (FakeKube, SampleApp) {
    let fake = FakeKube::start().await;
    checkout_cluster(&fake);
    let app = SampleApp::start("1.43.0").await.unwrap();
    (fake, app)
}

fn deployment(fake: &FakeKube) -> Deployment {
    fake.get::<Deployment>(NS, "checkout")
        .expect("deployment exists")
}

#[tokio::test]
async fn finds_its_deployment_and_revision_from_the_replicaset() {
    let (fake, app) = setup().await;
    let s = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    let status: serde_json::Value = reqwest::get(format!("http://{}/status", s.running.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["revision"]["id"], "3");
    assert_eq!(status["rollback"]["backend"], "kubernetes");
    let metrics = reqwest::get(format!("http://{}/metrics", s.running.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("backstop_revision_info{revision=\"3\",service=\"checkout\"} 1"),
        "{metrics}"
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn rollback_is_what_kubectl_rollout_undo_would_write() {
    let (fake, app) = setup().await;
    let before = deployment(&fake).metadata.annotations.unwrap();
    let last_applied = before["kubectl.kubernetes.io/last-applied-configuration"].clone();
    let mut s = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail.contains("from revision 3 to revision 2"),
        "{}",
        r.detail
    );

    let patches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/json-patch+json")
    );

    // What `kubectl rollout undo deployment/checkout` computes for these
    // objects: revision 2's template without pod-template-hash, and the
    // annotations kubectl keeps (from the Deployment) or copies (from the
    // ReplicaSet). `team` lives only on the Deployment and is dropped.
    let d = deployment(&fake);
    let template = serde_json::to_value(&d.spec.unwrap().template).unwrap();
    let rs2 = fake.get::<ReplicaSet>(NS, "checkout-6c8d7f5b9a").unwrap();
    let mut expected = serde_json::to_value(rs2.spec.unwrap().template.unwrap()).unwrap();
    expected["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    assert_eq!(
        template["spec"]["containers"][0]["image"],
        "registry.example.com/checkout:1.42.0"
    );
    assert_eq!(
        template["metadata"]["labels"],
        serde_json::json!({"app": "checkout"})
    );
    assert_eq!(template, expected);
    let ann = d.metadata.annotations.unwrap();
    let kubectl: Vec<(&str, &str)> = ann
        .iter()
        .filter(|(k, _)| !k.starts_with("backstop.dev/"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        kubectl,
        vec![
            ("deployment.kubernetes.io/revision", "3"),
            (
                "kubectl.kubernetes.io/last-applied-configuration",
                last_applied.as_str()
            ),
            ("kubernetes.io/change-cause", "deploy 1.42.0"),
        ]
    );
    assert_eq!(ann["backstop.dev/rolled-back-from-revision"], "3");
    assert_eq!(ann["backstop.dev/rolled-back-to-revision"], "2");
    assert_eq!(ann["backstop.dev/rolled-back-rule"], "health-down");
    assert_eq!(ann["backstop.dev/rolled-back-by"], PODS[0]);
    assert_eq!(ann["backstop.dev/bad-templates"], "5f7c9d8e4b");

    let events = fake.events();
    let e = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("BackstopRollback"))
        .expect("an Event");
    assert_eq!(e.involved_object.kind.as_deref(), Some("Deployment"));
    assert_eq!(e.involved_object.name.as_deref(), Some("checkout"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert!(
        e.message.as_deref().unwrap().contains("health-down"),
        "{:?}",
        e.message
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}

/// Runs one sidecar against a failing app and returns its first rollback outcome.
async fn outcome_after_failure(fake: &FakeKube, app: &SampleApp) -> (Daemon, ActionRecord) {
    let mut s = sidecar(fake, app, PODS[0], CONFIG).await.unwrap();
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    (s, r)
}

#[tokio::test]
async fn refuses_without_an_earlier_revision() {
    let (fake, app) = setup().await;
    // The older ReplicaSets now belong to someone else: nothing to go back to.
    for rs in ["checkout-7d9f8b6c5d", "checkout-6c8d7f5b9a"] {
        fake.modify::<ReplicaSet>(NS, rs, |r| {
            r.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into();
        });
    }
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "prevented: no_previous_revision", "{}", r.detail);
    assert_eq!(prevented(&s, "health-down", "no_previous_revision"), 1);
    assert!(fake.patches().is_empty());
    let refused = fake
        .events()
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("BackstopRollbackRefused"));
    assert!(refused.is_some(), "a refusal leaves an Event too");
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn refuses_a_paused_deployment() {
    let (fake, app) = setup().await;
    fake.modify::<Deployment>(NS, "checkout", |d| {
        d.spec.as_mut().unwrap().paused = Some(true)
    });
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "prevented: paused", "{}", r.detail);
    assert!(fake.patches().is_empty());
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn three_racing_sidecars_roll_back_exactly_once() {
    let (fake, app) = setup().await;
    let mut sidecars = Vec::new();
    for pod in PODS {
        sidecars.push(sidecar(&fake, &app, pod, CONFIG).await.unwrap());
    }
    // Hold the writes back so all three have read the same Deployment
    // before the first write lands: the other two must then meet a 409.
    let identity_reads = fake.requests().len();
    fake.delay(
        "PATCH",
        "/deployments/checkout",
        Duration::from_millis(600),
        3,
    );
    app.set(Behaviour::Status(500));
    let mut outcomes = Vec::new();
    for s in &mut sidecars {
        outcomes.push(rollback_outcome(s).await.outcome.to_string());
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "prevented: already_rolled_back",
            "prevented: already_rolled_back",
            "succeeded"
        ]
    );
    assert_eq!(fake.patches().len(), 1, "exactly one write succeeded");
    let conflicts = fake.requests()[identity_reads..]
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 409)
        .count();
    assert_eq!(
        conflicts, 2,
        "the two losers were refused by the precondition"
    );
    let stood_down: u64 = sidecars
        .iter()
        .map(|s| prevented(s, "health-down", "already_rolled_back"))
        .sum();
    assert_eq!(stood_down, 2);
    for s in sidecars {
        s.shutdown().await;
    }
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn a_conflict_is_re_read_and_re_decided() {
    let (fake, app) = setup().await;
    fake.fail_next("PATCH", "/deployments/checkout", 409, 1);
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    let reqs = fake.requests();
    let patches = reqs.iter().filter(|r| r.method == "PATCH").count();
    let reads = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/deployments/checkout"))
        .count();
    assert_eq!(patches, 2);
    assert!(reads >= 3, "identity + one read per attempt, got {reads}");
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let (fake, app) = setup().await;
    fake.fail_next("PATCH", "/deployments/checkout", 500, 2);
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert_eq!(fake.patches().len(), 1);
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn forbidden_is_not_retried() {
    let (fake, app) = setup().await;
    fake.fail_next("PATCH", "/deployments/checkout", 403, 1);
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "failed", "{}", r.detail);
    assert!(r.detail.contains("403"), "{}", r.detail);
    let patches = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn a_crash_loop_rolls_back() {
    let (fake, app) = setup().await;
    let mut s = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    fake.set_restarts(NS, PODS[1], "checkout", 2);
    fake.set_restarts(NS, PODS[2], "checkout", 2);
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.rule, "crashloop");
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.evidence.to_string().contains("4 container restarts"),
        "{}",
        r.evidence
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn a_revision_older_than_bake_is_not_rolled_back() {
    let (fake, app) = setup().await;
    fake.modify::<ReplicaSet>(NS, "checkout-5f7c9d8e4b", |rs| {
        let two_hours_ago =
            k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(2);
        rs.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(two_hours_ago),
        );
    });
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "prevented: baked", "{}", r.detail);
    assert!(fake.patches().is_empty());
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn dry_run_plans_everything_but_the_write() {
    let (fake, app) = setup().await;
    let yaml = CONFIG.replace(
        "kubernetes: { deployment: checkout }",
        "kubernetes: { deployment: checkout }\n  dry_run: true",
    );
    let mut s = sidecar(&fake, &app, PODS[0], &yaml).await.unwrap();
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.outcome, "dry_run");
    assert!(
        r.detail
            .contains("would roll back Deployment shop/checkout from revision 3 to revision 2"),
        "{}",
        r.detail
    );
    assert!(fake.patches().is_empty());
    assert!(
        fake.events()
            .iter()
            .any(|e| e.reason.as_deref() == Some("BackstopRollbackDryRun"))
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}
