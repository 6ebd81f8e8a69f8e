//! The rollback decision on hand-written objects (no server), and error
//! classification. The whole round trip through the real client is in
//! tests/it/kubernetes.rs against the strict fake API server.

use super::plan::{self, BAD_TEMPLATES, Plan, Why};
use super::*;
use crate::act::Prevented;
use serde_json::json;

const UID: &str = "d-uid";

fn deployment(revision: i64, image: &str, extra: serde_json::Value) -> Deployment {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "checkout", "namespace": "shop", "uid": UID, "resourceVersion": "41",
            "annotations": {
                "deployment.kubernetes.io/revision": revision.to_string(),
                "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Deployment\"}",
                "kubernetes.io/change-cause": "deploy 1.43.0",
                "team": "payments"
            }
        },
        "spec": {
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": template(image, None)
        }
    });
    merge(&mut d, extra);
    serde_json::from_value(d).unwrap()
}

fn template(image: &str, hash: Option<&str>) -> serde_json::Value {
    let mut labels = json!({"app": "checkout"});
    if let Some(h) = hash {
        labels["pod-template-hash"] = json!(h);
    }
    json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "checkout", "image": format!("registry.example.com/checkout:{image}")}]}
    })
}

fn replicaset(revision: i64, image: &str, hash: &str, owner: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("checkout-{hash}"), "namespace": "shop",
            "labels": {"app": "checkout", "pod-template-hash": hash},
            "annotations": {
                "deployment.kubernetes.io/revision": revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
                "kubernetes.io/change-cause": format!("deploy {image}")
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout", "uid": owner, "controller": true}]
        },
        "spec": {
            "selector": {"matchLabels": {"app": "checkout", "pod-template-hash": hash}},
            "template": template(image, Some(hash))
        }
    }))
    .unwrap()
}

