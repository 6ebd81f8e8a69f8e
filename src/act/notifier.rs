//! Telling teams beside the pager: a Slack incoming webhook (`page.slack`)
//! and a generic JSON webhook (`page.webhook`). Each gets every notice (a
//! rule fired, its rollback's outcome, it resolved or was left open for a
//! person) as one message, in order: one post in flight, retried with
//! backoff (longer on 429, never on another 4xx), then again every
//! `RETRY_EVERY`, within the receiver's per-minute limit. Undelivered
//! messages wait in a bounded queue; past the bound the oldest is dropped,
//! counted and logged, never silently. The URL is a credential: it is
//! never logged, shown or put in an error.

use super::retry::{self, Answer, Backoff, RetryError};
use super::{ActionLog, ActionOutcome, ActionRecord, Notice, Telemetry};
use crate::config::{NotifyWebhook, Slack, Tls};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

mod body;

/// Undelivered messages are tried again this often.
const RETRY_EVERY: Duration = Duration::from_secs(10);
/// Undelivered messages kept; a longer outage loses the oldest.
const KEEP: usize = 50;

/// Which receiver, and so which body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Slack,
    Webhook,
}

impl Kind {
    /// The `receiver` label and the name in records.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Webhook => "webhook",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Slack => "Slack",
            Kind::Webhook => "the notification webhook",
        }
    }
}

/// Where the messages come from, for their links.
pub struct NotifySource {
    pub status_url: String,
}

pub struct Notifier {
    kind: Kind,
    client: reqwest::Client,
    url: url::Url,
    headers: HeaderMap,
    ctx: NotifySource,
    queue: VecDeque<Waiting>,
    next_seq: u64,
    /// The last post was not taken: the next waits for the retry tick.
    resting: bool,
    limiter: DefaultDirectRateLimiter,
    telemetry: Telemetry,
    log: ActionLog,
}

/// The post in flight: its message's number, notice and task.
type InFlight = (u64, Notice, JoinHandle<Result<Answer, RetryError>>);

struct Waiting {
    seq: u64,
    body: serde_json::Value,
    notice: Notice,
}

impl Notifier {
    pub fn slack(
        config: &Slack,
        tls: &Tls,
        ctx: NotifySource,
        telemetry: Telemetry,
        log: ActionLog,
    ) -> Result<Notifier, crate::tls::ClientError> {
        let client = retry::client(config.timeout, tls)?;
        let url = config.url.expose().clone();
        let headers = HeaderMap::new();
        let parts = (client, url, headers, config.max_per_minute);
        Ok(Notifier::new(Kind::Slack, parts, ctx, telemetry, log))
    }

