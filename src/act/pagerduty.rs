//! Paging through PagerDuty's Events API v2: one incident per revision.
//! Every rule with `page` that fires for the revision joins it (one dedup
//! key, `backstop/<namespace>/<service>/<revision>`); a trigger with the
//! same key updates it when more rules fire and when the rollback starts
//! and ends, and a notice that says nothing new posts nothing. It is
//! resolved when its last rule returns to ok, except after a rollback: a
//! rolled-back release still needs a person, so the incident stays open
//! and says so (`incident`). PagerDuty opens a new incident for a trigger
//! after a resolve, so a later episode of the same revision is its own.
//!
//! Events wait in a small queue until PagerDuty takes them: retried with
//! backoff (longer on 429, never on 400), then again every `RETRY_EVERY`,
//! so none is dropped and the queue stays bounded (at most a trigger and a
//! resolve wait). One post is in flight at a time, so a resolve never
//! overtakes its trigger; a trigger whose post fails while a newer trigger
//! waits stops retrying (the newer one says more). Notices keep joining
//! the queue while a post is under way, so a slow or hung PagerDuty
//! neither fills the actor's channel nor delays shutdown.

mod incident;

use super::Telemetry;
use super::retry::{self, Answer, Backoff, RetryError};
use super::{ActionLog, ActionOutcome, ActionRecord, Notice};
use crate::config::{PagerDuty, Tls};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use incident::{Incident, Step};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    incident: Incident,
    queue: VecDeque<Event>,
    /// Tells queued events apart, so the one posted is the one taken off.
    next_seq: u64,
    /// The post in flight: its task, its event, and the flag that tells it
    /// a newer trigger waits.
    in_flight: Option<(Id, u64, Arc<AtomicBool>)>,
    /// PagerDuty did not take the last post: tried again at the next retry
    /// tick, not at once.
    resting: bool,
    limiter: DefaultDirectRateLimiter,
    telemetry: Telemetry,
    log: ActionLog,
}

/// One event waiting for PagerDuty, and what to record once it is taken.
struct Event {
    seq: u64,
    trigger: bool,
    body: serde_json::Value,
    notice: Notice,
}

