use super::*;
use crate::act::Fact;
use crate::act::words::RollbackNote;
use crate::rules::Evidence;
use std::time::SystemTime;

fn notice(rule: &str, firing: bool, failures: u32, actions: &[&'static str]) -> Notice {
    let fact = Fact {
        subject: "/health".into(),
        verb: "failing",
        what: format!("{failures} failed probes in a row"),
        limit: "3 in a row".into(),
    };
    Notice {
        rule: rule.into(),
        severity: Severity::Error,
        firing,
        service: "checkout".into(),
        revision: "v2".into(),
        summary: String::new(),
        fact,
        description: String::new(),
        evidence: Evidence::ConsecutiveFailures {
            target: "health".into(),
            failures,
            threshold: 3,
            last_failure: None,
        },
        actions: actions.to_vec(),
        rolled_back: false,
        rollback: None,
        at: SystemTime::now(),
    }
}

fn summary(step: &Step) -> String {
    match step {
        Step::Trigger(c) => c["summary"].as_str().unwrap().to_string(),
        other => panic!("not a trigger: {other:?}"),
    }
}

#[test]
fn rules_of_one_revision_share_one_incident_updated_with_the_rollback_and_left_open() {
    let mut i = Incident::default();
    let first = i.take(&notice("health-down", true, 3, &["page"]));
    assert_eq!(
        summary(&first),
        "checkout v2: /health failing, 3 failed probes in a row, limit 3 in a row; paging only, no rollback"
    );
    // A second rule that rolls back joins the same incident.
    let mut second = notice("health-long", true, 6, &["rollback", "page"]);
    second.severity = Severity::Critical;
    second.rollback = Some(RollbackNote::Started);
    let update = i.take(&second);
    assert_eq!(
        summary(&update),
        "checkout v2: /health failing, 3 failed probes in a row, limit 3 in a row; also health-long; rolling back"
    );
    let Step::Trigger(content) = &update else {
        unreachable!()
    };
    assert_eq!(content["severity"], "critical", "the most severe rule's");
    assert_eq!(
        content["custom_details"]["rules"].as_array().unwrap().len(),
        2
    );
    // The same notice again says nothing new.
    assert!(matches!(i.take(&second), Step::Nothing(_)));
    // The rollback's outcome updates it.
    let done = second.clone().with_rollback(RollbackNote::Done {
        outcome: ActionOutcome::Succeeded,
        detail: "webhook accepted the rollback of revision v2".into(),
        to: None,
    });
    let rolled = i.take(&done);
    assert!(
        summary(&rolled).ends_with("; rolled back; needs a person"),
        "{}",
        summary(&rolled)
    );
    let Step::Trigger(content) = &rolled else {
        unreachable!()
    };
    assert_eq!(content["custom_details"]["rollback"]["state"], "done");
    assert_eq!(
        content["custom_details"]["rollback"]["outcome"],
        "succeeded"
    );
    // A rule that fires later and is held back (already rolled back) adds
    // itself, not a second incident, and does not hide the rollback.
    let mut third = notice("error-rate", true, 9, &["rollback", "page"]);
    third.rollback = Some(RollbackNote::Prevented {
        reason: crate::act::Prevented::AlreadyRolledBack,
        detail: "revision v2 was already rolled back".into(),
    });
    let joined = i.take(&third);
    assert!(
        summary(&joined).contains("also health-long, error-rate; rolled back"),
        "{}",
        summary(&joined)
    );
    // The rules resolve: the incident stays open, once per rule.
    for rule in ["health-down", "health-long", "error-rate"] {
        assert_eq!(i.take(&notice(rule, false, 0, &["page"])), Step::LeftOpen);
    }
}

#[test]
fn resolved_when_the_last_rule_resolves_without_a_rollback() {
    let mut i = Incident::default();
    assert!(matches!(
        i.take(&notice("a", true, 3, &["page"])),
        Step::Trigger(_)
    ));
    assert!(matches!(
        i.take(&notice("b", true, 4, &["page"])),
        Step::Trigger(_)
    ));
    assert!(matches!(
        i.take(&notice("a", false, 0, &["page"])),
        Step::Nothing(_)
    ));
    assert_eq!(i.take(&notice("b", false, 0, &["page"])), Step::Resolve);
    // Nothing open: a stray resolve posts nothing; the next firing opens anew.
    assert!(matches!(
        i.take(&notice("b", false, 0, &["page"])),
        Step::Nothing(_)
    ));
    let again = i.take(&notice("a", true, 3, &["page"]));
    assert!(summary(&again).starts_with("checkout v2: /health failing, 3 failed"));
}

#[test]
fn a_rollback_outcome_after_every_rule_resolved_still_names_what_fired() {
    let mut i = Incident::default();
    let mut n = notice("health-down", true, 3, &["rollback", "page"]);
    n.rollback = Some(RollbackNote::Started);
    i.take(&n);
    let done = n.clone().with_rollback(RollbackNote::Done {
        outcome: ActionOutcome::Failed,
        detail: "webhook: HTTP 500".into(),
        to: None,
    });
    let step = i.take(&done);
    assert!(
        summary(&step).starts_with("checkout v2: /health failing"),
        "{}",
        summary(&step)
    );
    assert!(summary(&step).ends_with("rollback FAILED; needs a person"));
    // A failed rollback leaves the release running: resolve when ok again.
    assert_eq!(
        i.take(&notice("health-down", false, 0, &["rollback", "page"])),
        Step::Resolve
    );
}
