//! What changed between two configurations, by name: computed once per
//! reload and read by every stage (the engine, the probers, the actions
//! stage, the receivers), so they agree on what "the same" means.
//!
//! Positions in a YAML list are not identities: a target, SLO or rule is the
//! same across a reload when it has the same name and the same definition,
//! whatever else was inserted, removed or reordered around it. A rule is
//! also only the same when everything it reads is: its targets, its SLO,
//! and for an all-targets rule the set of targets itself.

use super::{Condition, Config, Rule, Slo};

/// Per item of the new configuration: the index of the same item in the
/// old one, if it is the same.
pub type Mapping = Vec<Option<usize>>;

/// The difference between a running configuration and its successor.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDiff {
    /// Targets with the same name and definition. Their probes keep running.
    pub targets: Mapping,
    /// Per source (targets, then traffic entries, as rules and SLOs index
    /// them): the same source's index in the old configuration. A traffic
    /// entry is the same when its selectors are and it reads the same target.
    pub sources: Mapping,
    /// SLOs with the same name, objective, threshold and (same) targets.
    pub slos: Mapping,
    /// Rules with the same name and definition whose inputs are the same.
    pub rules: Mapping,
    /// Which receivers must be rebuilt (their settings changed).
    pub receivers: ReceiverChanges,
}

/// Receivers whose settings changed; the others keep running as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverChanges {
    pub alertmanager: bool,
    pub pagerduty: bool,
    pub slack: bool,
    pub webhook: bool,
    pub grafana: bool,
}

impl ReceiverChanges {
    /// Every receiver (all built, all told).
    pub const ALL: ReceiverChanges = ReceiverChanges {
        alertmanager: true,
        pagerduty: true,
        slack: true,
        webhook: true,
        grafana: true,
    };

    pub fn any(self) -> bool {
        self.alertmanager || self.pagerduty || self.slack || self.webhook || self.grafana
    }

    /// Changed in either.
    pub fn union(self, other: ReceiverChanges) -> ReceiverChanges {
        ReceiverChanges {
            alertmanager: self.alertmanager || other.alertmanager,
            pagerduty: self.pagerduty || other.pagerduty,
            slack: self.slack || other.slack,
            webhook: self.webhook || other.webhook,
            grafana: self.grafana || other.grafana,
        }
    }
}

impl ConfigDiff {
    pub fn new(old: &Config, new: &Config) -> ConfigDiff {
        // A new trust store means a new probe client for every target.
        let same_tls = old.tls == new.tls;
        let targets: Mapping = new
            .targets
            .iter()
            .map(|t| {
                let j = old.targets.iter().position(|o| o.name == t.name)?;
                (same_tls && old.targets[j] == *t).then_some(j)
            })
            .collect();
        let mut sources = targets.clone();
        sources.extend(new.traffic.iter().map(|t| {
            let j = old.traffic.iter().position(|o| o.name == t.name)?;
            let o = &old.traffic[j];
            let same = o.requests == t.requests
                && o.errors == t.errors
                && o.latency == t.latency
                && targets[t.from] == Some(o.from);
            same.then_some(old.targets.len() + j)
        }));
        let slos: Mapping = new
            .slos
            .iter()
            .map(|s| {
                let j = old.slos.iter().position(|o| o.name == s.name)?;
                same_slo(&old.slos[j], s, &sources).then_some(j)
            })
            .collect();
        let all_targets_same =
            old.targets.len() == new.targets.len() && targets.iter().all(Option::is_some);
        let inputs = Inputs {
            targets: &sources,
            slos: &slos,
            all_targets_same,
            restarts_same: old.restarts_window() == new.restarts_window(),
        };
        let rules = new
            .rules
            .iter()
            .map(|r| {
                let j = old.rules.iter().position(|o| o.name == r.name)?;
                inputs.same_rule(&old.rules[j], r).then_some(j)
            })
            .collect();
        // Receivers speak for the service and trust the same CAs.
        let shared = old.service == new.service && same_tls;
        let receivers = ReceiverChanges {
            alertmanager: !(shared && old.page.alertmanager == new.page.alertmanager),
            pagerduty: !(shared
                && old.page.pagerduty == new.page.pagerduty
                // PagerDuty's incidents link to the Grafana dashboard.
                && old.grafana.as_ref().map(|g| &g.url) == new.grafana.as_ref().map(|g| &g.url)),
            slack: !(shared && old.page.slack == new.page.slack),
            webhook: !(shared && old.page.webhook == new.page.webhook),
            grafana: !(shared && old.grafana == new.grafana),
        };
        ConfigDiff {
            targets,
            sources,
            slos,
            rules,
            receivers,
        }
    }
}

