//! Grafana annotations (`POST /api/annotations`): a mark on every dashboard
//! of the service when backstop rolls back and when a page rule fires or
//! resolves, tagged so dashboards can filter on it. Undelivered marks wait
//! in a bounded queue and are tried again every `RETRY_EVERY`; past the
//! bound the oldest is dropped, counted and logged, never silently. Each
//! rule's marks go out one at a time, the rules' side by side, so a post
//! that hangs for one rule holds up no other rule's mark.

use super::Telemetry;
use super::retry::{self, Answer, Backoff, RetryError};
use crate::config::{Grafana, Secret, Tls};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

const RETRY_EVERY: Duration = Duration::from_secs(10);
/// Undelivered annotations kept; a longer Grafana outage loses the oldest.
const KEEP: usize = 100;

/// One mark on the dashboards.
#[derive(Debug, Clone)]
pub struct Annotation {
    pub at: SystemTime,
    pub text: String,
    /// Besides backstop's own tags (backstop, service, revision).
    pub rule: String,
}

pub struct Annotator {
    client: reqwest::Client,
    config: Grafana,
    /// Where annotations go (`api/annotations` under the configured URL).
    url: url::Url,
    service: String,
    revision: String,
    /// Marks not yet taken (those in flight too), oldest first.
    queue: VecDeque<Waiting>,
    next_seq: u64,
    /// The rule each post in flight is for (one post per rule at most).
    in_flight: HashMap<Id, String>,
    /// Rules whose last post Grafana did not take: tried again at the next
    /// retry tick.
    resting: BTreeSet<String>,
    limiter: DefaultDirectRateLimiter,
    telemetry: Telemetry,
}

/// A mark waiting for Grafana; `seq` tells it apart once it is posted.
struct Waiting {
    seq: u64,
    mark: Annotation,
}

/// How the post of one mark ended.
struct Posted {
    seq: u64,
    rule: String,
    sent: Result<Answer, RetryError>,
}

impl Annotator {
    pub fn new(
        config: Grafana,
        tls: &Tls,
        service: &str,
        revision: &str,
        telemetry: Telemetry,
    ) -> Result<Annotator, crate::tls::ClientError> {
        let client = retry::client(Duration::from_secs(5), tls)?;
        let quota =
            Quota::per_minute(NonZeroU32::new(config.max_per_minute).unwrap_or(NonZeroU32::MIN));
        let url = config
            .url
            .join("api/annotations")
            .map_err(|e| crate::tls::ClientError::invalid("annotate.grafana.url", e))?;
        // One Authorization header: the token wins over credentials in the
        // URL (reqwest would send both, and Grafana reads only the first).
        let url = match config.token {
            Some(_) => crate::redact::url(&url),
            None => url,
        };
        Ok(Annotator {
            client,
            config,
            url,
            service: service.to_string(),
            revision: revision.to_string(),
            queue: VecDeque::new(),
            next_seq: 0,
            in_flight: HashMap::new(),
            resting: BTreeSet::new(),
            limiter: RateLimiter::direct(quota),
            telemetry,
        })
    }

