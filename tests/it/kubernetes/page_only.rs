//! Never hurt the app: a missing permission, an unreachable API server or
//! a cluster that is not what the configuration says leaves backstop
//! running in page-only mode (loud on /status, /, a metric, a log line and
//! an Event), never exiting; and the rollback token can come from a file
//! mounted into the sidecar only.

use super::*;
use backstop::config::Kubernetes;

async fn status(s: &Daemon) -> serde_json::Value {
    reqwest::get(format!("http://{}/status", s.running.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn page(s: &Daemon, path: &str) -> String {
    reqwest::get(format!("http://{}{path}", s.running.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_missing_permission_means_page_only_not_an_exit() {
    let (fake, app) = setup().await;
    fake.deny("patch", "deployments");
    let mut s = sidecar(&fake, &app, PODS[0], CONFIG)
        .await
        .expect("starts in page-only mode");

    let status = status(&s).await;
    let page_only = &status["rollback"]["page_only"];
    assert_eq!(page_only["cause"], "forbidden", "{status:#}");
    let message = page_only["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "page-only mode: automatic rollback is off because the service account may not \
             patch deployments.apps \"checkout\" in namespace shop"
        ),
        "{message}"
    );
    // It still knows its revision: only the write is missing.
    assert_eq!(status["revision"]["id"], "3");
    assert!(
        page(&s, "/")
            .await
            .contains("No automatic rollback (forbidden).")
    );
    let metrics = page(&s, "/metrics").await;
    assert!(
        metrics.contains("backstop_rollback_page_only{cause=\"forbidden\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("backstop_rollback_page_only{cause=\"unreachable\"} 0"),
        "{metrics}"
    );
    let events = fake.events();
    let event = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("BackstopPageOnly"))
        .expect("an Event on the Deployment");
    assert_eq!(event.involved_object.name.as_deref(), Some("checkout"));
    assert_eq!(event.message.as_deref(), Some(message));

    // A failing release is reported, not rolled back.
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.outcome, "prevented: page_only", "{}", r.detail);
    assert_eq!(r.detail, message);
    assert_eq!(prevented(&s, "health-down", "page_only"), 1);
    assert!(fake.patches().is_empty());
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn an_unreachable_api_server_means_page_only() {
    let (fake, app) = setup().await;
    fake.down().await;
    let s = sidecar(&fake, &app, PODS[0], CONFIG)
        .await
        .expect("starts in page-only mode");
    let status = status(&s).await;
    assert_eq!(
        status["rollback"]["page_only"]["cause"], "unreachable",
        "{status:#}"
    );
    let metrics = page(&s, "/metrics").await;
    assert!(
        metrics.contains("backstop_rollback_page_only{cause=\"unreachable\"} 1"),
        "{metrics}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_api_server_that_never_answers_means_page_only_within_the_timeout() {
    let (fake, app) = setup().await;
    fake.delay(
        "GET",
        "/pods/checkout-5f7c9d8e4b-abcde",
        Duration::from_secs(30),
        1,
    );
    let yaml = CONFIG.replace(
        "kubernetes: { deployment: checkout }",
        "kubernetes: { deployment: checkout, timeout: 300ms }",
    );
    let started = tokio::time::Instant::now();
    let s = sidecar(&fake, &app, PODS[0], &yaml).await.expect("starts");
    assert!(started.elapsed() < Duration::from_secs(3));
    let status = status(&s).await;
    let page_only = &status["rollback"]["page_only"];
    assert_eq!(page_only["cause"], "unreachable", "{status:#}");
    assert!(
        page_only["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within 300ms"),
        "{status:#}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_named_deployment_that_does_not_own_this_pod_means_page_only() {
    let (fake, app) = setup().await;
    let yaml = CONFIG.replace("deployment: checkout", "deployment: payments");
    let s = sidecar(&fake, &app, PODS[0], &yaml).await.expect("starts");
    let status = status(&s).await;
    let page_only = &status["rollback"]["page_only"];
    assert_eq!(page_only["cause"], "setup", "{status:#}");
    assert!(
        page_only["message"].as_str().unwrap().contains(
            "rollback.kubernetes.deployment is \"payments\", but this pod belongs to Deployment \"checkout\""
        ),
        "{status:#}"
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn no_pod_identity_means_page_only() {
    let app = SampleApp::start("1.43.0").await.unwrap();
    let mut options = backstop::Options::new("7");
    options.not_in_pod = Some("rollback.kubernetes needs POD_NAME from the downward API".into());
    let s = Daemon::try_start(&CONFIG.replace("{app}", &app.url("")), options)
        .await
        .expect("starts");
    let status = status(&s).await;
    let page_only = &status["rollback"]["page_only"];
    assert_eq!(page_only["cause"], "not_in_pod", "{status:#}");
    assert!(
        page_only["message"]
            .as_str()
            .unwrap()
            .contains("needs POD_NAME from the downward API"),
        "{status:#}"
    );
    assert_eq!(status["revision"]["id"], "7");
    s.shutdown().await;
}

#[tokio::test]
async fn the_token_file_is_what_the_client_sends() {
    let fake = FakeKube::start().await;
    checkout_cluster(&fake);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sidecar-only.token.value").unwrap();
    let mut config = kube::Config::new(fake.url().parse().unwrap());
    config.default_namespace = NS.into();
    // What a kubeconfig or the pod's own account would have sent.
    config.auth_info.token = Some("the-pods-own-token".to_string().into());
    let k = Kubernetes {
        deployment: None,
        namespace: None,
        timeout: Duration::from_secs(5),
        container: "backstop".into(),
        token_file: Some(token.clone()),
        gitops: Default::default(),
        argocd_namespace: "argocd".into(),
    };
    let config = backstop::cluster::with_token_file(config, k.token_file.as_deref());
    let client = kube::Client::try_from(config).unwrap();
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client, NS);
    deployments.get("checkout").await.unwrap();
    let sent: Vec<_> = fake
        .requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(
        sent,
        vec![Some("Bearer sidecar-only.token.value".to_string())]
    );
    fake.assert_no_unexpected();
}

/// Through `backstop::run`, as the binary runs: page-only mode tries again
/// on its own, and an API server that comes back turns rollback on.
#[tokio::test]
async fn page_only_mode_tries_again_and_recovers_when_the_api_server_is_back() {
    let (fake, app) = setup().await;
    fake.down().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backstop.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\n{}",
        CONFIG.replace("{app}", &app.url(""))
    );
    std::fs::write(&file, &yaml).unwrap();
    let config = backstop::config::load(&file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options = backstop::Options::new("ignored-in-a-pod");
    options.kubernetes = Some(Connection {
        client: fake.client(NS),
        namespace: NS.into(),
        pod: PODS[0].into(),
    });
    options.page_only_retry = Duration::from_millis(200);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(backstop::run(
        config,
        listener,
        options,
        async move {
            let _ = stopped.await;
        },
        Some((file, Duration::from_secs(60))),
    ));
    let status = || async {
        reqwest::get(format!("http://{addr}/status"))
            .await
            .ok()?
            .json::<serde_json::Value>()
            .await
            .ok()
    };
    let cause = |s: &serde_json::Value| s["rollback"]["page_only"]["cause"].clone();
    let mut seen = None;
    for _ in 0..100 {
        if let Some(s) = status().await {
            seen = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cause(&seen.expect("/status answers")), "unreachable");
    fake.up().await;
    let mut recovered = false;
    for _ in 0..100 {
        if status()
            .await
            .is_some_and(|s| s["rollback"]["page_only"].is_null())
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "still page-only: {:#?}", status().await);
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("backstop_rollback_page_only{cause=\"unreachable\"} 0"),
        "{metrics}"
    );
    // Rollback is on: a failing release is rolled back.
    app.set(Behaviour::Status(500));
    let mut rolled = false;
    for _ in 0..100 {
        if !fake.patches().is_empty() {
            rolled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rolled, "no rollback after recovering");
    let _ = stop.send(());
    daemon.await.unwrap().unwrap();
    fake.assert_no_unexpected();
}
