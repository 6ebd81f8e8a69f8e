//! Grafana annotations (`POST /api/annotations`): a mark on every dashboard
//! of the service when backstop rolls back and when a page rule fires or
//! resolves, tagged so dashboards can filter on it. Undelivered marks wait
//! in a bounded queue and are tried again every `RETRY_EVERY`; past the
//! bound the oldest is dropped, counted and logged, never silently.

use super::retry::{self, Backoff};
use crate::config::{Grafana, Tls};
use crate::telemetry::Telemetry;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
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
    service: String,
    revision: String,
    queue: VecDeque<Annotation>,
    limiter: DefaultDirectRateLimiter,
    telemetry: Telemetry,
}

impl Annotator {
    pub fn new(
        config: Grafana,
        tls: &Tls,
        service: &str,
        revision: &str,
        telemetry: Telemetry,
    ) -> Result<Annotator, String> {
        let client = retry::client(Duration::from_secs(5), tls)?;
        let quota =
            Quota::per_minute(NonZeroU32::new(config.max_per_minute).unwrap_or(NonZeroU32::MIN));
        Ok(Annotator {
            client,
            config,
            service: service.to_string(),
            revision: revision.to_string(),
            queue: VecDeque::new(),
            limiter: RateLimiter::direct(quota),
            telemetry,
        })
    }

    pub async fn run(mut self, mut marks: mpsc::Receiver<Annotation>, stop: CancellationToken) {
        let mut retry_tick = tokio::time::interval(RETRY_EVERY);
        retry_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                m = marks.recv() => match m {
                    Some(m) => {
                        if self.queue.len() == KEEP {
                            self.queue.pop_front();
                            self.telemetry.page_delivery("grafana", "dropped");
                            tracing::warn!("Grafana has been unreachable for long: dropped the oldest waiting annotation");
                        }
                        self.queue.push_back(m);
                        self.deliver().await;
                    }
                    None => return,
                },
                _ = retry_tick.tick() => self.deliver().await,
            }
        }
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

    async fn deliver(&mut self) {
        while let Some(a) = self.queue.front() {
            if self.limiter.check().is_err() {
                self.telemetry.page_delivery("grafana", "held");
                return;
            }
            let body = self.body(a);
            match self.send(&body).await {
                Ok(_) => {
                    self.telemetry.page_delivery("grafana", "ok");
                    self.queue.pop_front();
                }
                Err(retry::RetryError::Rejected(e)) => {
                    // Grafana refused this annotation (bad token, bad body):
                    // repeating it cannot help; say so loudly.
                    self.telemetry.page_delivery("grafana", "failed");
                    tracing::error!(error = e.as_str(), "Grafana refused an annotation");
                    self.queue.pop_front();
                }
                Err(retry::RetryError::Exhausted { last, .. }) => {
                    self.telemetry.page_delivery("grafana", "failed");
                    tracing::warn!(
                        error = last.as_str(),
                        waiting = self.queue.len(),
                        "Grafana did not take an annotation; trying again in 10 s"
                    );
                    return;
                }
            }
        }
    }

    async fn send(&self, body: &serde_json::Value) -> Result<u16, retry::RetryError> {
        let url = self
            .config
            .url
            .join("api/annotations")
            .map_err(|e| retry::RetryError::Rejected(e.to_string()))?;
        // One Authorization header: the token wins over credentials in the
        // URL (reqwest would send both, and Grafana reads only the first).
        let url = match self.config.token {
            Some(_) => crate::redact::url(&url),
            None => url,
        };
        let backoff = Backoff {
            attempts: 3,
            base: Duration::from_millis(300),
            max: Duration::from_secs(3),
        };
        retry::send(
            backoff,
            || {
                let req = self.client.post(url.clone()).json(body);
                match &self.config.token {
                    Some(token) => req.bearer_auth(token.expose()),
                    None => req,
                }
            },
            |outcome| self.telemetry.action_attempt("annotate", outcome),
        )
        .await
    }
}
