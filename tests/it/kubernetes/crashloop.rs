//! Crash loops are the app's: the restarts of backstop's own container do
//! not count, and `containers: [...]` counts only the ones it names.

use super::{CONFIG, NS, PODS, rollback_outcome, setup, sidecar};
use crate::common::Daemon;
use std::time::Duration;

/// The crash loop rule's restart count in `/status`, once the pods were
/// looked at.
async fn crashloop_restarts(s: &Daemon) -> Option<u64> {
    let status: serde_json::Value = reqwest::get(s.admin("/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rules = status["rules"].as_array().unwrap();
    let rule = rules.iter().find(|r| r["name"] == "crashloop").unwrap();
    assert_eq!(rule["state"], "ok", "{rule}");
    rule["evidence"]["restarts"].as_u64()
}

async fn wait_for_restarts(s: &Daemon, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while crashloop_restarts(s).await != Some(n) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the crash loop rule never counted {n} restarts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// backstop's own container OOM-killed four times is not the app crash
/// looping: only the app's restarts count, and four of them roll back.
#[tokio::test]
async fn the_sidecars_own_restarts_are_not_the_apps_crash_loop() {
    let (fake, app) = setup().await;
    let mut s = sidecar(&fake, &app, PODS[0], CONFIG).await.unwrap();
    wait_for_restarts(&s, 0).await;
    fake.set_restarts(NS, PODS[1], "backstop", 2);
    fake.set_restarts(NS, PODS[2], "backstop", 2);
    fake.set_restarts(NS, PODS[1], "checkout", 1);
    wait_for_restarts(&s, 1).await;
    assert!(fake.patches().is_empty());
    fake.set_restarts(NS, PODS[2], "checkout", 3);
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.rule, "crashloop");
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.evidence
            .to_string()
            .contains("4 container restarts (every container but backstop)"),
        "{}",
        r.evidence
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}

/// `containers: [...]` counts only the containers it names.
#[tokio::test]
async fn a_restarts_rule_counts_only_the_containers_it_names() {
    let (fake, app) = setup().await;
    let config = CONFIG.replace(
        "restarts: { above: 3, window: 10m }",
        "restarts: { above: 0, window: 10m, containers: [backstop] }",
    );
    let mut s = sidecar(&fake, &app, PODS[0], &config).await.unwrap();
    wait_for_restarts(&s, 0).await;
    fake.set_restarts(NS, PODS[1], "checkout", 5);
    fake.set_restarts(NS, PODS[1], "backstop", 1);
    let r = rollback_outcome(&mut s).await;
    assert_eq!(r.rule, "crashloop");
    assert!(
        r.evidence
            .to_string()
            .contains("1 container restarts (backstop)"),
        "{}",
        r.evidence
    );
    s.shutdown().await;
    fake.assert_no_unexpected();
}
