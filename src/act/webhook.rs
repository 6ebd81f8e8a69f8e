//! Rollback through a webhook: one JSON POST to a deployer, retried with
//! backoff on 5xx, 429 and connection errors. The body carries everything a
//! deployer or a person needs: service, revision, rule, reason, evidence.

use super::Rolled;
use super::retry::{self, Backoff, RetryError};
use crate::config::Webhook;
use crate::rules::Evidence;
use crate::tls::ClientError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

/// The webhook's JSON body.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackRequest {
    pub service: String,
    /// The revision to undo.
    pub revision: String,
    pub rule: String,
    /// One line: why.
    pub reason: String,
    pub evidence: Evidence,
    /// RFC 3339 time the rule fired.
    pub fired_at: String,
    /// Same for every attempt and every replica deciding about this revision,
    /// so a deployer can drop duplicates (also sent as `Idempotency-Key`).
    pub idempotency_key: String,
}

pub struct WebhookBackend {
    client: reqwest::Client,
    config: Webhook,
    headers: HeaderMap,
    backoff: Backoff,
}

impl WebhookBackend {
    pub fn new(
        client: reqwest::Client,
        config: Webhook,
        backoff: Backoff,
    ) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let field = || format!("rollback.webhook.headers.{name}");
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::invalid(field(), e))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| ClientError::invalid(field(), "not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(WebhookBackend {
            client,
            config,
            headers,
            backoff,
        })
    }

    /// POST the request until the deployer accepts it (2xx) or it is clear
    /// that it will not. Returns a short description of the answer, which
    /// says so when the deployer's answer was cut or unreadable: its 2xx
    /// status already said it took the rollback.
    pub async fn rollback(
        &self,
        req: &RollbackRequest,
        dry_run: bool,
        mut on_attempt: impl FnMut(&'static str),
    ) -> Result<Rolled, RetryError> {
        if dry_run {
            return Ok(Rolled::DryRun(format!(
                "would ask the webhook to roll back revision {}",
                req.revision
            )));
        }
        let answer = retry::send(
            self.backoff,
            || {
                self.client
                    .post(self.config.url.clone())
                    .headers(self.headers.clone())
                    .header("Idempotency-Key", &req.idempotency_key)
                    .json(req)
            },
            &mut on_attempt,
        )
        .await?;
        let mut detail = format!(
            "webhook accepted the rollback of revision {} (HTTP {})",
            req.revision, answer.status
        );
        if let Some(note) = answer.note() {
            detail.push_str(&format!("; {note}"));
        }
        Ok(Rolled::Back {
            detail,
            to: now_serving(&answer.body),
        })
    }
}

/// The revision the deployer says is running now, when its answer is JSON
/// with a `now_serving` string (optional: the status alone decides).
fn now_serving(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let to = v.get("now_serving")?.as_str()?.trim();
    (!to.is_empty() && to.len() <= 128).then(|| to.to_string())
}

#[cfg(test)]
mod now_serving_tests {
    use super::now_serving;

    #[test]
    fn the_deployer_may_say_what_runs_now() {
        assert_eq!(
            now_serving(br#"{"rolled_back_from": "v2", "now_serving": "v1"}"#).as_deref(),
            Some("v1")
        );
        assert_eq!(now_serving(b"ok"), None);
        assert_eq!(now_serving(br#"{"now_serving": 6}"#), None);
        assert_eq!(now_serving(br#"{"now_serving": "  "}"#), None);
    }
}
