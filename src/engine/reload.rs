//! A new configuration takes over the running engine's state where it
//! still means the same thing: a target's window and counters when the
//! target and its window's shape are unchanged, a rule's state when the
//! rule is unchanged, restart counts when their window is. Everything else
//! starts afresh, as on a new pod.

use super::{Engine, RuleState, TargetState, read_targets};
use crate::config::{Config, ConfigDiff, Mapping};
use crate::rules::{Evidence, State};
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

/// What carried over from the old engine: per target and per rule of the
/// new configuration, the old one whose state it took, and the firing rules
/// that ended. This refines the configuration's diff: a target whose
/// window changed shape starts afresh, and so do the rules that read it.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    pub targets: Mapping,
    pub rules: Mapping,
    pub dropped: Vec<Dropped>,
}

impl Carried {
    pub fn targets_kept(&self) -> usize {
        self.targets.iter().flatten().count()
    }
    pub fn rules_kept(&self) -> usize {
        self.rules.iter().flatten().count()
    }
}

impl Engine {
    /// This engine's successor under `config` (generation `generation`),
    /// taking over what `diff` says is the same.
    pub fn reload(
        self,
        config: Arc<Config>,
        diff: &ConfigDiff,
        generation: u64,
        now: Instant,
    ) -> (Engine, Carried) {
        let mut next = Engine::new(config, self.telemetry.clone(), now);
        next.generation = generation;
        let carried = next.take_over(self, diff);
        (next, carried)
    }

    /// Take what still applies from `old` (the engine of the previous
    /// configuration).
    fn take_over(&mut self, old: Engine, diff: &ConfigDiff) -> Carried {
        // Samples of the old generation still in flight: those of a target
        // that carried over are read against its new position.
        let mut moved = vec![None; old.targets.len()];
        for (i, j) in diff.targets.iter().enumerate() {
            if let Some(j) = j {
                moved[*j] = Some(i);
            }
        }
        self.previous = Some(Previous {
            generation: old.generation,
            moved,
        });
        let mut old_targets: Vec<Option<TargetState>> = old.targets.into_iter().map(Some).collect();
        let mut targets: Mapping = vec![None; self.targets.len()];
        for (i, from) in diff.targets.iter().enumerate() {
            let Some(j) = *from else { continue };
            let same_window = old_targets[j].as_ref().is_some_and(|s| {
                let new = &self.targets[i].window;
                s.window.horizon() == new.horizon() && s.window.thresholds() == new.thresholds()
            });
            if !same_window {
                continue;
            }
            let mut state = old_targets[j].take().expect("each old target maps once");
            std::mem::swap(&mut state.health, &mut self.targets[i].health);
            if let Some(last) = &state.last {
                state.health.set(last.success, state.consecutive_failures);
            }
            self.targets[i] = state;
            targets[i] = Some(j);
        }

        // Traffic entries carry over like targets, by name: their counters,
        // so the next scrape is not a new baseline, and their windows.
        let n_old = old.config.targets.len();
        let mut old_traffic: Vec<Option<_>> = old.traffic.into_iter().map(Some).collect();
        let mut sources = targets.clone();
        for (i, from) in diff.sources.iter().enumerate().skip(self.targets.len()) {
            let taken = from.and_then(|j| {
                let state = old_traffic.get_mut(j.checked_sub(n_old)?)?.take()?;
                let t = i - self.targets.len();
                self.traffic[t]
                    .take_over(state, &self.config, i)
                    .then_some(j)
            });
            sources.push(taken);
        }

        let mut old_rules: Vec<Option<RuleState>> = old.rules.into_iter().map(Some).collect();
        let mut rules: Mapping = vec![None; self.rules.len()];
        for (i, from) in diff.rules.iter().enumerate() {
            let Some(j) = *from else { continue };
            let rule = &self.config.rules[i];
            let inputs_kept = read_targets(&self.config, &rule.when)
                .iter()
                .all(|&t| sources[t].is_some());
            if !inputs_kept {
                continue;
            }
            let state = old_rules[j].take().expect("each old rule maps once");
            self.telemetry.rule_state(&rule.name, state.machine.state());
            self.rules[i] = state;
            rules[i] = Some(j);
        }
        let dropped = old_rules
            .into_iter()
            .enumerate()
            .filter_map(|(j, state)| {
                let state = state?;
                (state.machine.state() == State::Firing).then(|| Dropped {
                    rule: j,
                    evidence: state.evidence.unwrap_or(Evidence::Manual {
                        reason: "configuration reloaded".into(),
                    }),
                })
            })
            .collect();

        // An SLO's chart carries over by name: its burn rate is the same
        // series, whatever else changed.
        let mut old_tracks: Vec<Option<_>> = old.slo_tracks.into_iter().map(Some).collect();
        for (i, slo) in self.config.slos.iter().enumerate() {
            if let Some(j) = old.config.slos.iter().position(|o| o.name == slo.name)
                && let Some(track) = old_tracks[j].take()
            {
                self.slo_tracks[i] = track;
            }
        }

        if old.restarts_window == self.restarts_window {
            self.restarts = old.restarts;
            self.restarts_seen = old.restarts_seen;
        }
        self.started = old.started;
        Carried {
            targets,
            rules,
            dropped,
        }
    }
}

