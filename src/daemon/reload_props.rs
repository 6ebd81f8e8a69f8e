//! Property test of reload sequences: random configurations drawn from a
//! pool (targets, SLOs and rules inserted, removed, reordered, redefined)
//! replace each other while samples of the current and the previous
//! generation arrive and rules fire. The engine and the actions stage run
//! as the daemon runs them, decisions and reloads in order on one channel.
//! Nothing panics, every decision indexes its own generation's rules, and
//! what carries over keeps its name.

use crate::act::{ActionLog, Actor, Backend, Receivers, Reconfigure, Revision, ToActor};
use crate::config::{Config, ConfigDiff, ReceiverChanges, parse};
use crate::engine::{Engine, Scope};
use crate::probe::{Outcome, Reason, Sample};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TARGETS: [&str; 4] = ["a", "b", "c", "d"];

/// One configuration: which targets (in order, each with one of two
/// intervals), whether the SLO exists (and its objective), which rules (in
/// order, each with one of two definitions).
#[derive(Debug, Clone)]
struct Shape {
    targets: Vec<(usize, bool)>,
    slo: Option<bool>,
    rules: Vec<(usize, bool)>,
}

fn shape() -> impl Strategy<Value = Shape> {
    let targets = proptest::sample::subsequence((0..4).collect::<Vec<_>>(), 1..=4)
        .prop_shuffle()
        .prop_flat_map(|ts| {
            let n = ts.len();
            (Just(ts), proptest::collection::vec(any::<bool>(), n))
        })
        .prop_map(|(ts, alt)| ts.into_iter().zip(alt).collect::<Vec<_>>());
    let rules = proptest::collection::vec((0..6usize, any::<bool>()), 0..6);
    (targets, proptest::option::of(any::<bool>()), rules).prop_map(|(targets, slo, rules)| {
        let mut seen = Vec::new();
        let rules = rules
            .into_iter()
            .filter(|(r, _)| {
                let fresh = !seen.contains(r);
                seen.push(*r);
                fresh
            })
            .collect();
        Shape {
            targets,
            slo,
            rules,
        }
    })
}