/// Whether an old SLO and a new one of the same name mean the same thing.
fn same_slo(old: &Slo, new: &Slo, targets: &Mapping) -> bool {
    old.objective == new.objective
        && old.latency_threshold == new.latency_threshold
        && old.targets.len() == new.targets.len()
        && new
            .targets
            .iter()
            .all(|&t| targets[t].is_some_and(|j| old.targets.contains(&j)))
}

/// What a rule may read, and whether each input is the same as before.
struct Inputs<'a> {
    /// Per source.
    targets: &'a Mapping,
    slos: &'a Mapping,
    all_targets_same: bool,
    restarts_same: bool,
}

impl Inputs<'_> {
    fn target(&self, new: usize, old: usize) -> bool {
        self.targets[new] == Some(old)
    }

    fn same_rule(&self, old: &Rule, new: &Rule) -> bool {
        let same_settings =
            old.for_ == new.for_ && old.actions == new.actions && old.severity == new.severity;
        same_settings && self.same_condition(&old.when, &new.when)
    }

    fn same_condition(&self, old: &Condition, new: &Condition) -> bool {
        use Condition::*;
        match (old, new) {
            (
                ConsecutiveFailures {
                    target: a,
                    count: n,
                },
                ConsecutiveFailures {
                    target: b,
                    count: m,
                },
            ) => n == m && self.target(*b, *a),
            (
                ErrorRate {
                    target: a,
                    above: x,
                    window: w,
                    min_samples: n,
                },
                ErrorRate {
                    target: b,
                    above: y,
                    window: v,
                    min_samples: m,
                },
            ) => {
                let same_inputs = match (a, b) {
                    (Some(a), Some(b)) => self.target(*b, *a),
                    (None, None) => self.all_targets_same,
                    _ => false,
                };
                x == y && w == v && n == m && same_inputs
            }
            (
                BurnRate {
                    slo: a,
                    short: s1,
                    long: l1,
                    factor: f1,
                    min_samples: n,
                },
                BurnRate {
                    slo: b,
                    short: s2,
                    long: l2,
                    factor: f2,
                    min_samples: m,
                },
            ) => s1 == s2 && l1 == l2 && f1 == f2 && n == m && self.slos[*b] == Some(*a),
            (
                Latency {
                    target: a,
                    percentile: p,
                    above: x,
                    window: w,
                    min_samples: n,
                },
                Latency {
                    target: b,
                    percentile: q,
                    above: y,
                    window: v,
                    min_samples: m,
                },
            ) => p == q && x == y && w == v && n == m && self.target(*b, *a),
            (
                Restarts {
                    above: x,
                    window: w,
                    containers: c,
                },
                Restarts {
                    above: y,
                    window: v,
                    containers: d,
                },
            ) => x == y && w == v && c == d && self.restarts_same,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::for_tests;

    const HEALTH: &str = r#"{ name: health, url: "http://127.0.0.1:1/h", interval: 1s }"#;
    const ORDERS: &str = r#"{ name: orders, url: "http://127.0.0.1:1/o", interval: 1s }"#;
    const DOWN: &str =
        "{ name: down, when: { consecutive_failures: 3, target: health }, do: [rollback] }";
    const BURN: &str = "{ name: burn, when: { burn_rate: { slo: avail, short: 1m, long: 5m, factor: 14.4 } }, do: [rollback] }";
    const ALL: &str =
        "{ name: all, when: { error_rate: { above: 5%, window: 1m } }, do: [rollback] }";

    fn config(targets: &[&str], slos: &str, rules: &[&str]) -> Config {
        for_tests(&format!(
            "service: checkout\ntargets: [{}]\nslos: {slos}\nrules: [{}]\nrollback: {{ webhook: {{ url: \"http://127.0.0.1:1/rb\" }} }}\n",
            targets.join(", "),
            rules.join(", ")
        ))
    }

    #[test]
    fn reordering_and_inserting_keeps_what_did_not_change() {
        let slos = "[{ name: avail, objective: 99.9, targets: [health] }]";
        let old = config(&[HEALTH, ORDERS], slos, &[DOWN, BURN]);
        let inserted = "{ name: new, when: { consecutive_failures: 5, target: orders } }";
        let new = config(&[ORDERS, HEALTH], slos, &[inserted, BURN, DOWN]);
        let d = ConfigDiff::new(&old, &new);
        assert_eq!(d.targets, vec![Some(1), Some(0)]);
        assert_eq!(d.slos, vec![Some(0)]);
        assert_eq!(d.rules, vec![None, Some(1), Some(0)]);
        assert!(!d.receivers.any());
    }

    #[test]
    fn a_changed_slack_or_webhook_receiver_rebuilds_only_itself() {
        let with = |page: &str| {
            for_tests(&format!(
                "service: checkout\ntargets: [{HEALTH}]\nrules: [{DOWN}]\nrollback: {{ webhook: {{ url: \"http://127.0.0.1:1/rb\" }} }}\npage: {page}\n"
            ))
        };
        let old = with(
            "{ slack: { webhook_url: \"https://hooks.slack.com/a\" }, webhook: { url: \"http://127.0.0.1:1/n\" } }",
        );
        let slack = with(
            "{ slack: { webhook_url: \"https://hooks.slack.com/b\" }, webhook: { url: \"http://127.0.0.1:1/n\" } }",
        );
        let hook = with(
            "{ slack: { webhook_url: \"https://hooks.slack.com/a\" }, webhook: { url: \"http://127.0.0.1:1/n\", max_per_minute: 5 } }",
        );
        let changes = |new: &Config| ConfigDiff::new(&old, new).receivers;
        let only_slack = ReceiverChanges {
            slack: true,
            ..ReceiverChanges::default()
        };
        let only_webhook = ReceiverChanges {
            webhook: true,
            ..ReceiverChanges::default()
        };
        assert_eq!(changes(&slack), only_slack);
        assert_eq!(changes(&hook), only_webhook);
        assert!(!changes(&old).any());
        assert!(only_slack.union(only_webhook).any());
    }

    #[test]
    fn an_slo_change_resets_only_the_rules_that_read_it() {
        let old = config(
            &[HEALTH],
            "[{ name: avail, objective: 99.9 }]",
            &[DOWN, BURN],
        );
        let new = config(
            &[HEALTH],
            "[{ name: avail, objective: 99.5 }]",
            &[DOWN, BURN],
        );
        let d = ConfigDiff::new(&old, &new);
        assert_eq!(d.slos, vec![None]);
        assert_eq!(d.rules, vec![Some(0), None]);
    }

    #[test]
    fn a_changed_target_resets_its_rules_and_an_added_one_resets_all_target_rules() {
        let slos = "[{ name: avail, objective: 99.9, targets: [orders] }]";
        let old = config(&[HEALTH, ORDERS], slos, &[DOWN, BURN, ALL]);
        let moved = HEALTH.replace("/h\"", "/healthz\"");
        let new = config(&[&moved, ORDERS], slos, &[DOWN, BURN, ALL]);
        let d = ConfigDiff::new(&old, &new);
        assert_eq!(d.targets, vec![None, Some(1)]);
        // `down` reads the changed target; `all` reads every target; `burn`
        // reads only orders.
        assert_eq!(d.rules, vec![None, Some(1), None]);

        let extra = r#"{ name: extra, url: "http://127.0.0.1:1/x", interval: 1s }"#;
        let added = config(&[HEALTH, ORDERS, extra], slos, &[DOWN, BURN, ALL]);
        let d = ConfigDiff::new(&old, &added);
        assert_eq!(d.rules, vec![Some(0), Some(1), None]);
    }

    #[test]
    fn a_renamed_or_redefined_rule_is_a_new_one() {
        let old = config(&[HEALTH], "[]", &[DOWN]);
        let renamed = config(
            &[HEALTH],
            "[]",
            &[&DOWN.replace("name: down", "name: dead")],
        );
        assert_eq!(ConfigDiff::new(&old, &renamed).rules, vec![None]);
        let held = config(&[HEALTH], "[]", &[&DOWN.replace("do:", "for: 10s, do:")]);
        assert_eq!(ConfigDiff::new(&old, &held).rules, vec![None]);
    }
}
