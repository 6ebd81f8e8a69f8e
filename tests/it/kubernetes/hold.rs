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
