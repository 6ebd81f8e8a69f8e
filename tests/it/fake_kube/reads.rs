//! Reads, lists, selectors, and what the fake refuses to serve.

use super::*;

#[tokio::test]
async fn get_returns_stored_objects_and_404_status_for_missing_ones() {
    let (fake, fx, client) = cluster().await;
    let d = Api::<Deployment>::default_namespaced(client.clone())
        .get("checkout")
        .await
        .unwrap();
    assert_eq!(d.uid(), Some(fx.deployment_uid));
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "3");

    let missing = status(
        Api::<Pod>::default_namespaced(client)
            .get("checkout-x")
            .await,
    );
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "pods \"checkout-x\" not found");
    fake.assert_no_unexpected();

    // The wire format itself, not only what kube makes of it.
    let url = format!(
        "{}/apis/apps/v1/namespaces/shop/deployments/nope",
        fake.url()
    );
    let raw = reqwest::get(url).await.unwrap();
    assert_eq!(raw.status(), 404);
    let body: Value = raw.json().await.unwrap();
    let expected = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "deployments.apps \"nope\" not found", "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn lists_filter_by_equality_and_set_based_selectors() {
    let (fake, fx, client) = cluster().await;
    let replicasets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let names = async |selector: &str| {
        let list = replicasets
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert!(
            list.metadata
                .resource_version
                .is_some_and(|v| !v.is_empty())
        );
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>()
    };
    let (r1, r2, r3) = (
        "checkout-7d9f8b6c5d",
        "checkout-6c8d7f5b9a",
        "checkout-5f7c9d8e4b",
    );
    // Name order, like etcd keys; the decoy matches `app=checkout` too.
    assert_eq!(
        names("app=checkout").await,
        [r3, r2, r1, "checkout-canary-6b7c8d9f5c"]
    );
    assert_eq!(names("app==checkout,track!=canary").await, [r3, r2, r1]);
    assert_eq!(
        names("pod-template-hash in (7d9f8b6c5d, 6c8d7f5b9a)").await,
        [r2, r1]
    );
    assert_eq!(
        names("app,track notin (canary),!nothing").await,
        [r3, r2, r1]
    );
    assert_eq!(names("track").await, ["checkout-canary-6b7c8d9f5c"]);
    assert!(names("app=payments").await.is_empty());

    let pods: Api<Pod> = Api::default_namespaced(client);
    let live = pods
        .list(&ListParams::default().labels(&fx.pod_selector()))
        .await
        .unwrap();
    assert_eq!(
        live.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        fx.pods
    );

    let bad = status(pods.list(&ListParams::default().labels("app in ()")).await);
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    assert!(
        bad.message.contains("values set can't be empty"),
        "{}",
        bad.message
    );
    fake.assert_no_unexpected();
}

#[test]
fn selector_parser_follows_the_kubernetes_grammar() {
    let labels: BTreeMap<String, String> = [("app", "checkout"), ("tier", "3")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    let matches = |s: &str| {
        let selector = Selector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        selector.matches(&labels)
    };
    // Listed one per `;`, since selectors contain commas.
    let yes = ";app;app=checkout;app == checkout;zone!=eu;zone notin (eu);!zone;tier>2;tier<4;tier>-1;\
               example.com/x!=y;app in (a,checkout),tier";
    for s in yes.split(';') {
        assert!(matches(s), "{s:?} should match");
    }
    for s in "zone;app!=checkout;zone in (eu);!app;tier>3;zone>1;app=checkout,zone".split(';') {
        assert!(!matches(s), "{s:?} should not match");
    }
    let bad = "app in ();app=b=c;app in (a;=x;app,;-bad=x;app=x y;tier>high;app notin x;\
               Upper.Case/x=y;app=-x";
    for s in bad.split(';') {
        assert!(Selector::parse(s).is_err(), "{s:?} should not parse");
    }
}

#[tokio::test]
async fn what_the_fake_does_not_serve_is_recorded_as_unexpected() {
    let (fake, _fx, client) = cluster().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert_eq!(
        refused(config_maps.get("backstop").await),
        (404, "NotFound".into())
    );
    let pods: Api<Pod> = Api::default_namespaced(client);
    let by_field = ListParams::default().fields("status.phase=Running");
    assert_eq!(refused(pods.list(&by_field).await).0, 400);
    let url = format!("{}/api/v1/namespaces/shop/pods", fake.url());
    let watch = reqwest::get(format!("{url}?watch=true")).await.unwrap();
    assert_eq!(watch.status(), 400);
    let http = reqwest::Client::new();
    let delete = http
        .delete(format!("{url}/checkout-5f7c9d8e4b-abcde"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404);

    let requests = fake.requests();
    let unexpected: Vec<_> = requests.iter().filter(|r| r.unexpected.is_some()).collect();
    assert_eq!(unexpected.len(), 4, "{unexpected:#?}");
    assert_eq!(
        unexpected[1].param("fieldSelector").as_deref(),
        Some("status.phase=Running")
    );
    let message = panic_message(|| fake.assert_no_unexpected());
    assert!(message.contains("4 unexpected request(s)"), "{message}");
    assert!(
        message.contains("GET /api/v1/namespaces/shop/configmaps/backstop"),
        "{message}"
    );
}

#[tokio::test]
async fn the_fixture_looks_like_two_rollouts() {
    let (fake, fx, _client) = cluster().await;
    let controller = |rs: &ReplicaSet| {
        let owners = rs.owner_references();
        owners
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone())
    };
    for (i, revision) in fx.revisions.iter().enumerate() {
        let rs: ReplicaSet = fake.get(&fx.namespace, &revision.replicaset).unwrap();
        assert_eq!(controller(&rs), Some(fx.deployment_uid.clone()));
        assert_eq!(
            rs.annotations()["deployment.kubernetes.io/revision"],
            (i + 1).to_string()
        );
        let spec = rs.spec.unwrap();
        assert_eq!(spec.replicas, Some(if i == 2 { 3 } else { 0 }));
        let template = spec.template.unwrap();
        let labels = template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["pod-template-hash"], revision.hash);
        let image = template.spec.unwrap().containers[0].image.clone();
        assert_eq!(image, Some(revision.image.clone()));
    }
    let canary: ReplicaSet = fake.get(&fx.namespace, &fx.canary_replicaset).unwrap();
    assert_eq!(canary.labels()["app"], "checkout");
    assert_eq!(controller(&canary), Some(fx.canary_deployment_uid.clone()));

    let rv = |pod: &str| {
        fake.get::<Pod>(&fx.namespace, pod)
            .unwrap()
            .resource_version()
    };
    let before = rv(&fx.pods[0]);
    let pod: Pod = fake.get(&fx.namespace, &fx.pods[0]).unwrap();
    assert_eq!(pod.owner_references()[0].uid, fx.current().uid);
    fake.set_restarts(&fx.namespace, &fx.pods[0], "checkout", 4);
    let pod: Pod = fake.get(&fx.namespace, &fx.pods[0]).unwrap();
    let statuses = pod.status.and_then(|s| s.container_statuses).unwrap();
    let restarts: Vec<(String, i32)> = statuses
        .into_iter()
        .map(|c| (c.name, c.restart_count))
        .collect();
    assert_eq!(restarts, [("backstop".into(), 0), ("checkout".into(), 4)]);
    assert_ne!(rv(&fx.pods[0]), before, "a kubelet status write is a write");
}