    pub async fn run(mut self, mut marks: mpsc::Receiver<Annotation>, stop: CancellationToken) {
        let mut open = true;
        // Dropping the set (on stop) cuts the posts in flight.
        let mut posts = JoinSet::new();
        let mut retry_tick = tokio::time::interval(RETRY_EVERY);
        retry_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                // Stop first; a finished post before new marks.
                biased;
                _ = stop.cancelled() => return,
                Some(done) = posts.join_next_with_id() => self.finish(done),
                m = marks.recv(), if open => match m {
                    Some(m) => self.keep(m),
                    None => open = false,
                },
                _ = retry_tick.tick() => self.resting.clear(),
            }
            self.start(&mut posts);
            // The actor let go (a reload replaced this annotator): what is
            // under way is handed on, then the annotator ends.
            if !open && posts.is_empty() {
                return;
            }
        }
    }

    fn keep(&mut self, mark: Annotation) {
        if self.queue.len() == KEEP {
            self.queue.pop_front();
            self.telemetry.page_delivery("grafana", "dropped");
            tracing::warn!(
                "Grafana has been unreachable for long: dropped the oldest waiting annotation"
            );
        }
        self.next_seq += 1;
        self.queue.push_back(Waiting {
            seq: self.next_seq,
            mark,
        });
    }

    /// The API body for one annotation.
    pub fn body(&self, a: &Annotation) -> serde_json::Value {
        let ms =
            a.at.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
        serde_json::json!({
            "time": ms,
            "tags": ["backstop", format!("service:{}", self.service), format!("rule:{}", a.rule), format!("revision:{}", self.revision)],
            "text": a.text,
        })
    }

    /// Post the oldest mark of every rule that has no post in flight and
    /// no failure since the last retry tick.
    fn start(&mut self, posts: &mut JoinSet<Posted>) {
        for w in &self.queue {
            let rule = &w.mark.rule;
            if self.resting.contains(rule) || self.in_flight.values().any(|r| r == rule) {
                continue;
            }
            if self.limiter.check().is_err() {
                self.telemetry.page_delivery("grafana", "held");
                return;
            }
            let (seq, rule) = (w.seq, rule.clone());
            let send = send(
                self.client.clone(),
                self.url.clone(),
                self.config.token.clone(),
                self.body(&w.mark),
                self.telemetry.clone(),
            );
            let task = posts.spawn(async move {
                Posted {
                    seq,
                    rule,
                    sent: send.await,
                }
            });
            self.in_flight.insert(task.id(), w.mark.rule.clone());
        }
    }

    /// Take a finished post off: the mark is done with unless Grafana may
    /// still take it (then its rule rests until the next retry tick).
    fn finish(&mut self, done: Result<(Id, Posted), JoinError>) {
        let Posted { seq, rule, sent } = match done {
            Ok((id, posted)) => {
                self.in_flight.remove(&id);
                posted
            }
            Err(e) => {
                // Only a panic ends a post this way; the mark stays queued.
                if let Some(rule) = self.in_flight.remove(&e.id()) {
                    tracing::error!(error = %e, "a Grafana post failed");
                    self.resting.insert(rule);
                }
                return;
            }
        };
        match sent {
            Ok(answer) => {
                self.telemetry.page_delivery("grafana", "ok");
                if let Some(note) = answer.note() {
                    tracing::warn!(rule = rule.as_str(), "Grafana took an annotation; {note}");
                }
            }
            Err(RetryError::Rejected(e)) => {
                // Grafana refused this annotation (bad token, bad body):
                // repeating it cannot help; say so loudly.
                self.telemetry.page_delivery("grafana", "failed");
                tracing::error!(error = e.as_str(), "Grafana refused an annotation");
            }
            Err(RetryError::Exhausted { last, .. } | RetryError::Superseded { last, .. }) => {
                self.telemetry.page_delivery("grafana", "failed");
                tracing::warn!(
                    error = last.as_str(),
                    waiting = self.queue.len(),
                    "Grafana did not take an annotation; trying again within 10 s"
                );
                self.resting.insert(rule);
                return;
            }
        }
        // Gone already if it was the oldest of too many.
        if let Some(i) = self.queue.iter().position(|w| w.seq == seq) {
            self.queue.remove(i);
        }
    }
}

/// Post one mark until Grafana takes it, refuses it, or the attempts run
/// out. Owns what it needs, so the annotator takes marks meanwhile.
async fn send(
    client: reqwest::Client,
    url: url::Url,
    token: Option<Secret>,
    body: serde_json::Value,
    telemetry: Telemetry,
) -> Result<Answer, RetryError> {
    let backoff = Backoff {
        attempts: 3,
        base: Duration::from_millis(300),
        max: Duration::from_secs(3),
    };
    retry::send(
        backoff,
        || {
            let req = client.post(url.clone()).json(&body);
            match &token {
                Some(token) => req.bearer_auth(token.expose()),
                None => req,
            }
        },
        |outcome| telemetry.action_attempt("annotate", outcome),
    )
    .await
}
