//! Patches, injected faults and delays, Events and access reviews.

use super::*;

#[tokio::test]
async fn json_patch_applies_bumps_resource_version_and_generation() {
    let (fake, _fx, client) = cluster().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let before = deployments.get("checkout").await.unwrap();
    let rv = before.resource_version().unwrap();
    let after = patch(&deployments, json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "checkout:1.42.0"},
        {"op": "add", "path": "/metadata/annotations/backstop.dev~1rolled-back-from", "value": "3"}
    ]))
    .await
    .unwrap();

    let new_rv: u64 = after.resource_version().unwrap().parse().unwrap();
    assert!(new_rv > rv.parse().unwrap(), "{new_rv} after {rv}");
    assert_eq!(
        after.meta().generation,
        before.meta().generation.map(|g| g + 1)
    );
    assert_eq!(after.annotations()["backstop.dev/rolled-back-from"], "3");
    assert_eq!(after.status, before.status, "status is not writable here");
    assert_eq!(after.creation_timestamp(), before.creation_timestamp());
    assert_eq!(fake.get::<Deployment>("shop", "checkout"), Some(after));
    assert_eq!(fake.patches().len(), 1);
    let sent = fake.requests().pop().unwrap();
    assert_eq!(
        sent.content_type.as_deref(),
        Some("application/json-patch+json")
    );
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn a_stale_resource_version_in_a_patch_is_a_conflict() {
    let (fake, _fx, client) = cluster().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let seen = resource_version(&deployments).await;
    // Another replica writes in between.
    fake.modify("shop", "checkout", |d: &mut Deployment| {
        d.annotations_mut().insert("other".into(), "replica".into());
    });
    let conflict = status(
        patch(
            &deployments,
            json!([
                {"op": "replace", "path": "/metadata/resourceVersion", "value": seen},
                {"op": "replace", "path": "/spec/replicas", "value": 4}
            ]),
        )
        .await,
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on deployments.apps \"checkout\": the object has been \
         modified; please apply your changes to the latest version and try again"
    );

    // The same race through the hook: even a fresh read loses.
    let fresh = resource_version(&deployments).await;
    fake.on_patch(|store| {
        store.modify("shop", "checkout", |d: &mut Deployment| {
            d.spec.as_mut().unwrap().replicas = Some(5);
        });
    });
    let guarded = json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": fresh}]);
    assert_eq!(
        refused(patch(&deployments, guarded).await),
        (409, "Conflict".into())
    );
    assert!(fake.patches().is_empty());
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn patches_that_cannot_apply_or_break_the_object_are_invalid() {
    let (fake, _fx, client) = cluster().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let rv = fake.resource_version();
    let revision = "/metadata/annotations/deployment.kubernetes.io~1revision";
    for ops in [
        json!([{"op": "test", "path": revision, "value": "2"},
               {"op": "replace", "path": "/spec/replicas", "value": 1}]),
        json!([{"op": "replace", "path": "/metadata/annotations/missing", "value": "x"}]),
        json!([{"op": "replace", "path": "/metadata/name", "value": "other"}]),
        json!([{"op": "replace", "path": "/metadata/uid", "value": "0000"}]),
        json!([{"op": "replace", "path": "/spec/replicas", "value": "three"}]),
        json!([{"op": "remove", "path": "/spec/selector"}]),
        json!([{"op": "replace", "path": "/spec/template/metadata/labels/app", "value": "x"}]),
        json!([{"op": "remove", "path": "/spec/template/spec/containers/0/image"}]),
    ] {
        let e = status(patch(&deployments, ops.clone()).await);
        assert_eq!(
            (e.code, e.reason.as_str()),
            (422, "Invalid"),
            "{ops}: {}",
            e.message
        );
    }
    assert_eq!(
        fake.resource_version(),
        rv,
        "a refused patch stores nothing"
    );
    assert!(fake.patches().is_empty());
    fake.assert_no_unexpected();

    // An unknown field is dropped with a warning, as by the real server, but
    // the fake reports it: the client meant to change something.
    let typo = json!([{"op": "add", "path": "/spec/replica", "value": 1}]);
    patch(&deployments, typo.clone()).await.unwrap();
    assert!(panic_message(|| fake.assert_no_unexpected()).contains("spec.replica"));
    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..Default::default()
    };
    let refusal = deployments
        .patch("checkout", &strict, &json_patch(typo))
        .await;
    assert_eq!(refused(refusal), (422, "Invalid".into()));
}

#[tokio::test]
async fn a_merge_patch_is_refused_and_reported() {
    let (fake, _fx, client) = cluster().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let merge = Patch::Merge(json!({"spec": {"replicas": 1}}));
    let refusal = deployments
        .patch("checkout", &PatchParams::default(), &merge)
        .await;
    assert_eq!(refused(refusal), (415, "UnsupportedMediaType".into()));
    let message = panic_message(|| fake.assert_no_unexpected());
    assert!(message.contains("PATCH /apis/apps/v1/namespaces/shop/deployments/checkout"));
    assert!(
        message.contains("application/merge-patch+json"),
        "{message}"
    );
}

