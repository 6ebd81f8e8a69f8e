//! Actions: turn the engine's decisions into rollbacks (and, in later
//! builds, pages and annotations). Guards decide whether a rollback may
//! happen; the outbound call runs in its own task so nothing here blocks
//! the engine; every outcome is logged, counted and kept for `/status`.
//!
//! Backends slot in beside each other: `Backend` is an enum so a Kubernetes
//! rollback joins the webhook without dynamic dispatch.

mod guard;
mod record;
pub mod retry;
mod webhook;

pub use guard::{Check, Guard, Prevented};
pub use record::{ActionLog, ActionRecord};
pub use webhook::{RollbackRequest, WebhookBackend};

use crate::config::{Action, Config, RollbackBackend};
use crate::engine::{Decision, DecisionKind};
use crate::telemetry::Telemetry;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Rollbacks that may leave the process per minute, whatever the rules say.
const ROLLBACKS_PER_MINUTE: u32 = 3;

/// The revision backstop guards, and when it started running.
#[derive(Debug, Clone)]
pub struct Revision {
    pub id: String,
    pub since: Instant,
}

/// Where rollbacks go.
pub enum Backend {
    Webhook(WebhookBackend),
}

impl Backend {
    pub fn from_config(config: &Config) -> Result<Option<Backend>, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(match &config.rollback.backend {
            None => None,
            Some(RollbackBackend::Webhook(w)) => Some(Backend::Webhook(WebhookBackend::new(
                client,
                w.clone(),
                retry::Backoff::default(),
            )?)),
        })
    }

    fn label(&self) -> &'static str {
        match self {
            Backend::Webhook(_) => "webhook",
        }
    }

    async fn rollback(
        &self,
        req: &RollbackRequest,
        on_attempt: impl FnMut(&'static str),
    ) -> Result<String, retry::RetryError> {
        match self {
            Backend::Webhook(w) => w.rollback(req, on_attempt).await,
        }
    }
}

/// The actions stage. Owns the rollback guard; reads decisions.
pub struct Actor {
    config: Arc<Config>,
    telemetry: Telemetry,
    backend: Option<Arc<Backend>>,
    revision: Revision,
    guard: Guard,
    limiter: DefaultDirectRateLimiter,
    log: ActionLog,
    /// Per rule: the last prevention reported in its current firing episode,
    /// so a rule that keeps firing is reported once, not every tick.
    reported: Vec<Option<Prevented>>,
}

/// A rollback that finished, reported back to the actor loop.
struct Finished {
    succeeded: bool,
}

impl Actor {
    pub fn new(
        config: Arc<Config>,
        telemetry: Telemetry,
        backend: Option<Backend>,
        revision: Revision,
        log: ActionLog,
    ) -> Actor {
        let guard = Guard::new(
            revision.since,
            config.rollback.bake,
            config.rollback.cooldown,
        );
        let quota =
            Quota::per_minute(NonZeroU32::new(ROLLBACKS_PER_MINUTE).expect("non-zero constant"));
        let reported = vec![None; config.rules.len()];
        Actor {
            config,
            telemetry,
            backend: backend.map(Arc::new),
            revision,
            guard,
            limiter: RateLimiter::direct(quota),
            log,
            reported,
        }
    }

