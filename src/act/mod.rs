//! Actions: turn the engine's decisions into rollbacks, pages and
//! annotations. Guards decide whether a rollback may happen; the outbound
//! call runs in its own task so nothing here blocks the engine; every
//! outcome is logged, counted and kept for `/status`.
//!
//! Backends sit beside each other in the `Backend` enum (webhook,
//! Kubernetes); each does its own dry run, so an advisory run goes as far
//! as the backend can without writing.
//!
//! A firing rule's rollback is decided before its page, so every receiver
//! (PagerDuty's one incident per revision, Alertmanager's alert per rule,
//! Slack, the notification webhook) is told in plain words (`words`) what
//! fails, against which limit, and what backstop did about it.

mod admin;
pub mod alertmanager;
pub mod grafana;
mod guard;
pub mod kube;
pub mod notifier;
mod notify;
pub mod pagerduty;
mod record;
mod reload;
pub mod retry;
mod rollback;
mod telemetry;
mod webhook;
pub mod words;

pub use admin::{Command, MAX_PAUSE, Maintenance, Refused};
use admin::{next_command, sleep_until_some};
pub use guard::{Check, Done, Guard, Prevented};
pub use notify::Notice;
use notify::annotate;
pub use record::{ActionLog, ActionOutcome, ActionRecord};
pub use reload::{Receivers, Reconfigure};
pub use telemetry::{Acted, Telemetry};
pub use webhook::{RollbackRequest, WebhookBackend};
pub use words::{Fact, RollbackNote};

use crate::config::{Action, Config, ReceiverChanges, RollbackBackend};
use crate::engine::{Decision, DecisionKind};
use crate::rules::Evidence;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Rollbacks that may leave the process per minute, whatever the rules say.
const ROLLBACKS_PER_MINUTE: u32 = 3;
/// The revision backstop guards, and when it started running.
#[derive(Debug, Clone)]
pub struct Revision {
    pub id: String,
    pub since: Instant,
}

impl Revision {
    /// The id of a revision nobody named (no `--revision` outside Kubernetes).
    pub const UNNAMED: &'static str = "unnamed";
    /// What an unnamed revision means for the guards: said at start, on
    /// `/`, in `/status` (and counted by `backstop_revision_unnamed`).
    pub const UNNAMED_WARNING: &'static str = "no revision named: outside Kubernetes backstop \
        knows the release only from --revision (BACKSTOP_REVISION), so every release is \
        \"unnamed\": bake counts from backstop's start, not the release's, and the rollback \
        webhook gets the same revision and idempotency key for every release; start backstop \
        with --revision set to the release's version";
}

/// What a rollback backend did (errors aside).
#[derive(Debug, Clone, PartialEq)]
pub enum Rolled {
    /// Done: what was done, and the revision now running when the backend
    /// knows it (`revision 6`, `v1`), for the incident's summary.
    Back { detail: String, to: Option<String> },
    /// Dry run: what would have been done.
    DryRun(String),
    /// The backend looked and would not (no previous revision, paused,
    /// another replica already did it, ...).
    Refused(Prevented, String),
}

/// Why the rollback backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Client(#[from] crate::tls::ClientError),
    #[error("rollback.kubernetes needs the pod's identity in the cluster")]
    NoIdentity,
}

/// Where rollbacks go.
pub enum Backend {
    Webhook(WebhookBackend),
    Kubernetes(kube::KubeBackend),
    /// `rollback.kubernetes` that cannot roll back: every rollback is
    /// refused with the reason, and the rule's page says it.
    PageOnly(crate::cluster::PageOnly),
}

impl Backend {
    /// The configured backend. Kubernetes needs the pod's identity, found
    /// at start-up (`cluster`).
    pub fn from_config(
        config: &Config,
        cluster: Option<(crate::cluster::Connection, crate::cluster::Identity)>,
        page_only: Option<&crate::cluster::PageOnly>,
    ) -> Result<Option<Backend>, BackendError> {
        Ok(match (&config.rollback.backend, cluster) {
            (None, _) => None,
            (Some(RollbackBackend::Webhook(w)), _) => {
                let client = retry::client(w.timeout, &config.tls)?;
                Some(Backend::Webhook(WebhookBackend::new(
                    client,
                    w.clone(),
                    retry::Backoff::default(),
                )?))
            }
            (Some(RollbackBackend::Kubernetes(k)), Some((ctx, id))) => Some(Backend::Kubernetes(
                kube::KubeBackend::new(ctx, id, k.clone(), retry::Backoff::default()),
            )),
            (Some(RollbackBackend::Kubernetes(_)), None) => match page_only {
                Some(p) => Some(Backend::PageOnly(p.clone())),
                None => return Err(BackendError::NoIdentity),
            },
        })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Backend::Webhook(_) => "webhook",
            Backend::Kubernetes(_) | Backend::PageOnly(_) => "kubernetes",
        }
    }

    async fn rollback(
        &self,
        req: &RollbackRequest,
        dry_run: bool,
        on_attempt: impl FnMut(&'static str),
    ) -> Result<Rolled, retry::RetryError> {
        match self {
            Backend::Webhook(w) => w.rollback(req, dry_run, on_attempt).await,
            Backend::Kubernetes(k) => k.rollback(req, dry_run, on_attempt).await,
            Backend::PageOnly(p) => Ok(Rolled::Refused(Prevented::PageOnly, p.message.clone())),
        }
    }
}