#[tokio::test]
#[should_panic(expected = "1 unexpected request")]
async fn assert_no_unexpected_panics_on_a_strategic_merge_patch() {
    let (fake, _fx, client) = cluster().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let smp = Patch::Strategic(json!({"spec": {"replicas": 1}}));
    let _ = deployments
        .patch("checkout", &PatchParams::default(), &smp)
        .await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn injected_failures_answer_first_then_the_real_thing() {
    let (fake, _fx, client) = cluster().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    fake.fail_next("GET", "/deployments/checkout", 500, 2);
    for _ in 0..2 {
        assert_eq!(
            refused(deployments.get("checkout").await),
            (500, "InternalError".into())
        );
    }
    deployments.get("checkout").await.unwrap();
    let codes: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(codes, [500, 500, 200]);

    fake.fail_next("PATCH", "/deployments/checkout", 409, 1);
    let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]);
    assert_eq!(
        refused(patch(&deployments, ops).await),
        (409, "Conflict".into())
    );
    assert!(fake.patches().is_empty(), "injected before handling");
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn delays_hold_only_the_matching_requests() {
    let (fake, fx, client) = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let by = Duration::from_millis(300);
    fake.delay("GET", &format!("/pods/{}", fx.pods[0]), by, 1);
    let started = tokio::time::Instant::now();
    pods.get(&fx.pods[0]).await.unwrap();
    assert!(started.elapsed() >= by);
    let started = tokio::time::Instant::now();
    pods.get(&fx.pods[0]).await.unwrap();
    assert!(started.elapsed() < by, "only once");
}

fn event(reason: &str, involved_namespace: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"generateName": "checkout.backstop-"},
        "involvedObject": {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
            "namespace": involved_namespace
        },
        "reason": reason, "message": "rolled back from revision 3 to 2", "type": "Warning",
        "source": {"component": "backstop"}, "count": 1
    }))
    .unwrap()
}

#[tokio::test]
async fn events_are_validated_and_named_by_the_server() {
    let (fake, _fx, client) = cluster().await;
    let events: Api<Event> = Api::default_namespaced(client);
    let pp = PostParams::default();
    let created = events
        .create(&pp, &event("RolledBack", "shop"))
        .await
        .unwrap();
    let name = created.name_any();
    let prefix = "checkout.backstop-";
    assert!(
        name.starts_with(prefix) && name.len() == prefix.len() + 5,
        "{name}"
    );
    assert!(created.uid().is_some() && created.creation_timestamp().is_some());
    assert!(created.resource_version().is_some());
    assert_eq!(fake.events(), [created]);

    let ok = || event("RolledBack", "shop");
    for (bad, field) in [
        (event("", "shop"), "reason: Required value"),
        (event("RolledBack", "payments"), "involvedObject.namespace"),
        (
            Event {
                type_: Some("Error".into()),
                ..ok()
            },
            "type: Unsupported value",
        ),
        (
            Event {
                metadata: Default::default(),
                ..ok()
            },
            "name or generateName is required",
        ),
    ] {
        let e = status(events.create(&pp, &bad).await);
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        assert!(
            e.message.starts_with("Event \"") && e.message.contains(field),
            "{}",
            e.message
        );
    }
    let mut elsewhere = ok();
    elsewhere.metadata.namespace = Some("payments".into());
    assert_eq!(refused(events.create(&pp, &elsewhere).await).0, 400);
    assert_eq!(fake.events().len(), 1);
    assert!(fake.events_v1().is_empty());
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn events_v1_need_the_reporting_fields() {
    let (fake, _fx, client) = cluster().await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::default_namespaced(client);
    let mut body = json!({
        "metadata": {"generateName": "checkout.backstop-"},
        "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                      "namespace": "shop"},
        "reason": "RolledBack", "note": "rolled back", "type": "Normal", "action": "Rollback",
        "reportingInstance": "checkout-5f7c9d8e4b-abcde",
        "eventTime": "2026-01-01T00:00:00.000000Z"
    });
    let pp = PostParams::default();
    let e = status(
        events
            .create(&pp, &serde_json::from_value(body.clone()).unwrap())
            .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("reportingController: Required value"),
        "{}",
        e.message
    );

    body["reportingController"] = json!("backstop.dev/rollback");
    events
        .create(&pp, &serde_json::from_value(body).unwrap())
        .await
        .unwrap();
    assert_eq!(fake.events_v1().len(), 1);
    assert!(fake.events().is_empty(), "stored apart from core/v1 Events");
    fake.assert_no_unexpected();
}

fn review(verb: &str, resource: &str) -> SelfSubjectAccessReview {
    serde_json::from_value(json!({"spec": {"resourceAttributes": {
        "verb": verb, "group": "apps", "resource": resource, "namespace": "shop", "name": "checkout"
    }}}))
    .unwrap()
}

#[tokio::test]
async fn access_reviews_answer_from_the_deny_list() {
    let (fake, _fx, client) = cluster().await;
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client);
    fake.deny("patch", "deployments");
    let pp = PostParams::default();
    let denied = reviews
        .create(&pp, &review("patch", "deployments"))
        .await
        .unwrap();
    let denied = denied.status.unwrap();
    assert!(!denied.allowed && denied.reason.is_some_and(|r| !r.is_empty()));
    let allowed = reviews
        .create(&pp, &review("get", "deployments"))
        .await
        .unwrap();
    assert!(allowed.status.unwrap().allowed);
    assert_eq!(
        allowed.spec,
        review("get", "deployments").spec,
        "the review is echoed"
    );

    let empty = SelfSubjectAccessReview::default();
    assert_eq!(
        refused(reviews.create(&pp, &empty).await),
        (422, "Invalid".into())
    );
    let codes: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(codes, [201, 201, 422]);
    fake.assert_no_unexpected();
}