    /// Handle decisions until `stop`; then give rollbacks in flight up to
    /// `grace` to finish.
    pub async fn run(
        mut self,
        mut decisions: mpsc::Receiver<Decision>,
        stop: CancellationToken,
        grace: Duration,
    ) {
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => self.finished(done),
                d = decisions.recv() => match d {
                    Some(d) => self.decide(d, &mut tasks),
                    None => break,
                },
            }
        }
        // Decisions made in the last moments are not started on the way out
        // (the pod is going away; a new one decides afresh), but say so.
        decisions.close();
        while let Ok(d) = decisions.try_recv() {
            if d.kind == DecisionKind::Fired {
                let rule = &self.config.rules[d.rule].name;
                tracing::warn!(rule, evidence = %d.evidence, "shutting down: not acting on a rule that just fired");
            }
        }
        let deadline = Instant::now() + grace;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(done)) => self.finished(done),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = tasks.len(),
                        "shutting down with rollbacks still in flight"
                    );
                    tasks.abort_all();
                    break;
                }
            }
        }
    }

    fn finished(&mut self, done: Result<Finished, tokio::task::JoinError>) {
        let succeeded = done.map(|f| f.succeeded).unwrap_or(false);
        self.guard.finished(Instant::now(), succeeded);
    }

    fn decide(&mut self, d: Decision, tasks: &mut JoinSet<Finished>) {
        if d.kind != DecisionKind::Firing {
            // A new episode (or its end): report preventions afresh.
            self.reported[d.rule] = None;
        }
        if d.kind == DecisionKind::Resolved {
            return;
        }
        let config = self.config.clone();
        for action in &config.rules[d.rule].actions {
            match action {
                Action::Rollback => self.rollback(&d, tasks),
                // Configuration refuses `page` until a receiver is supported;
                // should one slip through, say so rather than drop it.
                Action::Page => {
                    if d.kind == DecisionKind::Fired {
                        self.record(
                            &d,
                            "page",
                            "failed",
                            "no page receiver is supported by this build".into(),
                        );
                    }
                }
            }
        }
    }

    fn rollback(&mut self, d: &Decision, tasks: &mut JoinSet<Finished>) {
        let now = Instant::now();
        let check = match self.guard.check(now) {
            Check::Go if self.limiter.check().is_err() => Check::Prevented(Prevented::RateLimited),
            c => c,
        };
        match check {
            Check::Wait => {}
            Check::Prevented(why) => {
                if self.reported[d.rule] != Some(why) {
                    self.reported[d.rule] = Some(why);
                    let rule = &self.config.rules[d.rule].name;
                    self.telemetry.rollback_prevented(rule, why);
                    let detail = match why {
                        Prevented::Baked => format!(
                            "revision {} has run {}, longer than bake {}: not rolled back automatically",
                            self.revision.id,
                            humantime::format_duration(round(
                                now.saturating_duration_since(self.revision.since)
                            )),
                            humantime::format_duration(self.config.rollback.bake)
                        ),
                        Prevented::AlreadyRolledBack => {
                            format!("revision {} was already rolled back", self.revision.id)
                        }
                        Prevented::Cooldown => format!(
                            "the last rollback was less than {} (cooldown) ago",
                            humantime::format_duration(self.config.rollback.cooldown)
                        ),
                        Prevented::RateLimited => {
                            format!("more than {ROLLBACKS_PER_MINUTE} rollbacks in a minute")
                        }
                    };
                    self.record(
                        d,
                        "rollback",
                        &format!("prevented: {}", why.metric_label()),
                        detail,
                    );
                }
            }
            Check::Go => self.start_rollback(d, tasks),
        }
    }

    fn start_rollback(&mut self, d: &Decision, tasks: &mut JoinSet<Finished>) {
        let rule = self.config.rules[d.rule].name.clone();
        let request = RollbackRequest {
            service: self.config.service.clone(),
            revision: self.revision.id.clone(),
            rule: rule.clone(),
            reason: d.evidence.to_string(),
            evidence: d.evidence.clone(),
            fired_at: rfc3339(d.at),
            idempotency_key: format!("backstop/{}/{}", self.config.service, self.revision.id),
        };
        let Some(backend) = self.backend.clone() else {
            self.record(
                d,
                "rollback",
                "failed",
                "no rollback backend configured".into(),
            );
            return;
        };
        if self.config.rollback.dry_run {
            self.guard.started();
            self.guard.finished(Instant::now(), true);
            self.telemetry
                .rollback_result(&rule, "dry_run", Duration::ZERO);
            self.record(
                d,
                "rollback",
                "dry_run",
                format!(
                    "would ask the {} to roll back revision {}",
                    backend.label(),
                    request.revision
                ),
            );
            return;
        }
        self.guard.started();
        self.telemetry.rollback_started(&rule, &request);
        let telemetry = self.telemetry.clone();
        let log = self.log.clone();
        let decided = d.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let result = backend
                .rollback(&request, |outcome| {
                    telemetry.action_attempt("rollback", outcome)
                })
                .await;
            let (label, detail) = match &result {
                Ok(answer) => (
                    "succeeded",
                    format!(
                        "{} accepted the rollback of revision {} ({answer})",
                        backend.label(),
                        request.revision
                    ),
                ),
                Err(e) => ("failed", format!("{}: {e}", backend.label())),
            };
            telemetry.rollback_result(&request.rule, label, started.elapsed());
            let record = ActionRecord::new(
                &request.rule,
                "rollback",
                label,
                detail,
                &request.revision,
                &decided,
            );
            telemetry.action(&record);
            log.push(record);
            Finished {
                succeeded: result.is_ok(),
            }
        });
    }

    fn record(&self, d: &Decision, action: &'static str, outcome: &str, detail: String) {
        let rule = &self.config.rules[d.rule].name;
        let record = ActionRecord::new(rule, action, outcome, detail, &self.revision.id, d);
        self.telemetry.action(&record);
        self.log.push(record);
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// Wall-clock time for records.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests;