/// How the post of one event ended.
struct Posted {
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
            incident: Incident::default(),
            queue: VecDeque::new(),
            next_seq: 0,
            in_flight: None,
            resting: false,
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
                _ = retry_tick.tick() => self.resting = false,
            }
            self.start(&mut posts);
            // The actor let go (a reload replaced this pager): what is under
            // way is handed on, then the pager ends.
            if inbox.is_none() && posts.is_empty() {
                break;
            }
        }
        let left = self.queue.len();
        if left > 0 {
            tracing::error!(
                events = left,
                "shutting down with PagerDuty events not delivered"
            );
        }
    }

    /// The incident's key: the same for every rule of the revision and for
    /// every replica running it.
    pub fn dedup_key(&self) -> String {
        let ns = self.ctx.namespace.as_deref().unwrap_or("local");
        format!("backstop/{ns}/{}/{}", self.ctx.service, self.ctx.revision)
    }

    fn enqueue(&mut self, n: Notice) {
        let trigger = match self.incident.take(&n) {
            Step::Trigger(content) => Some(content),
            Step::Resolve => None,
            Step::LeftOpen => {
                let record = self.record(
                    &n,
                    ActionOutcome::LeftOpen,
                    "rolled back; the incident stays open for a person to close".into(),
                );
                self.telemetry.action(&record);
                self.log.push(record);
                return;
            }
            Step::Nothing(why) => {
                tracing::debug!(rule = n.rule.as_str(), why, "nothing new for PagerDuty");
                return;
            }
        };
        let body = match &trigger {
            Some(content) => self.trigger(content, &n),
            None => self.resolve(),
        };
        let is_trigger = trigger.is_some();
        // At most a trigger and a resolve wait; a newer event of the same
        // kind replaces the older one (it carries everything the older one
        // did). A trigger being posted is told to stop retrying.
        if let Some(pos) = self.queue.iter().position(|e| e.trigger == is_trigger) {
            let old = self.queue.remove(pos).map(|e| e.seq);
            if let Some((_, seq, newer)) = &self.in_flight
                && old == Some(*seq)
            {
                newer.store(true, Ordering::Relaxed);
            }
        }
        self.next_seq += 1;
        self.queue.push_back(Event {
            seq: self.next_seq,
            trigger: is_trigger,
            body,
            notice: n,
        });
        self.telemetry.page_queue("pagerduty", self.queue.len());
    }

    fn resolve(&self) -> serde_json::Value {
        serde_json::json!({
            "routing_key": self.config.routing_key.expose(),
            "event_action": "resolve",
            "dedup_key": self.dedup_key(),
        })
    }

    /// The Events v2 trigger carrying `content` (summary, severity, class,
    /// details), sent on behalf of the notice `n`.
    fn trigger(&self, content: &serde_json::Value, n: &Notice) -> serde_json::Value {
        let mut summary = content["summary"].as_str().unwrap_or_default().to_string();
        if summary.len() > MAX_SUMMARY {
            let mut cut = MAX_SUMMARY - 3;
            while !summary.is_char_boundary(cut) {
                cut -= 1;
            }
            summary.truncate(cut);
            summary.push_str("...");
        }
        let mut event = serde_json::json!({
            "routing_key": self.config.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": self.dedup_key(),
            "payload": {
                "summary": summary,
                "source": self.ctx.source,
                "severity": content["severity"],
                "timestamp": super::rfc3339(n.at),
                "component": self.ctx.service,
                "group": self.ctx.namespace.as_deref().unwrap_or(&self.ctx.service),
                "class": content["class"],
                "custom_details": content["custom_details"],
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

    /// Start a post of the oldest event, unless one is in flight or the
    /// last one failed since the retry tick.
    fn start(&mut self, posts: &mut JoinSet<Posted>) {
        if self.resting || self.in_flight.is_some() {
            return;
        }
        let Some(event) = self.queue.front() else {
            return;
        };
        if self.limiter.check().is_err() {
            self.telemetry.page_delivery("pagerduty", "held");
            return;
        }
        let newer = Arc::new(AtomicBool::new(false));
        let (client, url, body) = (
            self.client.clone(),
            self.config.url.clone(),
            event.body.clone(),
        );
        let (seq, notice) = (event.seq, event.notice.clone());
        let (telemetry, flag) = (self.telemetry.clone(), newer.clone());
        let task = posts.spawn(async move {
            let sent = post(client, url, body, telemetry, flag).await;
            Posted { seq, notice, sent }
        });
        self.in_flight = Some((task.id(), seq, newer));
    }

    /// Take a finished post off: the event is done with unless PagerDuty
    /// may still take it (then the rule rests until the next retry tick).
    fn finish(&mut self, done: Result<(Id, Posted), JoinError>) {
        self.in_flight = None;
        let Posted { seq, notice, sent } = match done {
            Ok((_, posted)) => posted,
            Err(e) => {
                // Only a panic ends a post this way; the event stays queued.
                tracing::error!(error = %e, "a PagerDuty post failed");
                self.resting = true;
                return;
            }
        };
        let taken_off = |q: &mut VecDeque<Event>| {
            if let Some(i) = q.iter().position(|e| e.seq == seq) {
                q.remove(i);
            }
        };
        match &sent {
            Err(RetryError::Superseded { last, .. }) => {
                // Already replaced in the queue by the newer trigger.
                self.telemetry.page_delivery("pagerduty", "failed");
                tracing::warn!(
                    rule = notice.rule.as_str(),
                    error = last.as_str(),
                    "PagerDuty did not take the event; the newer trigger goes instead"
                );
                return;
            }
            Err(RetryError::Exhausted { last, .. }) => {
                self.telemetry.page_delivery("pagerduty", "failed");
                tracing::warn!(
                    rule = notice.rule.as_str(),
                    error = last.as_str(),
                    "PagerDuty did not take the event; trying again within 10 s"
                );
                self.resting = true;
                return;
            }
            _ => {}
        }
        // A newer event of its kind may have replaced it meanwhile; that one
        // then goes next.
        taken_off(&mut self.queue);
        self.telemetry.page_queue("pagerduty", self.queue.len());
        let record = match sent {
            Ok(answer) => {
                self.telemetry.page_delivery("pagerduty", "ok");
                let (outcome, verb) = if notice.firing {
                    (ActionOutcome::Triggered, "trigger")
                } else {
                    (ActionOutcome::Resolved, "resolve")
                };
                let mut detail = format!("PagerDuty took the {verb} ({})", self.dedup_key());
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
    newer: Arc<AtomicBool>,
) -> Result<Answer, RetryError> {
    let backoff = Backoff {
        attempts: 3,
        base: Duration::from_millis(500),
        max: Duration::from_secs(8),
    };
    retry::send_while(
        backoff,
        || client.post(url.clone()).json(&body),
        |outcome| telemetry.action_attempt("page", outcome),
        || !newer.load(Ordering::Relaxed),
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
