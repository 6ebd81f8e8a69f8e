//! Runs the real engine and the real actor against the simulated app in
//! paused time, the way the daemon's engine loop does: every probe result
//! is recorded and assessed when it arrives (probe start + latency), all
//! rules again on the 1 s tick and at `for:` deadlines, and restart counts
//! every 5 s. Only HTTP is simulated: the prober's sockets and the
//! Kubernetes API are not there, so probes are answered by [`App`] and the
//! actor rolls back through the webhook backend in dry run, which answers
//! without I/O (guards, rate limit, records and pages run for real).

use super::app::{Answer, App, Endpoint};
use super::oracle::Oracle;
use crate::act::{
    ActionLog, Actor, Backend, Notice, Receivers, Revision, ToActor, WebhookBackend, retry,
};
use crate::config::{Config, Target, Webhook};
use crate::daemon::{Event, Telemetry};
use crate::engine::{Decision, DecisionKind, Engine, Scope};
use crate::probe::{Outcome, Reason, Sample, Warmup};
use crate::rules::State;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The daemon's engine tick and restart poll.
pub const TICK: Duration = Duration::from_secs(1);
pub const POLL: Duration = crate::daemon::RESTART_POLL;

/// Something that happened, at a virtual instant.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub rule: String,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// The engine sent this decision to the actor.
    Decision(DecisionKind),
    /// The rule went pending (a breach waiting for `for:`).
    Pending,
    /// The actor asked the backend to roll back.
    RollbackStarted,
    /// The actor recorded an action outcome (`rollback: dry_run`, ...).
    Action(&'static str, String),
    /// The actor queued a page (firing or resolved).
    Page { firing: bool },
}

struct Prober {
    endpoint: Endpoint,
    next: Instant,
    in_flight: Option<Sample>,
    warmup: Warmup,
}

pub struct Sim {
    pub config: Arc<Config>,
    pub start: Instant,
    engine: Engine,
    app: App,
    probers: Vec<Prober>,
    next_tick: Instant,
    next_poll: Instant,
    polled: Instant,
    decisions: mpsc::Sender<ToActor>,
    notices: mpsc::Receiver<Notice>,
    events: broadcast::Receiver<Event>,
    stop: CancellationToken,
    pub log: ActionLog,
    pub seen: Vec<Seen>,
    /// Counted and uncounted samples.
    pub samples: (u64, u64),
    /// Sees every sample; judges from when its verdicts matter (a fault's onset).
    oracle: Oracle,
    judging: bool,
}

