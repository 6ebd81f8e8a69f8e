//! Slack and the notification webhook, beside the pager, against strict
//! fakes: every change of an incident is one message, in order (fired and
//! rolling back, rolled back, left open for a person); 429 and 500 are
//! retried, another 4xx is not; the URLs, which are credentials, appear
//! nowhere backstop shows.

use crate::common::fake_slack::{FakeNotify, FakeSlack};
use crate::common::faulty::Fault;
use crate::common::harness::page;
use crate::common::{Daemon, get};
use backstop::Event;
use backstop::demo::app::Behaviour;
use std::time::Duration;

fn config(slack: &FakeSlack, notify: &FakeNotify, actions: &str) -> String {
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
    do: {actions}
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
page:
  slack: {{ webhook_url: "{}" }}
  webhook: {{ url: "{}", headers: {{ X-Team: checkout }} }}
"#,
        slack.url(),
        notify.url()
    )
}

/// Wait until `n` records of `outcome` came from page receivers.
fn pages(outcome: &'static str, n: usize) -> impl FnMut(&Event) -> bool {
    let mut seen = 0;
    move |e| {
        seen += usize::from(page(outcome)(e));
        seen == n
    }
}

#[tokio::test]
async fn a_rolled_back_release_is_told_in_three_messages_to_each() {
    backstop::init_tls();
    let slack = FakeSlack::slack("s3cr3t-slack-token").await;
    let notify = FakeNotify::notify("/hooks/s3cr3t-notify").await;
    let mut s = Daemon::with_app(&config(&slack, &notify, "[rollback, page]")).await;
    s.app().deploy("v2", Behaviour::Status(500));
    // Fired, then the rollback's outcome, then left open: 2 triggers and a
    // resolve record per receiver.
    s.wait_for(
        "both receivers told of the resolve",
        Duration::from_secs(10),
        pages("resolved", 2),
    )
    .await;

    let texts: Vec<String> = slack
        .taken()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(
        texts[0].starts_with("checkout v2: /health failing, 3 failed probes in a row"),
        "{texts:#?}"
    );
    assert!(texts[0].ends_with("; rolling back"), "{texts:#?}");
    assert!(
        texts[1].ends_with("; rolled back to v1; needs a person"),
        "{texts:#?}"
    );
    assert!(texts[2].contains("stays open for a person"), "{texts:#?}");
    assert!(slack.seen().iter().all(|(status, _)| *status == 200));

    let events: Vec<serde_json::Value> = notify.taken();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["fired", "rollback", "left_open"]);
    // The rollback webhook's fields, as the deployer got them.
    let rollback = &s.app().rollbacks()[0].body;
    for key in ["service", "revision", "rule", "idempotency_key", "evidence"] {
        assert_eq!(events[0][key], rollback[key], "{key}");
    }
    assert_eq!(events[1]["rollback"]["outcome"], "succeeded");
    assert_eq!(notify.header("x-team"), ["checkout"; 3]);

    for path in ["/status", "/metrics", "/"] {
        let (_, body) = get(&s.admin(path)).await;
        assert!(!body.contains("s3cr3t"), "a receiver URL in {path}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_a_refusal_is_not() {
    backstop::init_tls();
    let slack = FakeSlack::slack("token").await;
    let notify = FakeNotify::notify("/hooks/x").await;
    slack.plan(&[Fault::Throttle(None), Fault::Status(500)]);
    notify.plan(&[Fault::Status(400)]);
    let mut s = Daemon::with_app(&config(&slack, &notify, "[page]")).await;
    s.app().set(Behaviour::Status(500));
    // The webhook's refusal comes first: Slack's 429 makes it wait.
    let refused = s
        .wait_for(
            "the webhook's refusal",
            Duration::from_secs(5),
            page("failed"),
        )
        .await;
    let Event::Action(r) = refused else {
        unreachable!()
    };
    assert!(
        r.detail
            .starts_with("the notification webhook refused the message: rejected: HTTP 400"),
        "{}",
        r.detail
    );
    s.wait_for(
        "Slack's message",
        Duration::from_secs(10),
        page("triggered"),
    )
    .await;
    let statuses: Vec<u16> = slack.seen().iter().map(|(code, _)| *code).collect();
    assert_eq!(statuses, [429, 500, 200]);
    assert_eq!(notify.seen().len(), 1, "a 400 is not retried");
    s.shutdown().await;
}

/// The fake refuses what Slack refuses, so a test that passes against it
/// means Slack would take the message.
#[tokio::test]
async fn the_slack_fake_refuses_what_slack_refuses() {
    backstop::init_tls();
    let slack = FakeSlack::slack("token").await;
    let client = reqwest::Client::new();
    let post = |url: String, ct: &'static str, body: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let json = "application/json";
    let cases = [
        (slack.url(), json, r#"{"text": "hello"}"#, 200, "ok"),
        (slack.url(), json, r#"{"blocks": []}"#, 400, "no_text"),
        (slack.url(), json, r#"{"text": ""}"#, 400, "no_text"),
        (slack.url(), json, "text=hello", 400, "invalid_payload"),
        (
            slack.url(),
            "text/plain",
            r#"{"text": "hello"}"#,
            400,
            "invalid_payload",
        ),
        (
            slack.url(),
            json,
            r#"{"text": "x", "blocks": [{"type": "banner"}]}"#,
            400,
            "invalid_blocks",
        ),
        (
            format!("{}x", slack.url()),
            json,
            r#"{"text": "hello"}"#,
            404,
            "no_service",
        ),
    ];
    for (url, ct, body, status, answer) in cases {
        assert_eq!(
            post(url, ct, body).await,
            (status, answer.to_string()),
            "{ct} {body}"
        );
    }
    assert_eq!(slack.taken().len(), 1);
}