/// The configuration a shape describes; rules whose inputs are missing are left out.
fn config(s: &Shape) -> Config {
    let has = |t: usize| s.targets.iter().any(|(i, _)| *i == t);
    let mut yaml = String::from(
        "service: checkout\nrollback: { webhook: { url: \"http://127.0.0.1:1/rb\" }, dry_run: true }\ntargets:\n",
    );
    for (t, alt) in &s.targets {
        let interval = if *alt { "2s" } else { "1s" };
        yaml += &format!(
            "  - {{ name: {}, url: \"http://127.0.0.1:1/{}\", interval: {interval} }}\n",
            TARGETS[*t], TARGETS[*t]
        );
    }
    let slo = s.slo.map(|alt| if alt { 99.5 } else { 99.9 });
    if let Some(objective) = slo {
        yaml += &format!("slos: [{{ name: avail, objective: {objective} }}]\n");
    }
    yaml += "rules:\n";
    for (r, alt) in &s.rules {
        let n = if *alt { 5 } else { 3 };
        let rule = match r {
            0..=2 if has(*r) => format!(
                "{{ name: down-{0}, when: {{ consecutive_failures: {n}, target: {0} }}, do: [rollback] }}",
                TARGETS[*r]
            ),
            3 => format!(
                "{{ name: errors, when: {{ error_rate: {{ above: {n}0%, window: 1m, min_samples: 2 }} }}, do: [rollback] }}"
            ),
            4 if slo.is_some() => format!(
                "{{ name: burn, when: {{ burn_rate: {{ slo: avail, short: 1m, long: 5m, factor: {n} }} }}, do: [rollback] }}"
            ),
            5 if has(1) => format!(
                "{{ name: slow-b, when: {{ latency: {{ target: b, percentile: 50, above: {n}00ms, window: 1m, min_samples: 2 }} }} }}"
            ),
            _ => continue,
        };
        yaml += &format!("  - {rule}\n");
    }
    parse(&yaml, &|_| None).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[derive(Debug, Clone)]
enum Step {
    Reload(Shape),
    /// A sample of the target at this position, from the current or the previous generation.
    Sample {
        target: usize,
        previous: bool,
        ok: bool,
    },
    Tick(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => shape().prop_map(Step::Reload),
        6 => (0..4usize, any::<bool>(), any::<bool>())
            .prop_map(|(target, previous, ok)| Step::Sample { target, previous, ok }),
        2 => (1..20u8).prop_map(Step::Tick),
    ]
}

async fn run(first: Shape, steps: Vec<Step>) {
    let mut current = Arc::new(config(&first));
    let mut before = current.clone();
    let telemetry = crate::daemon::Telemetry::new("checkout");
    let mut engine = Engine::new(current.clone(), telemetry.engine.clone(), Instant::now());
    let backend = Backend::from_config(&current, None, None).unwrap();
    let revision = Revision {
        id: "v2".into(),
        since: Instant::now(),
    };
    let actor = Actor::new(
        current.clone(),
        telemetry.act.clone(),
        backend,
        revision,
        ActionLog::default(),
    );
    let (tx, rx) = mpsc::channel(1024);
    let stop = CancellationToken::new();
    let actor = tokio::spawn(actor.run(rx, stop.clone(), Duration::from_millis(10)));
    let mut generation = 0;
    for step in steps {
        let found = match step {
            Step::Reload(shape) => {
                let next = Arc::new(config(&shape));
                let diff = ConfigDiff::new(&current, &next);
                generation += 1;
                let (e, carried) = engine.reload(next.clone(), &diff, generation, Instant::now());
                engine = e;
                for (i, from) in carried.rules.iter().enumerate() {
                    if let Some(j) = from {
                        assert_eq!(next.rules[i].name, current.rules[*j].name);
                    }
                }
                for d in &carried.dropped {
                    assert!(d.rule < current.rules.len());
                }
                let reconfigure = Reconfigure {
                    generation,
                    config: next.clone(),
                    backend: Backend::from_config(&next, None, None).unwrap(),
                    receivers: Receivers::default(),
                    changes: ReceiverChanges::default(),
                    carried,
                };
                let (applied, _) = oneshot::channel();
                tx.send(ToActor::Reconfigure(Box::new(reconfigure), applied))
                    .await
                    .unwrap();
                before = std::mem::replace(&mut current, next);
                Vec::new()
            }
            Step::Sample {
                target,
                previous,
                ok,
            } => {
                let sample = Sample {
                    generation: generation.saturating_sub(u64::from(previous)),
                    target,
                    at: Instant::now(),
                    latency: Duration::from_millis(if ok { 5 } else { 900 }),
                    outcome: if ok {
                        Outcome::Success { status: 200 }
                    } else {
                        Outcome::Failure {
                            reason: Reason::Status,
                            detail: "status 500".into(),
                        }
                    },
                    counted: true,
                    scraped: None,
                };
                match engine.record(&sample) {
                    Some(t) => {
                        // Read against the target it was taken of, or not at all.
                        let taken_of = if sample.generation != generation {
                            &before
                        } else {
                            &current
                        };
                        assert_eq!(current.targets[t].name, taken_of.targets[target].name);
                        engine.evaluate(Instant::now(), Scope::Target(t))
                    }
                    None => Vec::new(),
                }
            }
            Step::Tick(secs) => {
                tokio::time::advance(Duration::from_secs(u64::from(secs))).await;
                let now = Instant::now();
                let mut found = engine.evaluate(now, Scope::Batch);
                found.extend(engine.evaluate(now, Scope::Tick));
                found
            }
        };
        for d in found {
            assert_eq!(d.generation, generation);
            assert!(d.rule < current.rules.len());
            tx.send(ToActor::Decision(d)).await.unwrap();
        }
        tokio::task::yield_now().await;
    }
    stop.cancel();
    actor.await.expect("the actions stage does not panic");
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(32))]
    #[test]
    fn reload_sequences_never_cross_generations(
        first in shape(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(run(first, steps));
    }
}