/// What the actions stage reads from the engine, in the order it was sent.
// Decisions are the common message and the large one; boxing them would
// allocate for every decision to save room on the rare reload.
#[allow(clippy::large_enum_variant)]
pub enum ToActor {
    Decision(Decision),
    /// A new configuration generation: every decision before it belongs to
    /// the old one, every decision after it to the new one. Replies once
    /// applied.
    Reconfigure(Box<Reconfigure>, oneshot::Sender<()>),
}

/// The actions stage. Owns the rollback guard; reads decisions.
pub struct Actor {
    config: Arc<Config>,
    /// The configuration generation `config` is; decisions carry theirs.
    generation: u64,
    telemetry: Telemetry,
    backend: Option<Arc<Backend>>,
    revision: Revision,
    guard: Guard,
    limiter: DefaultDirectRateLimiter,
    log: ActionLog,
    /// Per rule, what this stage did in the rule's current episode.
    episodes: Vec<Episode>,
    /// Where pages go and where rollbacks and incidents are marked.
    receivers: Receivers,
    /// Requests from the admin API.
    commands: Option<mpsc::Receiver<Command>>,
    /// The current maintenance window, published for `/status`.
    paused: watch::Sender<Option<Maintenance>>,
}

/// What the actions stage did for one rule in its current firing episode.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Episode {
    /// The last prevention reported, so a rule that keeps firing is
    /// reported once, not every tick.
    reported: Option<Prevented>,
    /// It fired during a pause and was not paged: page it if it still
    /// fires when the pause ends.
    held: bool,
    /// Its incident is open at the receivers (paged, not yet resolved).
    open: bool,
    /// Receivers replaced on a reload while it was open: tell them on its
    /// next reminder.
    announce: ReceiverChanges,
}

