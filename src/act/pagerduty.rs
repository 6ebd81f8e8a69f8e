//! Paging through PagerDuty's Events API v2: `trigger` when a rule with
//! `page` fires, `resolve` with the same `dedup_key` when it returns to ok —
//! except after a rollback: a rolled-back release still needs a person, so
//! that incident stays open and says so. Events wait in a small per-rule
//! queue until PagerDuty takes them: retried with backoff (longer on 429,
//! never on 400), then again every `RETRY_EVERY`, so none is dropped and
//! the queue stays bounded (at most a trigger and a resolve per rule).
//! Rules are delivered independently: each has at most one post in flight
//! (its oldest event, so a resolve never overtakes its trigger), and the
//! posts of different rules run side by side, so a post that hangs for one
//! rule never holds up another's page. Notices keep joining the queue while
//! posts are under way, so a slow or hung PagerDuty neither fills the
//! actor's channel nor delays shutdown.

use super::Telemetry;
use super::retry::{self, Answer, Backoff, RetryError};
use super::{ActionLog, ActionOutcome, ActionRecord, Notice};
use crate::config::{PagerDuty, Tls};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Undelivered events are tried again this often.
const RETRY_EVERY: Duration = Duration::from_secs(10);
/// PagerDuty's limits on one event.
const MAX_SUMMARY: usize = 1024;
const MAX_EVENT_BYTES: usize = 512 * 1024;

/// Where the events come from.
pub struct EventSource {
    pub service: String,
    pub revision: String,
    pub namespace: Option<String>,
    /// The pod or host name: PagerDuty's `source`.
    pub source: String,
    pub status_url: String,
    /// The Grafana overview dashboard, when `annotate.grafana` is configured.
    pub dashboard_url: Option<String>,
}

pub struct EventSender {
    client: reqwest::Client,
    config: PagerDuty,
    ctx: EventSource,
    queue: BTreeMap<String, VecDeque<Event>>,
    /// Tells queued events apart, so the one posted is the one taken off.
    next_seq: u64,
    /// The rule each post in flight is for (one post per rule at most).
    in_flight: HashMap<Id, String>,
    /// Rules whose last post PagerDuty did not take: tried again at the
    /// next retry tick, not at once.
    resting: BTreeSet<String>,
    limiter: DefaultDirectRateLimiter,
    telemetry: Telemetry,
    log: ActionLog,
}

/// One event waiting for PagerDuty, and what to record once it is taken.
struct Event {
    seq: u64,
    body: serde_json::Value,
    notice: Notice,
}

/// How the post of one event ended.
struct Posted {
    rule: String,
    seq: u64,
    notice: Notice,
    sent: Result<Answer, RetryError>,
}

impl EventSender {
    pub fn new(
        config: PagerDuty,
        tls: &Tls,
        ctx: EventSource,
        telemetry: Telemetry,
        log: ActionLog,
    ) -> Result<EventSender, crate::tls::ClientError> {
        let client = retry::client(config.timeout, tls)?;
        let quota =
            Quota::per_minute(NonZeroU32::new(config.max_per_minute).unwrap_or(NonZeroU32::MIN));
        Ok(EventSender {
            client,
            config,
            ctx,
            queue: BTreeMap::new(),
            next_seq: 0,
            in_flight: HashMap::new(),
            resting: BTreeSet::new(),
            limiter: RateLimiter::direct(quota),
            telemetry,
            log,
        })
    }

