//! The first line of `/` and `/status`: what matters now, in one sentence
//! for the person who was just paged. A rollback of the running revision
//! outranks a firing rule, which outranks a pause, a pending rule and a
//! failing target; otherwise "all good".

use crate::act::{ActionOutcome, ActionRecord, Maintenance};
use crate::engine::EngineStatus;
use crate::rules::State;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Headline {
    /// `rolled_back`, `firing`, `warning`, `starting` or `ok`.
    pub level: &'static str,
    pub text: String,
}

/// The clock time of an RFC 3339 timestamp (`06:09:18 UTC`), or the
/// timestamp itself when it is not one.
fn clock(rfc3339: &str) -> String {
    match rfc3339.get(11..19) {
        Some(t) if rfc3339.ends_with('Z') => format!("{t} UTC"),
        _ => rfc3339.to_string(),
    }
}

pub fn of(
    revision: &str,
    engine: &EngineStatus,
    actions: &[ActionRecord],
    maintenance: Option<&Maintenance>,
) -> Headline {
    let rollback = actions
        .iter()
        .rev()
        .find(|a| a.action == "rollback" && a.outcome == ActionOutcome::Succeeded);
    if let Some(rb) = rollback.filter(|rb| rb.revision == revision) {
        let left_open = actions
            .iter()
            .any(|a| a.revision == revision && a.outcome == ActionOutcome::LeftOpen);
        let after = if left_open {
            "The incident stays open for a person: fix the release, then resolve it."
        } else {
            "Nothing resolves by itself: a person must look at the release."
        };
        return Headline {
            level: "rolled_back",
            text: format!(
                "{revision} was rolled back at {} by {}: {}. {after}",
                clock(&rb.at),
                rb.rule,
                rb.detail
            ),
        };
    }
    let of_state = |s: State| engine.rules.iter().filter(move |r| r.state == s);
    let firing: Vec<String> = of_state(State::Firing)
        .map(|r| {
            let mut line = format!(
                "{}: {}",
                r.name,
                r.summary.as_deref().unwrap_or("no evidence yet")
            );
            // Why the rule's rollback has not happened, when it has not.
            if let Some(a) = actions
                .iter()
                .rev()
                .find(|a| a.rule == r.name && a.action == "rollback")
                .filter(|a| a.outcome != ActionOutcome::Succeeded)
            {
                line.push_str(&format!(" (rollback {}: {})", a.outcome, a.detail));
            }
            line
        })
        .collect();
    if !firing.is_empty() {
        return Headline {
            level: "firing",
            text: format!("{revision} is failing. {}", firing.join("; ")),
        };
    }
    if let Some(m) = maintenance {
        return Headline {
            level: "warning",
            text: format!(
                "Automatic rollbacks and pages are paused until {}: {}",
                m.until, m.reason
            ),
        };
    }
    let pending: Vec<String> = of_state(State::Pending)
        .map(|r| {
            format!(
                "{} pending: {}",
                r.name,
                r.summary.as_deref().unwrap_or("no evidence yet")
            )
        })
        .collect();
    if !pending.is_empty() {
        return Headline {
            level: "warning",
            text: pending.join("; "),
        };
    }
    let down: Vec<String> = engine
        .targets
        .iter()
        .filter(|t| t.up == Some(false))
        .map(|t| {
            let why = t
                .last_failure
                .as_ref()
                .map_or(String::new(), |f| format!(": {}", f.detail));
            format!(
                "{} failing ({} in a row){why}",
                t.name, t.consecutive_failures
            )
        })
        .collect();
    if !down.is_empty() {
        return Headline {
            level: "warning",
            text: down.join("; "),
        };
    }
    if !engine.ready {
        return Headline {
            level: "starting",
            text: "Starting: waiting for the first probe of every target.".into(),
        };
    }
    Headline {
        level: "ok",
        text: format!(
            "All good: {revision}, {} targets up, {} rules ok.",
            engine.targets.len(),
            engine.rules.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_reads_the_time_of_day() {
        assert_eq!(clock("2026-12-06T06:09:18.123Z"), "06:09:18 UTC");
        assert_eq!(clock("soon"), "soon");
    }
}
