//! Latency thresholds against timeouts. A probe is cut off at its timeout
//! and its answer counts at the time it took, so no answer is ever slower
//! than the timeout: a threshold at or past it can never be exceeded.

use super::error::{self, Problems};
use super::types::{Condition, Rule, Slo, Target};
use super::units::show;

/// Adds a problem for every latency threshold (`expect.max_latency`, a
/// `latency` rule's `above`, an SLO's `latency_threshold`) that is not
/// below the timeout of a target it applies to.
pub(super) fn check(p: &mut Problems, targets: &[Target], slos: &[Slo], rules: &[Rule]) {
    let why = "a probe is cut off at its timeout and counts at the time it took";
    for (i, t) in targets.iter().enumerate() {
        if let Some(max) = t.expect.max_latency.filter(|max| *max >= t.timeout) {
            p.add(
                &error::key(
                    &error::key(&error::index("targets", i), "expect"),
                    "max_latency",
                ),
                format!(
                    "{} is not below this target's timeout {}: {why}, so no answer is ever \
                     slower and this could never fail a probe; lower it below {} or raise timeout",
                    show(max),
                    show(t.timeout),
                    show(t.timeout)
                ),
            );
        }
    }
    for (i, s) in slos.iter().enumerate() {
        let Some(threshold) = s.latency_threshold else {
            continue;
        };
        if let Some(t) = s
            .targets
            .iter()
            // Traffic (indices past the targets) is the app's own latency:
            // no probe timeout cuts it.
            .filter_map(|t| targets.get(*t))
            .find(|t| threshold >= t.timeout)
        {
            p.add(
                &error::key(&error::index("slos", i), "latency_threshold"),
                format!(
                    "{} is not below the timeout {} of target {:?}: {why}, so every answer \
                     would be fast enough and the SLO would measure only availability; \
                     lower it below {}",
                    show(threshold),
                    show(t.timeout),
                    t.name,
                    show(t.timeout)
                ),
            );
        }
    }
    for (i, r) in rules.iter().enumerate() {
        let Condition::Latency { target, above, .. } = &r.when else {
            continue;
        };
        let Some(t) = targets.get(*target) else {
            continue;
        };
        if *above >= t.timeout {
            p.add(
                &[&error::index("rules", i), "when", "latency", "above"].join("."),
                format!(
                    "{} is not below the timeout {} of target {:?}: {why}, so no percentile \
                     can ever be above it and the rule could never fire; lower it below {}",
                    show(*above),
                    show(t.timeout),
                    t.name,
                    show(t.timeout)
                ),
            );
        }
    }
}
