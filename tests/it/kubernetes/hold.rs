//! The cluster-wide pause: `backstop.dev/paused-until` on the Deployment
//! holds every replica's rollbacks, each sidecar reading it before it acts,
//! and says so once in an Event per sidecar; a pause whose time has passed
//! holds nothing.

use super::*;

fn annotate(fake: &FakeKube, until: &str) {
    fake.modify(NS, "checkout", |d: &mut Deployment| {
        let a = d.metadata.annotations.get_or_insert_default();
        a.insert("backstop.dev/paused-until".into(), until.into());
        a.insert(
            "backstop.dev/paused-reason".into(),
            "database migration, OPS-42".into(),
        );
    });
}

#[tokio::test]
async fn the_deployment_annotation_holds_every_replica() {
    let (fake, app) = setup().await;
    let until = k8s_openapi::jiff::Timestamp::now() + std::time::Duration::from_secs(3600);
    annotate(&fake, &until.to_string());
    let mut first = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    let mut second = sidecar(&fake, &app, PODS[1], CONFIG).await.unwrap();
    app.set(Behaviour::Status(500));
    for s in [&mut first, &mut second] {
        let r = rollback_outcome(s).await;
        assert_eq!(r.outcome, "prevented: hold", "{}", r.detail);
        assert!(
            r.detail
                .starts_with("Deployment checkout is paused for backstop until")
                && r.detail
                    .contains("(database migration, OPS-42): not rolled back"),
            "{}",
            r.detail
        );
        assert_eq!(prevented(s, "health-down", "hold"), 1);
    }
    assert!(fake.patches().is_empty());
    let held = fake
        .events()
        .iter()
        .filter(|e| e.reason.as_deref() == Some("BackstopRollbackRefused"))
        .count();
    assert_eq!(held, 2);
    first.shutdown().await;
    second.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn a_pause_that_ended_holds_nothing() {
    let (fake, app) = setup().await;
    annotate(&fake, "2020-01-01T00:00:00Z");
    let mut s = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    s.shutdown().await;
    fake.assert_no_unexpected();
}

/// The backend itself, asked three times as the actions stage would ask
/// while the rule keeps firing: the pause is said once, then lifted, and
/// the next ask rolls back.
#[tokio::test]
async fn a_held_rollback_is_said_once_and_goes_ahead_after_the_pause() {
    use backstop::act::RollbackRequest;
    use backstop::act::kube::KubeBackend;
    use backstop::act::retry::Backoff;
    use backstop::cluster::Identity;
    use backstop::config::{GitOps, Kubernetes};
    use backstop::rules::Evidence;

    let (fake, _app) = setup().await;
    let until = k8s_openapi::jiff::Timestamp::now() + std::time::Duration::from_secs(3600);
    annotate(&fake, &until.to_string());
    let ctx = Connection {
        client: fake.client(NS),
        namespace: NS.into(),
        pod: PODS[0].into(),
    };
    let id = Identity::discover(&ctx, None, None).await.unwrap();
    let config = Kubernetes {
        deployment: None,
        namespace: None,
        timeout: Duration::from_secs(5),
        container: "backstop".into(),
        token_file: None,
        gitops: GitOps::Suspend,
        argocd_namespace: "argocd".into(),
    };
    let backend = KubeBackend::new(ctx, id, config, Backoff::default());
    let request = RollbackRequest {
        service: "checkout".into(),
        revision: "3".into(),
        rule: "health-down".into(),
        reason: "health failed 3 times in a row".into(),
        evidence: Evidence::ConsecutiveFailures {
            target: "health".into(),
            failures: 3,
            threshold: 3,
            last_failure: None,
        },
        fired_at: "2026-12-06T10:00:00Z".into(),
        idempotency_key: "backstop/checkout/3".into(),
    };
    let refused = |r: &Result<backstop::act::Rolled, _>| {
        matches!(
            r,
            Ok(backstop::act::Rolled::Refused(
                backstop::act::Prevented::Hold,
                _
            ))
        )
    };
    assert!(refused(&backend.rollback(&request, false, |_| {}).await));
    assert!(refused(&backend.rollback(&request, false, |_| {}).await));
    let said = |fake: &FakeKube, reason: &str| {
        fake.events()
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .count()
    };
    assert_eq!(said(&fake, "BackstopRollbackRefused"), 1);

    fake.modify(NS, "checkout", |d: &mut Deployment| {
        d.metadata
            .annotations
            .get_or_insert_default()
            .remove("backstop.dev/paused-until");
    });
    let done = backend.rollback(&request, false, |_| {}).await;
    assert!(
        matches!(done, Ok(backstop::act::Rolled::Back { .. })),
        "{done:?}"
    );
    assert_eq!(said(&fake, "BackstopRollback"), 1);
    fake.assert_no_unexpected();
}

/// The whole daemon: a rollback held by a short pause is asked again while
/// the rule still fires (every 30 s, the guard's pause after a failure),
/// and happens once the pause is over. Real time: about 30 s.
#[tokio::test]
async fn a_rule_still_firing_when_the_pause_ends_rolls_back() {
    let (fake, app) = setup().await;
    let until = k8s_openapi::jiff::Timestamp::now() + std::time::Duration::from_secs(2);
    annotate(&fake, &until.to_string());
    let mut s = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.outcome, "prevented: hold", "{}", r.detail);
    let within = Duration::from_secs(45);
    let again = s
        .wait_for(
            "a rollback after the pause",
            within,
            |e| matches!(e, Event::Action(r) if r.action == "rollback" && r.outcome == "succeeded"),
        )
        .await;
    assert!(matches!(again, Event::Action(_)));
    assert_eq!(fake.patches().len(), 1);
    s.shutdown().await;
    fake.assert_no_unexpected();
}