/// The previous generation, whose samples may still be on their way.
pub(super) struct Previous {
    pub generation: u64,
    /// Per old target: its new index, when its probes carried over.
    pub moved: Vec<Option<usize>>,
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigDiff, for_tests};
    use crate::engine::Telemetry;
    use crate::engine::{Carried, DecisionKind, Engine, Scope};
    use crate::probe::{Outcome, Reason, Sample};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::Instant;

    fn engine(targets: &str, rules: &str) -> Engine {
        let yaml = format!(
            "service: checkout\ntargets: {targets}\nrollback: {{ webhook: {{ url: \"http://127.0.0.1:1/rb\" }} }}\nrules: {rules}\n"
        );
        let c = Arc::new(for_tests(&yaml));
        Engine::new(c, Telemetry::detached(), Instant::now())
    }

    /// `old`'s successor with `new`'s configuration.
    fn reload(old: Engine, new: Engine) -> (Engine, Carried) {
        let diff = ConfigDiff::new(&old.config, &new.config);
        let generation = old.generation + 1;
        old.reload(new.config.clone(), &diff, generation, Instant::now())
    }

    const ONE: &str = r#"[{ name: health, url: "http://127.0.0.1:1/h", interval: 1s }]"#;
    const TWO: &str = r#"[{ name: extra, url: "http://127.0.0.1:1/x", interval: 1s }, { name: health, url: "http://127.0.0.1:1/h", interval: 1s }]"#;
    const DOWN: &str =
        "{ name: down, when: { consecutive_failures: 3, target: health }, do: [rollback] }";

    fn failure(generation: u64, target: usize) -> Sample {
        Sample {
            generation,
            target,
            at: Instant::now(),
            latency: Duration::from_millis(5),
            outcome: Outcome::Failure {
                reason: Reason::Status,
                detail: "status 500".into(),
            },
            counted: true,
            scraped: None,
        }
    }

    /// A failure of `health` as its probe, still in generation
    /// `generation` at position `target`, reports it.
    fn fail_as(e: &mut Engine, generation: u64, target: usize) -> Vec<DecisionKind> {
        let Some(t) = e.record(&failure(generation, target)) else {
            return Vec::new();
        };
        e.evaluate(Instant::now(), Scope::Target(t))
            .iter()
            .map(|d| d.kind)
            .collect()
    }

    fn fail(e: &mut Engine) -> Vec<DecisionKind> {
        let (generation, target) = (e.generation, e.config.targets.len() - 1);
        fail_as(e, generation, target)
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_targets_and_rules_keep_their_state_wherever_they_move() {
        let mut old = engine(ONE, &format!("[{DOWN}]"));
        for _ in 0..3 {
            fail(&mut old);
        }
        let extra =
            "{ name: slow, when: { error_rate: { above: 50%, window: 1m } }, do: [rollback] }";
        let (mut new, carried) = reload(old, engine(TWO, &format!("[{extra}, {DOWN}]")));
        assert_eq!(carried.targets, vec![None, Some(0)]);
        assert_eq!(carried.rules, vec![None, Some(0)]);
        assert!(carried.dropped.is_empty(), "{:?}", carried.dropped);
        // A probe of the old generation still on its way counts for health,
        // now second: still firing, no new firing.
        assert_eq!(fail_as(&mut new, 0, 0), Vec::<DecisionKind>::new());
        let tick = new.evaluate(Instant::now(), Scope::Tick);
        assert!(
            tick.iter()
                .any(|d| d.rule == 1 && d.generation == 1 && d.kind == DecisionKind::Firing),
            "{tick:?}"
        );
        assert!(
            !tick.iter().any(|d| d.kind == DecisionKind::Fired),
            "{tick:?}"
        );
        let status = new.status(Instant::now());
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["targets"][1]["consecutive_failures"], 4, "{json:#}");
        assert_eq!(json["targets"][0]["consecutive_failures"], 0, "{json:#}");
    }

    #[tokio::test(start_paused = true)]
    async fn samples_of_a_changed_target_or_an_older_generation_are_dropped() {
        let old = engine(ONE, &format!("[{DOWN}]"));
        let moved = ONE.replace("/h\"", "/healthz\"");
        let (mut new, _) = reload(old, engine(&moved, &format!("[{DOWN}]")));
        assert_eq!(new.record(&failure(0, 0)), None);
        let (mut newer, _) = reload(new, engine(&moved, &format!("[{DOWN}]")));
        assert_eq!(newer.record(&failure(0, 0)), None);
        assert_eq!(newer.record(&failure(1, 0)), Some(0));
        assert_eq!(newer.record(&failure(2, 0)), Some(0));
        assert_eq!(newer.record(&failure(2, 7)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_firing_rule_is_reported_dropped_and_starts_afresh() {
        let mut old = engine(ONE, &format!("[{DOWN}]"));
        for _ in 0..3 {
            fail(&mut old);
        }
        let stricter = DOWN.replace("consecutive_failures: 3", "consecutive_failures: 5");
        let (mut new, carried) = reload(old, engine(ONE, &format!("[{stricter}]")));
        assert_eq!((carried.targets_kept(), carried.rules_kept()), (1, 0));
        assert_eq!(carried.dropped.len(), 1);
        assert_eq!(carried.dropped[0].rule, 0);
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
        let (mut new, carried) = reload(old, engine(&moved, &format!("[{DOWN}]")));
        assert_eq!((carried.targets_kept(), carried.rules_kept()), (0, 0));
        assert_eq!(carried.dropped.len(), 1);
        assert_eq!(fail(&mut new), Vec::<DecisionKind>::new());
    }
}
