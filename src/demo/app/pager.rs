//! The sample app's PagerDuty: `POST /v2/enqueue` takes Events API v2
//! events as PagerDuty does (202 with the dedup key; 400 with the reasons
//! for an event PagerDuty would refuse), so the demo shows the incident
//! side over real HTTP: opened, updated, left open.

use serde_json::{Value, json};

/// The routing key the demo's configuration uses.
pub const ROUTING_KEY: &str = "demo0routing0key0000000000000000";

/// Check an event as PagerDuty would; the reasons it would refuse it.
pub fn refusals(event: &Value) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if event["routing_key"] != ROUTING_KEY {
        errors.push("Invalid routing key");
    }
    let action = event["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push("'event_action' is invalid");
    }
    if action != "trigger" && event["dedup_key"].as_str().is_none_or(str::is_empty) {
        errors.push("'dedup_key' is required for acknowledge and resolve");
    }
    if action == "trigger" {
        let p = &event["payload"];
        if p["summary"].as_str().is_none_or(str::is_empty) {
            errors.push("'payload.summary' is missing");
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            errors.push("'payload.source' is missing");
        }
        if !matches!(
            p["severity"].as_str(),
            Some("critical" | "error" | "warning" | "info")
        ) {
            errors.push("'payload.severity' is invalid");
        }
    }
    errors
}

/// The answer to an event: 202 and PagerDuty's body, or 400 and the reasons.
pub fn answer(event: &Value) -> (u16, Value) {
    let errors = refusals(event);
    if errors.is_empty() {
        let body = json!({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]});
        (202, body)
    } else {
        let body = json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
        (400, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_pagerduty_takes_and_says_why_it_refuses() {
        let ok = json!({
            "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "k",
            "payload": {"summary": "s", "source": "pod", "severity": "critical"}
        });
        assert_eq!(answer(&ok).0, 202);
        let bad = json!({"routing_key": "other", "event_action": "resolve"});
        let (status, body) = answer(&bad);
        assert_eq!(status, 400);
        assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    }
}