impl Sim {
    /// A sidecar started with the app at `Instant::now()`, guarding revision
    /// "v2" from then on.
    pub fn new(config: Arc<Config>, app: App) -> Sim {
        crate::init_tls();
        let start = Instant::now();
        let telemetry = Telemetry::new(&config.service);
        let events = telemetry.subscribe();
        let engine = Engine::new(config.clone(), telemetry.engine.clone(), start);
        let webhook = Webhook {
            url: "http://deployer.invalid/rollback".parse().expect("a URL"),
            headers: Default::default(),
            timeout: Duration::from_secs(5),
        };
        let client = retry::client(webhook.timeout, &Default::default()).expect("an HTTP client");
        let backend = WebhookBackend::new(client, webhook, retry::Backoff::default())
            .expect("a webhook backend");
        assert!(config.rollback.dry_run, "the soak's actor must not do I/O");
        let revision = Revision {
            id: "v2".into(),
            since: start,
        };
        let log = ActionLog::default();
        let (notice_tx, notices) = mpsc::channel(1024);
        let actor = Actor::new(
            config.clone(),
            telemetry.act.clone(),
            Some(Backend::Webhook(backend)),
            revision,
            log.clone(),
        )
        .with_receivers(Receivers {
            pagerduty: Some(notice_tx),
            ..Receivers::default()
        });
        let (decisions, rx) = mpsc::channel(256);
        let stop = CancellationToken::new();
        tokio::spawn(actor.run(rx, stop.clone(), Duration::from_millis(700)));
        let probers = config
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| Prober {
                endpoint: if t.url.path().starts_with("/api/") {
                    Endpoint::Analytics
                } else {
                    Endpoint::Health
                },
                // Spread like the daemon's random phase, but fixed.
                next: start + (t.interval / 10).min(Duration::from_secs(1)) * (i as u32) / 7,
                in_flight: None,
                warmup: Warmup::new(start, t.warmup),
            })
            .collect();
        Sim {
            start,
            engine,
            app,
            probers,
            next_tick: start + TICK,
            next_poll: start,
            polled: start,
            decisions,
            notices,
            events,
            stop,
            log,
            seen: Vec::new(),
            samples: (0, 0),
            oracle: Oracle::new(&config),
            judging: false,
            config,
        }
    }

    /// Let the brute-force oracle judge from now on.
    pub fn start_oracle(&mut self) {
        self.judging = true;
    }

    /// When the oracle says rule `name` had to fire, if it had to.
    pub fn due(&self, name: &str) -> Option<Instant> {
        self.oracle.due(self.rule(name))
    }

    pub fn rule(&self, name: &str) -> usize {
        self.config
            .rules
            .iter()
            .position(|r| r.name == name)
            .unwrap_or_else(|| panic!("no rule {name}"))
    }

    /// The engine's view of every rule now, one line each (for messages).
    pub fn rules_now(&self) -> String {
        let status = self.engine.status(Instant::now());
        status
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{}: {:?} {}\n",
                    r.name,
                    r.state,
                    r.evidence
                        .as_ref()
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    /// What was seen, one line each, in seconds since start (for messages).
    pub fn story(&self) -> String {
        self.seen
            .iter()
            .map(|s| {
                let at = (s.at - self.start).as_secs_f64();
                format!("{at:9.3}s {} {:?}\n", s.rule, s.what)
            })
            .collect()
    }

    /// The first time `rule` did `what`.
    pub fn first(&self, rule: &str, what: &What) -> Option<Instant> {
        self.seen
            .iter()
            .find(|s| s.rule == rule && s.what == *what)
            .map(|s| s.at)
    }

    /// Run until `end` (virtual), or until `done` says so after a step.
    pub async fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Sim) -> bool) {
        loop {
            let next = self.next_event();
            if next > end {
                tokio::time::advance(end.saturating_duration_since(Instant::now())).await;
                break;
            }
            tokio::time::advance(next.saturating_duration_since(Instant::now())).await;
            self.step().await;
            if done(self) {
                break;
            }
        }
        self.settle().await;
    }

    pub async fn stop(mut self) -> Sim {
        self.settle().await;
        self.stop.cancel();
        self
    }

    fn next_event(&self) -> Instant {
        let probes = self.probers.iter().map(|p| match &p.in_flight {
            Some(s) => s.at + s.latency,
            None => p.next,
        });
        let deadline = self.engine.next_deadline().unwrap_or(self.next_tick);
        let batch = self.engine.batch_due().unwrap_or(self.next_tick);
        probes
            .chain([self.next_tick, self.next_poll, deadline, batch])
            .min()
            .expect("at least the tick")
    }

    async fn step(&mut self) {
        let now = Instant::now();
        for i in 0..self.probers.len() {
            let arrived = self.probers[i]
                .in_flight
                .as_ref()
                .is_some_and(|s| s.at + s.latency <= now);
            if arrived && let Some(s) = self.probers[i].in_flight.take() {
                if s.counted {
                    self.samples.0 += 1;
                } else {
                    self.samples.1 += 1;
                }
                let target = self.engine.record(&s).expect("one generation");
                self.oracle.record(&s);
                let found = self.engine.evaluate(now, Scope::Target(target));
                self.act(found, now).await;
            }
        }
        for i in 0..self.probers.len() {
            let p = &self.probers[i];
            if p.in_flight.is_none() && p.next <= now {
                let target = &self.config.targets[i];
                let answer = self.app.answer(p.endpoint, now);
                let (latency, outcome) = judge(target, answer);
                let p = &mut self.probers[i];
                let counted = p.warmup.counts(now, outcome.is_success());
                p.in_flight = Some(Sample {
                    generation: 0,
                    target: i,
                    at: now,
                    latency,
                    outcome,
                    counted,
                    scraped: None,
                });
                p.next = now + target.interval;
            }
        }
        if self.next_poll <= now {
            let new = self.app.restarts_between(self.polled, now);
            self.polled = now;
            self.next_poll = now + POLL;
            self.engine.record_restarts(crate::cluster::Restarts {
                at: now,
                new: if new > 0 {
                    vec![("checkout".into(), new)]
                } else {
                    Vec::new()
                },
                pods: 1,
            });
            self.oracle.record_restarts(now, new);
            let found = self.engine.evaluate(now, Scope::Restarts);
            self.act(found, now).await;
        }
        let deadline = self.engine.next_deadline().is_some_and(|d| d <= now);
        if self.next_tick <= now || deadline {
            if self.next_tick <= now {
                self.next_tick = now + TICK;
                self.engine.publish_slos(now);
            }
            let found = self.engine.evaluate(now, Scope::Tick);
            self.act(found, now).await;
        } else if self.engine.batch_due().is_some_and(|d| d <= now) {
            let found = self.engine.evaluate(now, Scope::Batch);
            self.act(found, now).await;
        }
    }

    /// Hand decisions to the actor and note what everyone did.
    async fn act(&mut self, found: Vec<Decision>, now: Instant) {
        if self.judging {
            self.oracle.step(&self.config, now);
        }
        for d in found {
            self.seen.push(Seen {
                at: now,
                rule: self.config.rules[d.rule].name.clone(),
                what: What::Decision(d.kind),
            });
            self.decisions
                .send(ToActor::Decision(d))
                .await
                .expect("the actor runs");
        }
        self.settle().await;
    }

    /// Let the actor (and its rollback task) run, then collect what it did.
    async fn settle(&mut self) {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let now = Instant::now();
        loop {
            let (rule, what) = match self.events.try_recv() {
                Ok(Event::Transition {
                    rule,
                    to: State::Pending,
                    ..
                }) => (rule, What::Pending),
                Ok(Event::RollbackStarted { rule, .. }) => (rule, What::RollbackStarted),
                Ok(Event::Action(r)) => (
                    r.rule.clone(),
                    What::Action(r.action, r.outcome.to_string()),
                ),
                Ok(_) => continue,
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    panic!("the soak lost {n} events")
                }
                Err(_) => break,
            };
            self.seen.push(Seen {
                at: now,
                rule,
                what,
            });
        }
        while let Ok(n) = self.notices.try_recv() {
            self.seen.push(Seen {
                at: now,
                rule: n.rule,
                what: What::Page { firing: n.firing },
            });
        }
    }
}

/// What the prober makes of an answer, with the target's timeout and
/// expectations (the health JSON and analytics bodies are always right).
fn judge(target: &Target, answer: Answer) -> (Duration, Outcome) {
    let fail = |reason, detail: String| Outcome::Failure { reason, detail };
    let timeout = || {
        let detail = format!("no answer within {:?}", target.timeout);
        (target.timeout, fail(Reason::Timeout, detail))
    };
    match answer {
        Answer::Refused => (
            Duration::from_micros(300),
            fail(Reason::Connect, "connection refused".into()),
        ),
        Answer::Hang => timeout(),
        Answer::Status(_, l) | Answer::Ok(l) if l >= target.timeout => timeout(),
        Answer::Status(code, l) => (
            l,
            fail(Reason::Status, format!("status {code}, expected 2xx")),
        ),
        Answer::Ok(l) if target.expect.max_latency.is_some_and(|m| l > m) => (
            l,
            fail(Reason::Latency, format!("answered in {l:?}, too slow")),
        ),
        Answer::Ok(l) => (l, Outcome::Success { status: 200 }),
    }
}
