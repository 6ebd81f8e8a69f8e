//! What a notice becomes on the wire: a Slack message (`text` for the
//! notification, `blocks` for the channel) and the notification webhook's
//! JSON (the rollback webhook's fields, then the incident's).

use super::super::words::RollbackNote;
use super::super::{ActionOutcome, Notice, RollbackRequest};
use serde_json::{Value, json};

/// Slack's limits on a section's text and a context element's.
const SECTION_MAX: usize = 3000;
const CONTEXT_MAX: usize = 2000;

/// What happened, for the start of a message and the webhook's `event`.
fn event(n: &Notice) -> &'static str {
    match (&n.rollback, n.firing) {
        (_, false) if n.rolled_back => "left_open",
        (_, false) => "resolved",
        (Some(RollbackNote::Done { .. }), true) => "rollback",
        (_, true) => "fired",
    }
}

/// The text a person reads first.
fn headline(n: &Notice) -> String {
    match event(n) {
        "left_open" => format!(
            "{}; the release was rolled back, so the incident stays open for a person",
            n.summary
        ),
        _ => n.summary.clone(),
    }
}

pub fn slack(n: &Notice, status_url: &str) -> Value {
    let icon = match event(n) {
        "resolved" => ":large_green_circle:",
        "left_open" => ":warning:",
        "rollback" => match &n.rollback {
            Some(RollbackNote::Done {
                outcome: ActionOutcome::Succeeded,
                ..
            }) => ":rewind:",
            _ => ":warning:",
        },
        _ => ":red_circle:",
    };
    let text = headline(n);
    let mut why = format!(
        "rule `{}` · severity {} · revision {} · {}",
        n.rule,
        n.severity.as_str(),
        n.revision,
        n.evidence
    );
    if let Some(RollbackNote::Done {
        outcome, detail, ..
    }) = &n.rollback
    {
        why.push_str(&format!(" · rollback {outcome}: {detail}"));
    }
    json!({
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": cut(&format!("{icon} *{}*", escape(&text)), SECTION_MAX) },
            },
            {
                "type": "context",
                "elements": [
                    { "type": "mrkdwn", "text": cut(&escape(&why), CONTEXT_MAX) },
                    { "type": "mrkdwn", "text": format!("<{}|backstop /status>", escape(status_url)) },
                ],
            },
        ],
    })
}

pub fn webhook(n: &Notice, status_url: &str) -> Value {
    let request = RollbackRequest {
        service: n.service.clone(),
        revision: n.revision.clone(),
        rule: n.rule.clone(),
        reason: n.evidence.to_string(),
        evidence: n.evidence.clone(),
        fired_at: super::super::rfc3339(n.at),
        idempotency_key: format!("backstop/{}/{}", n.service, n.revision),
    };
    let mut body = json!(request);
    body["event"] = json!(event(n));
    body["summary"] = json!(headline(n));
    body["fact"] = json!(n.fact);
    body["severity"] = json!(n.severity.as_str());
    body["actions"] = json!(n.actions);
    body["firing"] = json!(n.firing);
    body["status_url"] = json!(status_url);
    if let Some(note) = &n.rollback {
        body["rollback"] = json!(note);
    }
    body
}

/// Slack's mrkdwn control characters, escaped as Slack asks.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::Fact;
    use crate::config::Severity;
    use crate::rules::Evidence;
    use std::time::SystemTime;

    fn notice() -> Notice {
        Notice {
            rule: "health-down".into(),
            severity: Severity::Critical,
            firing: true,
            service: "checkout".into(),
            revision: "v2".into(),
            summary: "checkout v2: /health failing, 3 failed probes in a row (last: <html>), limit 3 in a row; rolling back".into(),
            fact: Fact {
                subject: "/health".into(),
                verb: "failing",
                what: "3 failed probes in a row".into(),
                limit: "3 in a row".into(),
            },
            description: String::new(),
            evidence: Evidence::ConsecutiveFailures {
                target: "health".into(),
                failures: 3,
                threshold: 3,
                last_failure: Some("<html>".into()),
            },
            actions: vec!["rollback", "page"],
            rolled_back: false,
            rollback: Some(RollbackNote::Started),
            at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn slack_gets_the_summary_as_text_and_escaped_blocks() {
        let body = slack(&notice(), "http://pod:9464/status");
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .starts_with("checkout v2: /health failing")
        );
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            section.starts_with(":red_circle: *checkout v2"),
            "{section}"
        );
        assert!(section.contains("(last: &lt;html&gt;)"), "{section}");
        let why = body["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert!(
            why.contains("health: 3 consecutive failures (threshold 3)"),
            "{why}"
        );
        assert_eq!(
            body["blocks"][1]["elements"][1]["text"],
            "<http://pod:9464/status|backstop /status>"
        );
    }

    #[test]
    fn the_webhook_carries_the_rollback_webhooks_fields_and_the_incidents() {
        let n = notice();
        let body = webhook(&n, "http://pod:9464/status");
        let rollback = serde_json::to_value(RollbackRequest {
            service: "checkout".into(),
            revision: "v2".into(),
            rule: "health-down".into(),
            reason: n.evidence.to_string(),
            evidence: n.evidence.clone(),
            fired_at: crate::act::rfc3339(n.at),
            idempotency_key: "backstop/checkout/v2".into(),
        })
        .unwrap();
        for (key, value) in rollback.as_object().unwrap() {
            assert_eq!(&body[key], value, "{key}");
        }
        assert_eq!(body["event"], "fired");
        assert_eq!(body["rollback"]["state"], "started");
        assert_eq!(body["fact"]["subject"], "/health");
        let mut resolved = n.clone();
        (resolved.firing, resolved.rolled_back, resolved.rollback) = (false, true, None);
        let body = webhook(&resolved, "x");
        assert_eq!(body["event"], "left_open");
        assert!(
            body["summary"]
                .as_str()
                .unwrap()
                .ends_with("stays open for a person")
        );
    }
}
