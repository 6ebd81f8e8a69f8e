//! What the admin API asks of the actions stage: a manual rollback, and a
//! pause of automatic rollbacks and pages (a maintenance window).

use super::*;

/// Longest maintenance window one request may open: a forgotten pause must
/// not switch backstop off for good.
pub const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// What the admin API (and a configuration reload) asks of the actions stage.
pub enum Command {
    /// Roll back now: a person decided. Bake, cooldown and a pause do not
    /// apply; once per revision and one at a time still do. The reply says
    /// the rollback started (its outcome follows in `/status`), or why not.
    Rollback {
        reason: String,
        reply: oneshot::Sender<Result<String, Refused>>,
    },
    /// Hold automatic rollbacks and pages for `duration` (at most `MAX_PAUSE`).
    Pause {
        duration: Duration,
        reason: String,
        reply: oneshot::Sender<Maintenance>,
    },
    /// End a pause now; replies with the pause that ended, if any.
    Resume {
        reply: oneshot::Sender<Option<Maintenance>>,
    },
}

/// Why a person's rollback did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no rollback backend is configured (rollback.webhook or rollback.kubernetes)")]
    NoBackend,
    #[error("a rollback is already in flight; see /status")]
    InFlight,
    #[error("revision {0} was already rolled back (or a dry run said it would be)")]
    AlreadyRolledBack(String),
    #[error("more than {ROLLBACKS_PER_MINUTE} rollbacks in a minute; try again shortly")]
    RateLimited,
}

/// A pause of automatic actions (a maintenance window), as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Maintenance {
    pub reason: String,
    pub since: String,
    pub until: String,
    #[serde(skip)]
    pub ends: Instant,
}

impl Actor {
    pub(super) fn command(&mut self, command: Command, tasks: &mut JoinSet<Finished>) {
        let now = Instant::now();
        self.expire_pause(now);
        match command {
            Command::Rollback { reason, reply } => {
                let _ = reply.send(self.manual_rollback(reason, tasks));
            }
            Command::Pause {
                duration,
                reason,
                reply,
            } => {
                let duration = duration.min(MAX_PAUSE);
                let wall = SystemTime::now();
                let window = Maintenance {
                    reason,
                    since: rfc3339(wall),
                    until: rfc3339(wall + duration),
                    ends: now + duration,
                };
                tracing::warn!(
                    reason = window.reason.as_str(),
                    until = window.until.as_str(),
                    "automatic rollbacks and pages paused through the admin API"
                );
                self.telemetry.actions_paused(&self.config.service, true);
                self.paused.send_replace(Some(window.clone()));
                let _ = reply.send(window);
            }
            Command::Resume { reply } => {
                let ended = self.paused.send_replace(None);
                if let Some(m) = &ended {
                    tracing::warn!(
                        reason = m.reason.as_str(),
                        "automatic actions resumed through the admin API"
                    );
                    self.telemetry.actions_paused(&self.config.service, false);
                }
                let _ = reply.send(ended);
            }
        }
    }

    /// End the pause once its time has come.
    pub(super) fn expire_pause(&mut self, now: Instant) {
        let over = self.paused.borrow().as_ref().is_some_and(|m| now >= m.ends);
        if over {
            self.paused.send_replace(None);
            self.telemetry.actions_paused(&self.config.service, false);
            tracing::warn!("maintenance window over: automatic actions resumed");
        }
    }

    fn manual_rollback(
        &mut self,
        reason: String,
        tasks: &mut JoinSet<Finished>,
    ) -> Result<String, Refused> {
        let revision = &self.revision.id;
        let Some(backend) = &self.backend else {
            return Err(Refused::NoBackend);
        };
        match self.guard.check_manual() {
            Check::Wait => return Err(Refused::InFlight),
            Check::Prevented(_) => return Err(Refused::AlreadyRolledBack(revision.clone())),
            Check::Go => {}
        }
        if self.limiter.check().is_err() {
            return Err(Refused::RateLimited);
        }
        let started = format!(
            "rolling back revision {revision} through {}",
            backend.label()
        );
        let d = Decision {
            generation: self.generation,
            rule: usize::MAX,
            kind: DecisionKind::Fired,
            evidence: Evidence::Manual { reason },
            at: SystemTime::now(),
        };
        self.start_rollback("manual".into(), &d, None, tasks);
        Ok(started)
    }
}

/// The next admin command, or never when there is no admin API.
pub(super) async fn next_command(
    commands: &mut Option<mpsc::Receiver<Command>>,
) -> Option<Command> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleep until `at`, or forever.
pub(super) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