fn merge(into: &mut serde_json::Value, extra: serde_json::Value) {
    match (into, extra) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn history() -> Vec<ReplicaSet> {
    vec![
        replicaset(1, "1.41.0", "aaa", UID),
        replicaset(2, "1.42.0", "bbb", UID),
        replicaset(3, "1.43.0", "ccc", UID),
        // Matches the selector but belongs to another Deployment.
        replicaset(9, "canary", "zzz", "other-uid"),
    ]
}

const WHY: Why = Why {
    rule: "health-down",
    pod: "checkout-ccc-abcde",
    at: "2026-11-23T19:00:00.000Z",
};

fn refusal(p: Plan) -> Prevented {
    match p {
        Plan::Refuse(why, _) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn rolls_back_to_the_previous_revision_of_this_deployment() {
    let all = history();
    let Plan::Patch {
        patch,
        from,
        to,
        to_replicaset,
    } = plan::plan(&deployment(3, "1.43.0", json!({})), &all[2], &all, &WHY)
    else {
        panic!("expected a patch");
    };
    assert_eq!((from, to, to_replicaset.as_str()), (3, 2, "checkout-bbb"));
    assert_eq!(
        patch[0],
        json!({"op": "replace", "path": "/metadata/resourceVersion", "value": "41"})
    );
    assert_eq!(
        patch[1],
        json!({"op": "replace", "path": "/spec/template", "value": template("1.42.0", None)})
    );
    let ann = &patch[2]["value"];
    // kubectl: these from the Deployment, the rest from the ReplicaSet;
    // Deployment-only annotations (team) are dropped.
    assert_eq!(ann["deployment.kubernetes.io/revision"], "3");
    assert_eq!(
        ann["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"kind\":\"Deployment\"}"
    );
    assert_eq!(ann["kubernetes.io/change-cause"], "deploy 1.42.0");
    assert!(ann.get("team").is_none());
    assert!(
        ann.get("deployment.kubernetes.io/desired-replicas")
            .is_none(),
        "kubectl keeps the Deployment's (absent) value"
    );
    assert_eq!(ann[BAD_TEMPLATES], "ccc");
    assert_eq!(ann[plan::FROM_REVISION], "3");
    assert_eq!(ann[plan::TO_REVISION], "2");
    assert_eq!(ann[plan::RULE], "health-down");
}

#[test]
fn refuses_when_there_is_nothing_to_go_back_to() {
    let all = history();
    let only = vec![all[2].clone(), all[3].clone()];
    assert_eq!(
        refusal(plan::plan(
            &deployment(3, "1.43.0", json!({})),
            &all[2],
            &only,
            &WHY
        )),
        Prevented::NoPreviousRevision
    );
}

#[test]
fn refuses_a_paused_deployment() {
    let all = history();
    let d = deployment(3, "1.43.0", json!({"spec": {"paused": true}}));
    assert_eq!(
        refusal(plan::plan(&d, &all[2], &all, &WHY)),
        Prevented::Paused
    );
}

#[test]
fn refuses_when_the_previous_template_is_the_current_one() {
    let mut all = history();
    all[1] = replicaset(2, "1.43.0", "bbb", UID);
    assert_eq!(
        refusal(plan::plan(
            &deployment(3, "1.43.0", json!({})),
            &all[2],
            &all,
            &WHY
        )),
        Prevented::TemplateUnchanged
    );
}

#[test]
fn refuses_when_this_pod_is_not_the_newest_revision() {
    let all = history();
    // Someone rolled forward to revision 4 meanwhile.
    let d = deployment(4, "1.44.0", json!({}));
    assert_eq!(
        refusal(plan::plan(&d, &all[2], &all, &WHY)),
        Prevented::NotNewestRevision
    );
    // Same revision number, but the template changed under us.
    let d = deployment(3, "1.44.0", json!({}));
    assert_eq!(
        refusal(plan::plan(&d, &all[2], &all, &WHY)),
        Prevented::NotNewestRevision
    );
}

#[test]
fn stands_down_when_another_replica_already_rolled_this_revision_back() {
    let all = history();
    let d = deployment(
        3,
        "1.43.0",
        json!({"metadata": {"annotations": {BAD_TEMPLATES: "ccc", plan::BY: "checkout-ccc-fghij"}}}),
    );
    let Plan::Refuse(why, detail) = plan::plan(&d, &all[2], &all, &WHY) else {
        panic!()
    };
    assert_eq!(why, Prevented::AlreadyRolledBack);
    assert!(detail.contains("checkout-ccc-fghij"), "{detail}");
}

#[test]
fn never_rolls_back_to_a_revision_it_rolled_back_from() {
    // 1.42.0 (bbb) was rolled back from before; the release after it is
    // bad too: go to 1.41.0, not to bbb (no ping-pong).
    let all = history();
    let d = deployment(
        3,
        "1.43.0",
        json!({"metadata": {"annotations": {BAD_TEMPLATES: "bbb"}}}),
    );
    let Plan::Patch { to, patch, .. } = plan::plan(&d, &all[2], &all, &WHY) else {
        panic!()
    };
    assert_eq!(to, 1);
    assert_eq!(patch[2]["value"][BAD_TEMPLATES], "bbb,ccc");
}

#[test]
fn conflicts_are_retried_and_forbidden_is_not() {
    let status = |code: u16| {
        kube::Error::Api(
            kube::core::Status::failure("x", "y")
                .with_code(code)
                .boxed(),
        )
    };
    assert!(matches!(classify(status(409)), Attempt::Retry { .. }));
    assert!(matches!(classify(status(503)), Attempt::Retry { .. }));
    assert!(matches!(classify(status(429)), Attempt::Retry { .. }));
    for code in [403, 404, 422] {
        assert!(
            matches!(classify(status(code)), Attempt::Reject(_)),
            "{code}"
        );
    }
}

/// kubectl reads a ReplicaSet without the revision annotation (adopted,
/// say) as revision 0 and rolls back to it; one whose annotation is not a
/// number is skipped.
#[test]
fn an_unannotated_replicaset_is_revision_0_like_kubectl() {
    let mut adopted = replicaset(1, "1.41.0", "aaa", UID);
    adopted
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove("deployment.kubernetes.io/revision");
    let current = replicaset(1, "1.42.0", "bbb", UID);
    let all = vec![adopted, current.clone()];
    let Plan::Patch {
        from,
        to,
        to_replicaset,
        ..
    } = plan::plan(&deployment(1, "1.42.0", json!({})), &current, &all, &WHY)
    else {
        panic!("expected a patch");
    };
    assert_eq!((from, to, to_replicaset.as_str()), (1, 0, "checkout-aaa"));

    let mut garbled = all;
    garbled[0]
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("deployment.kubernetes.io/revision".into(), "one".into());
    let refused = plan::plan(
        &deployment(1, "1.42.0", json!({})),
        &current,
        &garbled,
        &WHY,
    );
    assert_eq!(refusal(refused), Prevented::NoPreviousRevision);
}