    pub async fn run(mut self, notices: mpsc::Receiver<Notice>, stop: CancellationToken) {
        let mut inbox = Some(notices);
        // Dropping the set (on stop) cuts the posts in flight.
        let mut posts = JoinSet::new();
        let mut retry_tick = tokio::time::interval(RETRY_EVERY);
        retry_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                // Stop first; a finished post before new notices, so its
                // record and the rule's next event go out at once.
                biased;
                _ = stop.cancelled() => break,
                Some(done) = posts.join_next_with_id() => self.finish(done),
                n = next(&mut inbox), if inbox.is_some() => {
                    if let Some(n) = n {
                        self.enqueue(n);
                    }
                }
                _ = retry_tick.tick() => self.resting.clear(),
            }
            self.start(&mut posts);
            // The actor let go (a reload replaced this pager): what is under
            // way is handed on, then the pager ends.
            if inbox.is_none() && posts.is_empty() {
                break;
            }
        }
        let left = self.queued();
        if left > 0 {
            tracing::error!(
                events = left,
                "shutting down with PagerDuty events not delivered"
            );
        }
    }

    /// Events waiting for PagerDuty, over all rules.
    fn queued(&self) -> usize {
        self.queue.values().map(VecDeque::len).sum()
    }

    pub fn dedup_key(&self, rule: &str) -> String {
        let ns = self.ctx.namespace.as_deref().unwrap_or("local");
        format!("backstop/{ns}/{}/{rule}", self.ctx.service)
    }

    fn enqueue(&mut self, n: Notice) {
        if !n.firing && n.rolled_back {
            // Rolled back: the incident stays open for a person.
            let record = self.record(
                &n,
                ActionOutcome::LeftOpen,
                "rolled back; the incident stays open for a person to close".into(),
            );
            self.telemetry.action(&record);
            self.log.push(record);
            return;
        }
        let body = self.event(&n);
        let q = self.queue.entry(n.rule.clone()).or_default();
        // At most a trigger and a resolve wait per rule; a newer event of the
        // same kind replaces the older one (PagerDuty dedups by key anyway).
        if let Some(pos) = q.iter().position(|e| e.notice.firing == n.firing) {
            q.remove(pos);
        }
        self.next_seq += 1;
        q.push_back(Event {
            seq: self.next_seq,
            body,
            notice: n,
        });
        self.telemetry.page_queue("pagerduty", self.queued());
    }

    /// The Events v2 body for a notice.
    pub fn event(&self, n: &Notice) -> serde_json::Value {
        let key = self.config.routing_key.expose();
        let dedup_key = self.dedup_key(&n.rule);
        if !n.firing {
            return serde_json::json!({ "routing_key": key, "event_action": "resolve", "dedup_key": dedup_key });
        }
        let mut summary = n.summary.clone();
        if summary.len() > MAX_SUMMARY {
            let mut cut = MAX_SUMMARY - 3;
            while !summary.is_char_boundary(cut) {
                cut -= 1;
            }
            summary.truncate(cut);
            summary.push_str("...");
        }
        let mut details = serde_json::json!({
            "rule": n.rule,
            "revision": self.ctx.revision,
            "actions": n.actions,
            "evidence": n.evidence,
            "why": n.evidence.to_string(),
        });
        if let Some(outcome) = &n.rollback {
            details["rollback"] = serde_json::json!(outcome);
        }
        if n.actions.contains(&"rollback") {
            details["note"] = serde_json::json!(
                "this rule rolls the release back; if it does, the incident is not resolved automatically: the bad release still needs a person"
            );
        }
        let mut event = serde_json::json!({
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": summary,
                "source": self.ctx.source,
                "severity": n.severity.as_str(),
                "timestamp": super::rfc3339(n.at),
                "component": self.ctx.service,
                "group": self.ctx.namespace.as_deref().unwrap_or(&self.ctx.service),
                "class": n.evidence_kind(),
                "custom_details": details,
            },
            "client": "backstop",
            "client_url": self.ctx.status_url,
            "links": [{ "href": self.ctx.status_url, "text": "backstop /status" }],
        });
        if let Some(dashboard) = &self.ctx.dashboard_url
            && let Some(links) = event["links"].as_array_mut()
        {
            links.push(
                serde_json::json!({ "href": dashboard, "text": "Grafana: backstop overview" }),
            );
        }
        if event.to_string().len() > MAX_EVENT_BYTES {
            event["payload"]["custom_details"] =
                serde_json::json!({ "why": n.evidence.to_string() });
        }
        event
    }

    /// Start a post for every rule that has an event waiting, no post in
    /// flight and no failure since the last retry tick: its oldest event,
    /// so a resolve never overtakes its trigger.
    fn start(&mut self, posts: &mut JoinSet<Posted>) {
        for (rule, q) in &self.queue {
            if self.resting.contains(rule) || self.in_flight.values().any(|r| r == rule) {
                continue;
            }
            let Some(event) = q.front() else { continue };
            if self.limiter.check().is_err() {
                self.telemetry.page_delivery("pagerduty", "held");
                return;
            }
            let (client, url, body) = (
                self.client.clone(),
                self.config.url.clone(),
                event.body.clone(),
            );
            let (name, seq, notice) = (rule.clone(), event.seq, event.notice.clone());
            let telemetry = self.telemetry.clone();
            let task = posts.spawn(async move {
                let sent = post(client, url, body, telemetry).await;
                Posted {
                    rule: name,
                    seq,
                    notice,
                    sent,
                }
            });
            self.in_flight.insert(task.id(), rule.clone());
        }
    }

    /// Take a finished post off: the event is done with unless PagerDuty
    /// may still take it (then the rule rests until the next retry tick).
    fn finish(&mut self, done: Result<(Id, Posted), JoinError>) {
        let Posted {
            rule,
            seq,
            notice,
            sent,
        } = match done {
            Ok((id, posted)) => {
                self.in_flight.remove(&id);
                posted
            }
            Err(e) => {
                // Only a panic ends a post this way; the event stays queued.
                if let Some(rule) = self.in_flight.remove(&e.id()) {
                    tracing::error!(rule = rule.as_str(), error = %e, "a PagerDuty post failed");
                    self.resting.insert(rule);
                }
                return;
            }
        };
        if let Err(RetryError::Exhausted { last, .. } | RetryError::Superseded { last, .. }) = &sent
        {
            self.telemetry.page_delivery("pagerduty", "failed");
            tracing::warn!(
                rule = rule.as_str(),
                error = last.as_str(),
                "PagerDuty did not take the event; trying again within 10 s"
            );
            self.resting.insert(rule);
            return;
        }
        // A newer event of its kind may have replaced it meanwhile; that one
        // then goes next.
        if let Some(q) = self.queue.get_mut(&rule) {
            if let Some(i) = q.iter().position(|e| e.seq == seq) {
                q.remove(i);
            }
            if q.is_empty() {
                self.queue.remove(&rule);
            }
        }
        self.telemetry.page_queue("pagerduty", self.queued());
        let record = match sent {
            Ok(answer) => {
                self.telemetry.page_delivery("pagerduty", "ok");
                let (outcome, verb) = if notice.firing {
                    (ActionOutcome::Triggered, "trigger")
                } else {
                    (ActionOutcome::Resolved, "resolve")
                };
                let mut detail = format!("PagerDuty took the {verb} ({})", self.dedup_key(&rule));
                if let Some(note) = answer.note() {
                    detail.push_str(&format!("; {note}"));
                }
                self.record(&notice, outcome, detail)
            }
            Err(e) => {
                // 4xx: the event itself is wrong; repeating it cannot help.
                self.telemetry.page_delivery("pagerduty", "failed");
                self.record(
                    &notice,
                    ActionOutcome::Failed,
                    format!("PagerDuty refused the event: {e}"),
                )
            }
        };
        self.telemetry.action(&record);
        self.log.push(record);
    }

    fn record(&self, n: &Notice, outcome: ActionOutcome, detail: String) -> ActionRecord {
        ActionRecord {
            at: super::rfc3339(std::time::SystemTime::now()),
            rule: n.rule.clone(),
            action: "page",
            outcome,
            detail,
            revision: self.ctx.revision.clone(),
            evidence: n.evidence.clone(),
        }
    }
}

/// Post one event until PagerDuty takes it, refuses it, or the attempts run
/// out. Owns what it needs, so the pager can queue notices meanwhile.
async fn post(
    client: reqwest::Client,
    url: url::Url,
    body: serde_json::Value,
    telemetry: Telemetry,
) -> Result<Answer, RetryError> {
    let backoff = Backoff {
        attempts: 3,
        base: Duration::from_millis(500),
        max: Duration::from_secs(8),
    };
    retry::send(
        backoff,
        || client.post(url.clone()).json(&body),
        |outcome| telemetry.action_attempt("page", outcome),
    )
    .await
}

/// The next notice from the actor; None once it has hung up (`inbox` is
/// then None, and a `select!` branch matching `Some` stays disabled).
pub(super) async fn next(inbox: &mut Option<mpsc::Receiver<Notice>>) -> Option<Notice> {
    let rx = inbox.as_mut()?;
    let n = rx.recv().await;
    if n.is_none() {
        *inbox = None;
    }
    n
}
