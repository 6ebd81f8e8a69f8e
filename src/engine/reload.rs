//! A new configuration takes over the running engine's state where it
//! still means the same thing: a target's window and counters when the
//! target and its window's shape are unchanged, a rule's state when the
//! rule is unchanged, restart counts when their window is. Everything else
//! starts afresh, as on a new pod.

use super::{Engine, TargetState};
use crate::config::Config;
use crate::rules::{Evidence, State};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::Instant;

/// A rule of the old configuration that was firing and did not carry over
/// (removed or changed): its incident must be resolved.
#[derive(Debug, Clone)]
pub struct Dropped {
    /// Index in the old configuration.
    pub rule: usize,
    pub evidence: Evidence,
}

/// What carried over, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Carried {
    pub targets: usize,
    pub rules: usize,
}

impl Engine {
    /// This engine's successor under `config`, with what carried over.
    pub fn reload(self, config: Arc<Config>, now: Instant) -> (Engine, Carried, Vec<Dropped>) {
        let mut next = Engine::new(config, self.telemetry.clone(), now);
        let (carried, dropped) = next.take_over(self);
        (next, carried, dropped)
    }

    /// Take what still applies from `old` (the engine of the previous
    /// configuration). Returns the old firing rules that did not carry over.
    pub fn take_over(&mut self, old: Engine) -> (Carried, Vec<Dropped>) {
        let mut carried = Carried::default();
        let old_config = old.config.clone();
        let mut targets: HashMap<&str, (usize, TargetState)> = old_config
            .targets
            .iter()
            .map(|t| t.name.as_str())
            .zip(old.targets.into_iter().enumerate())
            .collect();
        // A target kept by name whose state could not carry over: rules
        // then start afresh too (they refer to targets by position and read
        // their windows).
        let mut any_target_reset = false;
        for (i, target) in self.config.targets.iter().enumerate() {
            let Some((j, state)) = targets.remove(target.name.as_str()) else {
                continue;
            };
            let new = &self.targets[i].window;
            let same_window = state.window.horizon() == new.horizon()
                && state.window.thresholds() == new.thresholds();
            if i == j && old_config.targets[j] == *target && same_window {
                let mut state = state;
                std::mem::swap(&mut state.health, &mut self.targets[i].health);
                if let Some(last) = &state.last {
                    state.health.set(last.success, state.consecutive_failures);
                }
                self.targets[i] = state;
                carried.targets += 1;
            } else {
                any_target_reset = true;
            }
        }
        let rules_may_carry = !any_target_reset && old_config.slos == self.config.slos;

        let mut dropped = Vec::new();
        for (j, (rule, state)) in old_config.rules.iter().zip(old.rules).enumerate() {
            let same = self
                .config
                .rules
                .iter()
                .position(|r| r == rule)
                .filter(|_| rules_may_carry);
            match same {
                Some(i) => {
                    self.telemetry.rule_state(&rule.name, state.machine.state());
                    self.rules[i] = state;
                    carried.rules += 1;
                }
                None if state.machine.state() == State::Firing => dropped.push(Dropped {
                    rule: j,
                    evidence: state.evidence.unwrap_or(Evidence::Manual {
                        reason: "configuration reloaded".into(),
                    }),
                }),
                None => {}
            }
        }

        if old.restarts_window == self.restarts_window {
            self.restarts = old.restarts;
            self.restarts_seen = old.restarts_seen;
        }
        self.started = old.started;
        (carried, dropped)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::for_tests;
    use crate::engine::{DecisionKind, Engine, Scope};
    use crate::probe::{Outcome, Reason, Sample};
    use crate::telemetry::Telemetry;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::Instant;

    fn engine(targets: &str, rules: &str) -> Engine {
        let yaml = format!(
            "service: checkout\ntargets: {targets}\nrollback: {{ webhook: {{ url: \"http://127.0.0.1:1/rb\" }} }}\nrules: {rules}\n"
        );
        let c = Arc::new(for_tests(&yaml));
        Engine::new(c.clone(), Telemetry::new(&c.service), Instant::now())
    }

    const ONE: &str = r#"[{ name: health, url: "http://127.0.0.1:1/h", interval: 1s }]"#;
    const TWO: &str = r#"[{ name: health, url: "http://127.0.0.1:1/h", interval: 1s }, { name: extra, url: "http://127.0.0.1:1/x", interval: 1s }]"#;
    const DOWN: &str =
        "{ name: down, when: { consecutive_failures: 3, target: health }, do: [rollback] }";

    fn fail(e: &mut Engine) -> Vec<DecisionKind> {
        e.record(&Sample {
            target: 0,
            at: Instant::now(),
            latency: Duration::from_millis(5),
            outcome: Outcome::Failure {
                reason: Reason::Status,
                detail: "status 500".into(),
            },
            counted: true,
        });
        e.evaluate(Instant::now(), Scope::Target(0))
            .iter()
            .map(|d| d.kind)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_targets_and_rules_keep_their_state() {
        let mut old = engine(ONE, &format!("[{DOWN}]"));
        for _ in 0..3 {
            fail(&mut old);
        }
        let extra =
            "{ name: slow, when: { error_rate: { above: 50%, window: 1m } }, do: [rollback] }";
        let mut new = engine(TWO, &format!("[{extra}, {DOWN}]"));
        let (carried, dropped) = new.take_over(old);
        assert_eq!((carried.targets, carried.rules), (1, 1));
        assert!(dropped.is_empty(), "{dropped:?}");
        // Still firing: no new firing, a reminder on the tick.
        assert_eq!(fail(&mut new), Vec::<DecisionKind>::new());
        let tick = new.evaluate(Instant::now(), Scope::Tick);
        assert!(
            tick.iter()
                .any(|d| d.rule == 1 && d.kind == DecisionKind::Firing),
            "{tick:?}"
        );
        assert!(
            !tick.iter().any(|d| d.kind == DecisionKind::Fired),
            "{tick:?}"
        );
        let status = new.status(Instant::now());
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["targets"][0]["consecutive_failures"], 4, "{json:#}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_firing_rule_is_reported_dropped_and_starts_afresh() {
        let mut old = engine(ONE, &format!("[{DOWN}]"));
        for _ in 0..3 {
            fail(&mut old);
        }
        let stricter = DOWN.replace("consecutive_failures: 3", "consecutive_failures: 5");
        let mut new = engine(ONE, &format!("[{stricter}]"));
        let (carried, dropped) = new.take_over(old);
        assert_eq!((carried.targets, carried.rules), (1, 0));
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].rule, 0);
        // The target's counter carried over: the fifth failure fires the new rule.
        assert_eq!(fail(&mut new), Vec::<DecisionKind>::new());
        assert_eq!(fail(&mut new), vec![DecisionKind::Fired]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_target_starts_afresh_and_so_do_the_rules() {
        let mut old = engine(ONE, &format!("[{DOWN}]"));
        for _ in 0..3 {
            fail(&mut old);
        }
        let moved = ONE.replace("/h\"", "/healthz\"");
        let mut new = engine(&moved, &format!("[{DOWN}]"));
        let (carried, dropped) = new.take_over(old);
        assert_eq!((carried.targets, carried.rules), (0, 0));
        assert_eq!(dropped.len(), 1);
        assert_eq!(fail(&mut new), Vec::<DecisionKind>::new());
    }
}
