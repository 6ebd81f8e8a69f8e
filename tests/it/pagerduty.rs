//! Paging through PagerDuty Events v2, against a strict fake that refuses
//! what the real service refuses: one incident per revision (trigger,
//! updates and resolve with one dedup key), an incident left open after a
//! rollback, the posts of a multi-rule bad release counted, 429/500
//! retried, 400 not.

use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::harness::page;
use crate::common::{Daemon, get};
use backstop::Event;
use backstop::demo::app::Behaviour;
use std::io::Write;
use std::time::Duration;

fn config(pd: &FakePagerDuty, key_file: &std::path::Path, rule: &str) -> String {
    format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{{app}}/health"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
{rule}
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}" }}
"#,
        key_file.display(),
        pd.url
    )
}

async fn setup(rule: &str) -> (FakePagerDuty, Daemon, tempfile::NamedTempFile) {
    backstop::init_tls();
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let s = Daemon::with_app(&config(&pd, key.path(), rule)).await;
    (pd, s, key)
}

#[tokio::test]
async fn a_page_rule_triggers_then_resolves_with_one_dedup_key() {
    let (pd, mut s, _key) = setup("    severity: warning\n    do: [page]").await;
    s.app().set(Behaviour::Status(500));
    s.wait_for("the trigger", Duration::from_secs(5), page("triggered"))
        .await;
    s.app().set(Behaviour::Healthy);
    s.wait_for("the resolve", Duration::from_secs(5), page("resolved"))
        .await;

    let events = pd.accepted();
    assert_eq!(events.len(), 2, "{events:#?}");
    let (trigger, resolve) = (&events[0], &events[1]);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "backstop/local/checkout/v2");
    let p = &trigger["payload"];
    assert_eq!(p["severity"], "warning");
    assert_eq!(p["component"], "checkout");
    assert_eq!(p["class"], "consecutive_failures");
    let summary = p["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("checkout v2: /health failing, 3 failed probes in a row (last: "),
        "{summary}"
    );
    assert!(
        summary.ends_with(", limit 3 in a row; paging only, no rollback"),
        "{summary}"
    );
    let rule = &p["custom_details"]["rules"][0];
    assert_eq!(rule["rule"], "health-down");
    assert_eq!(rule["evidence"]["threshold"], 3);
    assert!(
        rule["why"]
            .as_str()
            .unwrap()
            .contains("3 consecutive failures")
    );
    assert_eq!(p["custom_details"]["revision"], "v2");
    assert!(
        p["custom_details"].get("note").is_none(),
        "this rule does not roll back"
    );
    assert!(
        trigger["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/status")
    );
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);

    // The routing key never leaves for anywhere but PagerDuty.
    for path in ["/status", "/metrics", "/"] {
        let (_, body) = get(&s.admin(path)).await;
        assert!(!body.contains(&pd.routing_key), "routing key in {path}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn after_a_rollback_the_incident_stays_open() {
    let (pd, mut s, _key) = setup("    do: [rollback, page]").await;
    s.app().deploy("v2", Behaviour::Status(500));
    s.wait_for("the trigger", Duration::from_secs(5), page("triggered"))
        .await;
    // The webhook rolls the app back to v1, the rule resolves ...
    s.wait_for(
        "the incident left open",
        Duration::from_secs(5),
        page("left_open"),
    )
    .await;
    let events = pd.accepted();
    // The trigger, then its update with the rollback's outcome (the two
    // merge when the update is queued before the trigger left); no resolve.
    assert!((1..=2).contains(&events.len()), "{events:#?}");
    assert!(
        events.iter().all(|e| e["event_action"] == "trigger"),
        "no resolve after a rollback: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["dedup_key"] == events[0]["dedup_key"])
    );
    let last = events.last().unwrap();
    let update = &last["payload"]["custom_details"]["rollback"];
    assert_eq!(update["outcome"], "succeeded", "{update}");
    assert!(
        update["detail"]
            .as_str()
            .unwrap()
            .starts_with("webhook accepted the rollback of revision v2"),
        "{update}"
    );
    let summary = last["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.ends_with("; rolled back to v1; needs a person"),
        "{summary}"
    );
    let p = &events[0]["payload"];
    assert_eq!(
        p["severity"], "critical",
        "rollback rules default to critical"
    );
    assert!(
        p["custom_details"]["note"]
            .as_str()
            .unwrap()
            .contains("not resolved automatically")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let (pd, mut s, _key) = setup("    do: [page]").await;
    pd.fail_next(&[429, 500]);
    s.app().set(Behaviour::Status(500));
    s.wait_for("the trigger", Duration::from_secs(10), page("triggered"))
        .await;
    let statuses: Vec<u16> = pd.seen().iter().map(|(code, _)| *code).collect();
    assert_eq!(statuses, [429, 500, 202]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_refused_event_is_not_retried() {
    let (pd, mut s, _key) = setup("    do: [page]").await;
    pd.fail_next(&[400]);
    s.app().set(Behaviour::Status(500));
    let e = s
        .wait_for("the refusal", Duration::from_secs(5), page("failed"))
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert!(r.detail.contains("HTTP 400"), "{}", r.detail);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pd.seen().len(), 1);
    s.shutdown().await;
}

/// Two rules fire for one bad release, the second rolls it back: one
/// incident, and exactly one post per new thing to say: opened by the
/// first rule, updated when the second joins and the rollback starts,
/// updated with the rollback's outcome; no resolve, and no post repeated.
#[tokio::test]
async fn a_multi_rule_bad_release_is_one_incident_of_three_posts() {
    let rules = "    do: [page]
  - name: health-long
    when: { consecutive_failures: 6, target: health }
    do: [rollback, page]";
    let (pd, mut s, _key) = setup(rules).await;
    // The webhook refuses twice, so the rollback's outcome comes well after
    // the second rule's page (each its own post, not merged in the queue).
    s.app().fail_webhook(&[500, 500]);
    s.app().deploy("v2", Behaviour::Status(500));
    let left_open = |n: usize| {
        let mut seen = 0;
        move |e: &Event| {
            seen += usize::from(page("left_open")(e));
            seen == n
        }
    };
    s.wait_for(
        "both rules left open",
        Duration::from_secs(10),
        left_open(2),
    )
    .await;
    let events = pd.accepted();
    let summaries: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["summary"].as_str().unwrap_or("(resolve)"))
        .collect();
    assert_eq!(events.len(), 3, "{summaries:#?}");
    assert!(events.iter().all(|e| e["event_action"] == "trigger"));
    assert!(
        events
            .iter()
            .all(|e| e["dedup_key"] == "backstop/local/checkout/v2")
    );
    assert_eq!(pd.incident("backstop/local/checkout/v2"), ["opened"]);
    assert!(
        summaries[0].ends_with("; paging only, no rollback"),
        "{summaries:#?}"
    );
    assert!(
        summaries[1].contains("; also health-long; rolling back"),
        "{summaries:#?}"
    );
    assert!(
        summaries[2].ends_with("; also health-long; rolled back to v1; needs a person"),
        "{summaries:#?}"
    );
    assert_eq!(events[2]["payload"]["severity"], "critical");
    assert_eq!(pd.seen().len(), 3, "nothing refused, nothing sent twice");
    s.shutdown().await;
}