/// A rollback that finished, reported back to the actor loop.
struct Finished {
    done: Done,
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
        let episodes = vec![Episode::default(); config.rules.len()];
        Actor {
            config,
            generation: 0,
            telemetry,
            backend: backend.map(Arc::new),
            revision,
            guard,
            limiter: RateLimiter::direct(quota),
            receivers: Receivers::default(),
            log,
            episodes,
            commands: None,
            paused: watch::Sender::new(None),
        }
    }

    /// Send pages and annotations to these receivers.
    pub fn with_receivers(mut self, receivers: Receivers) -> Actor {
        self.receivers = receivers;
        self
    }

    /// Take requests from the admin API on `commands`.
    pub fn with_commands(mut self, commands: mpsc::Receiver<Command>) -> Actor {
        self.commands = Some(commands);
        self
    }

    /// The maintenance window as it changes (None: not paused).
    pub fn maintenance(&self) -> watch::Receiver<Option<Maintenance>> {
        self.paused.subscribe()
    }

    /// Handle decisions until `stop`; then give rollbacks in flight up to
    /// `grace` to finish.
    pub async fn run(
        mut self,
        mut inbox: mpsc::Receiver<ToActor>,
        stop: CancellationToken,
        grace: Duration,
    ) {
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        let mut commands = self.commands.take();
        loop {
            let pause_ends = self.paused.borrow().as_ref().map(|m| m.ends);
            // In this order: stopping wins; a finished rollback is known to
            // the guard before the next decision is weighed; a person's
            // command and the end of a pause before automatic decisions.
            // Reloads need no place here: they come in order with the
            // decisions, on the same channel.
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => self.finished(done),
                Some(c) = next_command(&mut commands) => self.command(c, &mut tasks),
                _ = sleep_until_some(pause_ends) => self.expire_pause(Instant::now()),
                m = inbox.recv() => match m {
                    Some(ToActor::Decision(d)) => self.decide(d, &mut tasks),
                    Some(ToActor::Reconfigure(r, applied)) => {
                        self.reconfigure(*r);
                        let _ = applied.send(());
                    }
                    None => break,
                },
            }
        }
        // Decisions made in the last moments are not started on the way out
        // (the pod is going away; a new one decides afresh), but say so.
        inbox.close();
        while let Ok(m) = inbox.try_recv() {
            match m {
                ToActor::Decision(d) if d.kind == DecisionKind::Fired => {
                    if let Some(rule) = self.rule(&d) {
                        let evidence = serde_json::to_string(&d.evidence).unwrap_or_default();
                        tracing::warn!(rule = rule.name.as_str(), summary = %d.evidence, evidence, "shutting down: not acting on a rule that just fired");
                    }
                }
                ToActor::Decision(_) => {}
                ToActor::Reconfigure(r, applied) => {
                    self.reconfigure(*r);
                    let _ = applied.send(());
                }
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
        let done = done.map(|f| f.done).unwrap_or(Done::Failed);
        self.guard.finished(Instant::now(), done);
    }

    /// The rule a decision is about, if it belongs to this generation.
    fn rule(&self, d: &Decision) -> Option<&crate::config::Rule> {
        (d.generation == self.generation)
            .then(|| self.config.rules.get(d.rule))
            .flatten()
    }

    fn decide(&mut self, d: Decision, tasks: &mut JoinSet<Finished>) {
        if self.rule(&d).is_none() {
            // Cannot happen: reloads come in order with the decisions.
            // Should it, acting on another generation's rule would be worse
            // than skipping one reminder.
            tracing::error!(
                generation = d.generation,
                current = self.generation,
                rule = d.rule,
                "decision of another configuration generation skipped"
            );
            return;
        }
        self.expire_pause(Instant::now());
        if d.kind != DecisionKind::Firing {
            // A new episode (or its end): report preventions afresh.
            self.episodes[d.rule].reported = None;
        }
        // The rollback first, so that the page says what became of it.
        let actions = &self.config.rules[d.rule].actions;
        let (rolls_back, pages) = (
            actions.contains(&Action::Rollback),
            actions.contains(&Action::Page),
        );
        let note = if rolls_back && d.kind != DecisionKind::Resolved {
            self.rollback(&d, tasks)
        } else {
            None
        };
        if pages {
            self.page_or_hold(&d, note);
        }
    }

    /// Page on a rule's first firing and on its end; during a pause hold the
    /// page back, and send it when the pause ends if the rule still fires.
    fn page_or_hold(&mut self, d: &Decision, note: Option<RollbackNote>) {
        let paused = self.paused.borrow().is_some();
        let e = &mut self.episodes[d.rule];
        match d.kind {
            DecisionKind::Fired if paused => {
                e.held = true;
                let detail = "automatic actions are paused (maintenance window); paged if \
                              the rule still fires when the pause ends"
                    .to_string();
                let outcome = ActionOutcome::Prevented(Prevented::Maintenance);
                self.record(d, "page", outcome, detail);
            }
            DecisionKind::Fired => {
                e.open = true;
                self.page(d, note, ReceiverChanges::ALL);
            }
            DecisionKind::Firing if (e.held || e.announce.any()) && !paused => {
                // Held back by a pause: everyone; after a reload: the new receivers.
                let to = if e.held {
                    ReceiverChanges::ALL
                } else {
                    e.announce
                };
                (e.held, e.announce, e.open) = (false, ReceiverChanges::default(), true);
                let mut first = d.clone();
                first.kind = DecisionKind::Fired;
                self.page(&first, note, to);
            }
            // A failed rollback tried again: the incident hears it is under way.
            DecisionKind::Firing
                if e.open && !paused && matches!(note, Some(RollbackNote::Started)) =>
            {
                let mut again = d.clone();
                again.kind = DecisionKind::Fired;
                self.page(&again, note, ReceiverChanges::ALL);
            }
            // The pager re-sends on its own schedule; reminders add nothing.
            DecisionKind::Firing => {}
            // Never paged: there is no incident to resolve.
            DecisionKind::Resolved if e.held => e.held = false,
            DecisionKind::Resolved => {
                (e.open, e.announce) = (false, ReceiverChanges::default());
                self.page(d, None, ReceiverChanges::ALL);
            }
        }
    }

    fn record(&self, d: &Decision, action: &'static str, outcome: ActionOutcome, detail: String) {
        let rule = &self.config.rules[d.rule].name;
        let record = ActionRecord::new(rule, action, outcome, detail, &self.revision.id, d);
        self.telemetry.action(&record);
        self.log.push(record);
    }
}

/// Wall-clock time for records.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests;
