//! `kubectl rollout undo` parity: an unannotated ReplicaSet is revision 0,
//! and a reused ReplicaSet is as young as the rollout that made it current.

use super::{NS, deployment, outcome_after_failure, prevented, setup};
use k8s_openapi::api::apps::v1::ReplicaSet;

/// kubectl reads a ReplicaSet without `deployment.kubernetes.io/revision`
/// (adopted, say) as revision 0 and `rollout undo` goes back to it; so
/// does backstop, instead of refusing with no_previous_revision.
#[tokio::test]
async fn a_replicaset_without_the_revision_annotation_is_revision_0_like_kubectl() {
    let (fake, app) = setup().await;
    fake.modify::<ReplicaSet>(NS, "checkout-7d9f8b6c5d", |r| {
        r.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into();
    });
    fake.modify::<ReplicaSet>(NS, "checkout-6c8d7f5b9a", |r| {
        let annotations = r.metadata.annotations.as_mut().unwrap();
        annotations.remove("deployment.kubernetes.io/revision");
    });
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail.contains("from revision 3 to revision 0"),
        "{}",
        r.detail
    );
    let template = deployment(&fake).spec.unwrap().template;
    let image = template.spec.unwrap().containers[0].image.clone();
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/checkout:1.42.0")
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}

/// After `kubectl rollout undo` reused a ReplicaSet created two days ago,
/// the revision is as young as that rollout: it cannot have become current
/// before the revision it replaced (created a minute ago) existed. Judged
/// by the ReplicaSet's creation time, bake would page only.
#[tokio::test]
async fn a_reused_replicaset_is_as_young_as_its_rollout() {
    let (fake, app) = setup().await;
    let ago = |seconds: i64| {
        let t = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::from_secs(seconds);
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t))
    };
    fake.modify::<ReplicaSet>(NS, "checkout-5f7c9d8e4b", |rs| {
        rs.metadata.creation_timestamp = ago(2 * 86_400);
    });
    fake.modify::<ReplicaSet>(NS, "checkout-6c8d7f5b9a", |rs| {
        rs.metadata.creation_timestamp = ago(60);
    });
    let (s, r) = outcome_after_failure(&fake, &app).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert_eq!(prevented(&s, "health-down", "baked"), 0);
    s.shutdown().await;
    fake.assert_no_unexpected();
}