    pub fn webhook(
        config: &NotifyWebhook,
        tls: &Tls,
        ctx: NotifySource,
        telemetry: Telemetry,
        log: ActionLog,
    ) -> Result<Notifier, crate::tls::ClientError> {
        let client = retry::client(config.timeout, tls)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let field = || format!("page.webhook.headers.{name}");
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| crate::tls::ClientError::invalid(field(), e))?;
            let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
                crate::tls::ClientError::invalid(field(), "not a valid header value")
            })?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let url = config.url.expose().clone();
        let parts = (client, url, headers, config.max_per_minute);
        Ok(Notifier::new(Kind::Webhook, parts, ctx, telemetry, log))
    }

    fn new(
        kind: Kind,
        (client, url, headers, per_minute): (reqwest::Client, url::Url, HeaderMap, u32),
        ctx: NotifySource,
        telemetry: Telemetry,
        log: ActionLog,
    ) -> Notifier {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Notifier {
            kind,
            client,
            url,
            headers,
            ctx,
            queue: VecDeque::new(),
            next_seq: 0,
            resting: false,
            limiter: RateLimiter::direct(quota),
            telemetry,
            log,
        }
    }

    /// The body a notice becomes.
    pub fn body(&self, n: &Notice) -> serde_json::Value {
        match self.kind {
            Kind::Slack => body::slack(n, &self.ctx.status_url),
            Kind::Webhook => body::webhook(n, &self.ctx.status_url),
        }
    }

    pub async fn run(mut self, mut notices: mpsc::Receiver<Notice>, stop: CancellationToken) {
        let mut open = true;
        let mut post: Option<InFlight> = None;
        let mut retry_tick = tokio::time::interval(RETRY_EVERY);
        retry_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let in_flight = async {
                match post.as_mut() {
                    Some((_, _, task)) => task.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Stop first; a finished post before new notices.
                biased;
                _ = stop.cancelled() => break,
                done = in_flight => {
                    let (seq, notice, _) = post.take().expect("a post was in flight");
                    self.finish(seq, &notice, done);
                }
                n = notices.recv(), if open => match n {
                    Some(n) => self.keep(n),
                    None => open = false,
                },
                _ = retry_tick.tick() => self.resting = false,
            }
            if post.is_none() {
                post = self.start();
            }
            // The actor let go (a reload replaced this receiver): what is
            // under way is handed on, then it ends.
            if !open && post.is_none() && (self.queue.is_empty() || self.resting) {
                break;
            }
        }
        if let Some((_, _, task)) = post {
            task.abort();
        }
        if !self.queue.is_empty() {
            tracing::error!(
                receiver = self.kind.label(),
                messages = self.queue.len(),
                "shutting down with messages not delivered"
            );
        }
    }

    fn keep(&mut self, n: Notice) {
        if self.queue.len() == KEEP
            && let Some(lost) = self.queue.pop_front()
        {
            self.telemetry.page_delivery(self.kind.label(), "dropped");
            tracing::error!(
                receiver = self.kind.label(),
                rule = lost.notice.rule.as_str(),
                kept = KEEP,
                "message dropped: {} has not taken messages for a while",
                self.kind.name()
            );
        }
        self.next_seq += 1;
        let body = self.body(&n);
        self.queue.push_back(Waiting {
            seq: self.next_seq,
            body,
            notice: n,
        });
        self.telemetry
            .page_queue(self.kind.label(), self.queue.len());
    }

    /// Post the oldest message, unless resting or over the limit.
    fn start(&mut self) -> Option<InFlight> {
        if self.resting {
            return None;
        }
        let first = self.queue.front()?;
        if self.limiter.check().is_err() {
            self.telemetry.page_delivery(self.kind.label(), "held");
            return None;
        }
        let (client, url, headers, body) = (
            self.client.clone(),
            self.url.clone(),
            self.headers.clone(),
            first.body.clone(),
        );
        let telemetry = self.telemetry.clone();
        let task = tokio::spawn(async move {
            let backoff = Backoff {
                attempts: 3,
                base: Duration::from_millis(500),
                max: Duration::from_secs(8),
            };
            retry::send(
                backoff,
                || {
                    client
                        .post(url.clone())
                        .headers(headers.clone())
                        .json(&body)
                },
                |outcome| telemetry.action_attempt("page", outcome),
            )
            .await
        });
        Some((first.seq, first.notice.clone(), task))
    }

    fn finish(
        &mut self,
        seq: u64,
        notice: &Notice,
        done: Result<Result<Answer, RetryError>, tokio::task::JoinError>,
    ) {
        let (receiver, name) = (self.kind.label(), self.kind.name());
        let sent = match done {
            Ok(sent) => sent,
            Err(e) => {
                tracing::error!(receiver, error = %e, "a post failed; the message stays queued");
                self.resting = true;
                return;
            }
        };
        if let Err(RetryError::Exhausted { last, .. } | RetryError::Superseded { last, .. }) = &sent
        {
            self.telemetry.page_delivery(receiver, "failed");
            tracing::warn!(
                receiver,
                rule = notice.rule.as_str(),
                error = last.as_str(),
                "{name} did not take the message; trying again within 10 s"
            );
            self.resting = true;
            return;
        }
        if let Some(i) = self.queue.iter().position(|w| w.seq == seq) {
            self.queue.remove(i);
        }
        self.telemetry.page_queue(receiver, self.queue.len());
        let (outcome, detail) = match sent {
            Ok(answer) => {
                self.telemetry.page_delivery(receiver, "ok");
                let outcome = if notice.firing {
                    ActionOutcome::Triggered
                } else {
                    ActionOutcome::Resolved
                };
                let mut detail = format!("{name} took the message (HTTP {})", answer.status);
                if let Some(note) = answer.note() {
                    detail.push_str(&format!("; {note}"));
                }
                (outcome, detail)
            }
            Err(e) => {
                // 4xx: the message itself is wrong; repeating it cannot help.
                self.telemetry.page_delivery(receiver, "failed");
                (
                    ActionOutcome::Failed,
                    format!("{name} refused the message: {e}"),
                )
            }
        };
        let record = ActionRecord {
            at: super::rfc3339(std::time::SystemTime::now()),
            rule: notice.rule.clone(),
            action: "page",
            outcome,
            detail,
            revision: notice.revision.clone(),
            evidence: notice.evidence.clone(),
        };
        self.telemetry.action(&record);
        self.log.push(record);
    }
}
