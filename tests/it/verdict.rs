//! `GET /api/v1/verdict` against the whole daemon: a case per verdict, in
//! both the JSON mode (Argo Rollouts' web metric: always 200) and the
//! status-code mode (Flagger's webhooks, which POST: 200, 412, 503).

use crate::common::{Daemon, get};
use backstop::demo::app::Behaviour;
use serde_json::Value;
use std::time::Duration;

/// No rule rolls back: every rule judges the release.
const JUDGE_ONLY: &str = r#"
service: checkout
targets:
  - name: health
    url: "{app}/health"
    interval: 200ms
    timeout: 150ms
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: health }
    do: []
"#;

/// The verdict's JSON and, in status mode, the status code, once the
/// verdict is `want` (or panic with the last answer after 5 s).
async fn verdict_becomes(s: &Daemon, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (code, body) = get(&s.admin("/api/v1/verdict")).await;
        assert_eq!(code, 200, "the JSON mode always answers 200: {body}");
        let doc: Value = serde_json::from_str(&body).expect("JSON");
        if doc["verdict"] == want {
            return doc;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the verdict did not become {want}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_mode(s: &Daemon) -> (u16, u16) {
    let url = s.admin("/api/v1/verdict?mode=status");
    let (get_code, _) = get(&url).await;
    // Flagger POSTs its webhook payload; the body is ignored.
    let post = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({"name": "checkout", "namespace": "shop", "phase": "Progressing"}))
        .send()
        .await
        .expect("POST the verdict");
    (get_code, post.status().as_u16())
}

#[tokio::test]
async fn a_healthy_revision_passes() {
    let s = Daemon::with_app(JUDGE_ONLY).await;
    let doc = verdict_becomes(&s, "pass").await;
    assert_eq!(doc["revision"], "v2");
    assert_eq!(doc["service"], "checkout");
    assert_eq!(doc["rules"][0]["name"], "health-down");
    assert_eq!(doc["rules"][0]["judged"], true);
    assert_eq!(doc["rules"][0]["state"], "ok");
    assert_eq!(doc["rules"][0]["evidence"]["kind"], "consecutive_failures");
    assert_eq!(status_mode(&s).await, (200, 200));
}

#[tokio::test]
async fn a_firing_rule_fails_the_revision() {
    let s = Daemon::with_app(JUDGE_ONLY).await;
    verdict_becomes(&s, "pass").await;
    s.app().set(Behaviour::Status(500));
    let doc = verdict_becomes(&s, "fail").await;
    assert_eq!(doc["rules"][0]["state"], "firing");
    assert!(
        doc["reason"].as_str().unwrap().contains("health-down"),
        "{doc}"
    );
    assert_eq!(status_mode(&s).await, (412, 412));
}

#[tokio::test]
async fn too_few_samples_are_inconclusive() {
    let s = Daemon::with_app(
        r#"
service: checkout
targets:
  - name: health
    url: "{app}/health"
    interval: 200ms
    timeout: 150ms
rules:
  - name: errors
    when: { error_rate: { above: "5%", window: 1m, min_samples: 100000 } }
    do: []
"#,
    )
    .await;
    // Give the engine a few probes, all good, and still far too few.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let doc = verdict_becomes(&s, "inconclusive").await;
    assert_eq!(doc["rules"][0]["breached"], Value::Null, "{doc}");
    assert!(
        doc["reason"].as_str().unwrap().contains("too few samples"),
        "{doc}"
    );
    let (code, _) = get(&s.admin("/api/v1/verdict?mode=status")).await;
    assert_eq!(code, 503);
}

/// With a rule that rolls back, only such rules judge: a page-only rule
/// firing does not fail the revision, and a rollback rule that is pending
/// makes it inconclusive.
#[tokio::test]
async fn only_rollback_rules_judge_and_pending_is_inconclusive() {
    let s = Daemon::with_app(
        r#"
service: checkout
targets:
  - name: health
    url: "{app}/health"
    interval: 200ms
    timeout: 150ms
rules:
  - name: gate
    when: { consecutive_failures: 2, target: health }
    for: 1h
    do: [rollback]
  - name: observe
    when: { consecutive_failures: 1, target: health }
    do: []
rollback:
  webhook: { url: "{app}/admin/rollback" }
  dry_run: true
"#,
    )
    .await;
    verdict_becomes(&s, "pass").await;
    s.app().set(Behaviour::Status(500));
    let doc = verdict_becomes(&s, "inconclusive").await;
    let rules = doc["rules"].as_array().unwrap();
    assert_eq!(rules[0]["judged"], true);
    assert_eq!(rules[0]["state"], "pending");
    assert_eq!(rules[1]["judged"], false);
    assert!(doc["reason"].as_str().unwrap().contains("pending"), "{doc}");
    assert_eq!(status_mode(&s).await, (503, 503));
}
