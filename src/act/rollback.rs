//! The rollback path: the guard's verdict on a firing rule, the request to
//! the backend in a task of its own (`RollbackRun`), and what its outcome
//! tells the records, the metrics, the incident and Grafana.

use super::*;

impl Actor {
    /// Start the rollback a firing rule asks for, if the guard lets it;
    /// returns where it stands, for the rule's page.
    pub(super) fn rollback(
        &mut self,
        d: &Decision,
        tasks: &mut JoinSet<Finished>,
    ) -> Option<RollbackNote> {
        let now = Instant::now();
        let check = match self.guard.check(now) {
            Check::Wait => Check::Wait,
            _ if self.paused.borrow().is_some() => Check::Prevented(Prevented::Maintenance),
            Check::Go if self.limiter.check().is_err() => Check::Prevented(Prevented::RateLimited),
            c => c,
        };
        match check {
            Check::Wait => None,
            // This episode already rolled back (or settled) this revision:
            // its reminders have nothing new to say. A new episode on the
            // same revision is reported below.
            Check::Prevented(Prevented::AlreadyRolledBack) if d.kind == DecisionKind::Firing => {
                None
            }
            Check::Prevented(why) => {
                let detail = self.prevented_detail(why, now);
                if self.episodes[d.rule].reported != Some(why) {
                    self.episodes[d.rule].reported = Some(why);
                    let rule = &self.config.rules[d.rule].name;
                    self.telemetry.rollback_prevented(rule, why);
                    self.record(d, "rollback", ActionOutcome::Prevented(why), detail.clone());
                }
                Some(RollbackNote::Prevented {
                    reason: why,
                    detail,
                })
            }
            Check::Go => {
                let rule = self.config.rules[d.rule].name.clone();
                // A rule that also pages updates its incident with the outcome.
                let pages = self.config.rules[d.rule].actions.contains(&Action::Page);
                let follow_up = pages.then(|| {
                    let pagers = self
                        .receivers
                        .pagers(ReceiverChanges::ALL)
                        .cloned()
                        .collect();
                    (self.notice(d, true, None), pagers)
                });
                self.start_rollback(rule, d, follow_up, tasks);
                Some(RollbackNote::Started)
            }
        }
    }

    pub(super) fn start_rollback(
        &mut self,
        rule: String,
        d: &Decision,
        follow_up: Option<(Notice, Vec<mpsc::Sender<Notice>>)>,
        tasks: &mut JoinSet<Finished>,
    ) {
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
            let detail = "no rollback backend configured".into();
            self.record(d, "rollback", ActionOutcome::Failed, detail);
            return;
        };
        self.guard.started();
        self.telemetry.rollback_started(&rule, &request);
        let dry_run = self.config.rollback.dry_run;
        let span = tracing::info_span!(
            "rollback",
            backstop.rule = rule.as_str(),
            backstop.revision = request.revision.as_str(),
            backstop.reason = request.reason.as_str(),
            backstop.backend = backend.label(),
            backstop.dry_run = dry_run,
            backstop.outcome = tracing::field::Empty,
        );
        let run = RollbackRun {
            backend,
            request,
            dry_run,
            telemetry: self.telemetry.clone(),
            log: self.log.clone(),
            decided: d.clone(),
            annotator: self.receivers.grafana.clone(),
            follow_up,
        };
        tasks.spawn(run.run(span.clone()).instrument(span));
    }

    /// Why the guard held a rollback back, in words for records and logs.
    fn prevented_detail(&self, why: Prevented, now: Instant) -> String {
        let revision = &self.revision.id;
        match why {
            Prevented::Baked => format!(
                "revision {revision} has run {}, longer than bake {}: not rolled back automatically",
                humantime::format_duration(round(
                    now.saturating_duration_since(self.revision.since)
                )),
                humantime::format_duration(self.config.rollback.bake)
            ),
            Prevented::AlreadyRolledBack => format!("revision {revision} was already rolled back"),
            Prevented::Cooldown => format!(
                "the last rollback was less than {} (cooldown) ago",
                humantime::format_duration(self.config.rollback.cooldown)
            ),
            Prevented::RateLimited => {
                format!("more than {ROLLBACKS_PER_MINUTE} rollbacks in a minute")
            }
            Prevented::Maintenance => {
                let until = self.paused.borrow().as_ref().map(|m| m.until.clone());
                format!(
                    "automatic actions are paused (maintenance window) until {}; rolled back if \
                     the rule still fires then",
                    until.unwrap_or_else(|| "now".into())
                )
            }
            other => other.metric_label().replace('_', " "),
        }
    }
}

/// One rollback under way, in its own task: the backend's call with its
/// retries, then what it did told everywhere (metrics, the record, the
/// incident's update, a Grafana mark).
struct RollbackRun {
    backend: Arc<Backend>,
    request: RollbackRequest,
    dry_run: bool,
    telemetry: Telemetry,
    log: ActionLog,
    decided: Decision,
    annotator: Option<mpsc::Sender<grafana::Annotation>>,
    /// A rule that also pages updates its incident with the outcome.
    follow_up: Option<(Notice, Vec<mpsc::Sender<Notice>>)>,
}

impl RollbackRun {
    async fn run(self, span: tracing::Span) -> Finished {
        let RollbackRun {
            backend,
            request,
            dry_run,
            telemetry,
            log,
            decided,
            annotator,
            follow_up,
        } = self;
        let started = Instant::now();
        let result = backend
            .rollback(&request, dry_run, |outcome| {
                telemetry.action_attempt("rollback", outcome)
            })
            .await;
        let took = started.elapsed();
        let rule = request.rule.as_str();
        let mut rolled_to = None;
        let (outcome, detail, done) = match result {
            Ok(Rolled::Back { detail, to }) => {
                let text = format!("backstop: {detail}. Rule {rule}: {}", request.reason);
                annotate(&annotator, rule, text, SystemTime::now());
                rolled_to = to;
                (ActionOutcome::Succeeded, detail, Done::RolledBack)
            }
            Ok(Rolled::DryRun(detail)) => (ActionOutcome::DryRun, detail, Done::Settled),
            // A cluster-wide pause ends: asked again while the rule fires.
            Ok(Rolled::Refused(why @ Prevented::Hold, detail)) => {
                telemetry.rollback_prevented(rule, why);
                (ActionOutcome::Prevented(why), detail, Done::Failed)
            }
            Ok(Rolled::Refused(why, detail)) => {
                telemetry.rollback_prevented(rule, why);
                (ActionOutcome::Prevented(why), detail, Done::Settled)
            }
            Err(e) => {
                let detail = format!("{}: {e}", backend.label());
                (ActionOutcome::Failed, detail, Done::Failed)
            }
        };
        if let Some(label) = outcome.rollback_label() {
            telemetry.rollback_result(rule, label, took);
        }
        span.record("backstop.outcome", outcome.as_str());
        if let Some((notice, pagers)) = follow_up {
            let mut notice = notice.with_rollback(RollbackNote::Done {
                outcome,
                detail: detail.clone(),
                to: rolled_to,
            });
            notice.description = format!("{} Rollback: {outcome}: {detail}.", notice.description);
            for pager in &pagers {
                if let Err(e) = pager.try_send(notice.clone()) {
                    tracing::warn!(rule, error = %e, "rollback outcome not queued for a receiver");
                }
            }
        }
        let record = ActionRecord::new(
            rule,
            "rollback",
            outcome,
            detail,
            &request.revision,
            &decided,
        );
        telemetry.action(&record);
        log.push(record);
        Finished { done }
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
