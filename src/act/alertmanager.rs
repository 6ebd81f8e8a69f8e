//! Paging through Alertmanager's API v2: one alert per firing rule, posted
//! to every configured Alertmanager (an HA pair gets everything). Like
//! Prometheus, backstop re-sends firing alerts every interval with `endsAt`
//! four intervals ahead, and re-sends resolved ones (with `endsAt` = the
//! resolution) for a few minutes, because Alertmanager keeps no state
//! across its restarts. Delivery is state-based: a failed post is repeated
//! at the next interval with the current state, so nothing is lost and
//! nothing queues up. Notices keep changing the state while a post is
//! under way (the next post carries them), so a slow or hung Alertmanager
//! neither fills the actor's channel nor delays shutdown. The Alertmanagers
//! are posted to side by side, and a post that fails while a newer state
//! waits is not retried (the newer one goes instead): a hung Alertmanager
//! delays no other, and holds up a newer alert by one attempt at most.

use super::Telemetry;
use super::pagerduty::next;
use super::retry::{self, Backoff};
use super::{ActionLog, ActionOutcome, ActionRecord, Notice};
use crate::config::{Alertmanager, Tls};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Resolved alerts are re-sent this long.
const RESOLVED_RESEND: Duration = Duration::from_secs(5 * 60);

struct Alert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: SystemTime,
    /// When it resolved (wall clock for `endsAt`, monotonic for expiry).
    resolved: Option<(SystemTime, Instant)>,
}

/// Everything the pager needs besides its configuration.
pub struct AlertLabels {
    pub service: String,
    pub revision: String,
    pub namespace: Option<String>,
    /// Link back to backstop's `/status`.
    pub generator_url: String,
}

pub struct AlertSender {
    client: reqwest::Client,
    config: Alertmanager,
    ctx: AlertLabels,
    alerts: BTreeMap<String, Alert>,
    limiters: Arc<Vec<DefaultDirectRateLimiter>>,
    telemetry: Telemetry,
    log: ActionLog,
}

impl AlertSender {
    pub fn new(
        config: Alertmanager,
        tls: &Tls,
        ctx: AlertLabels,
        telemetry: Telemetry,
        log: ActionLog,
    ) -> Result<AlertSender, crate::tls::ClientError> {
        let client = retry::client(config.timeout, tls)?;
        let quota =
            Quota::per_minute(NonZeroU32::new(config.max_per_minute).unwrap_or(NonZeroU32::MIN));
        let limiters = config
            .urls
            .iter()
            .map(|_| RateLimiter::direct(quota))
            .collect();
        Ok(AlertSender {
            client,
            config,
            ctx,
            alerts: BTreeMap::new(),
            limiters: Arc::new(limiters),
            telemetry,
            log,
        })
    }

    /// Apply notices as they come and re-send on every interval, until `stop`.
    pub async fn run(mut self, notices: mpsc::Receiver<Notice>, stop: CancellationToken) {
        let mut inbox = Some(notices);
        let mut resend = tokio::time::interval(self.config.resend);
        resend.set_missed_tick_behavior(MissedTickBehavior::Skip);
        // Notices applied since the last post, recorded with the post that
        // carries them: the latest per rule and kind, so this stays bounded.
        let mut fresh: BTreeMap<(String, bool), Notice> = BTreeMap::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                n = next(&mut inbox) => match n {
                    Some(n) => self.take(n, &mut fresh),
                    None => return,
                },
                _ = resend.tick() => {
                    self.expire(Instant::now());
                    self.telemetry.page_queue("alertmanager", self.alerts.len());
                    if self.alerts.is_empty() {
                        continue;
                    }
                }
            }
            // Post until a post carried the current state.
            loop {
                let carried = std::mem::take(&mut fresh);
                // Set once a newer state waits: the post then stops retrying.
                let newer = Arc::new(AtomicBool::new(false));
                let post = post_all(
                    self.client.clone(),
                    self.config.urls.clone(),
                    self.limiters.clone(),
                    self.telemetry.clone(),
                    self.body(SystemTime::now()),
                    newer.clone(),
                );
                tokio::pin!(post);
                let delivery = loop {
                    tokio::select! {
                        delivery = &mut post => break delivery,
                        _ = stop.cancelled() => return,
                        Some(n) = next(&mut inbox) => {
                            self.take(n, &mut fresh);
                            newer.store(true, Ordering::Relaxed);
                        }
                    }
                };
                if delivery.superseded {
                    // The next post carries their state; it is theirs to record.
                    for (k, n) in carried {
                        fresh.entry(k).or_insert(n);
                    }
                } else {
                    for n in carried.into_values() {
                        self.record(n, &delivery);
                    }
                }
                if fresh.is_empty() {
                    break;
                }
            }
            if inbox.is_none() {
                return;
            }
        }
    }

    /// Apply a notice and keep it for the record of the post that carries it.
    fn take(&mut self, n: Notice, fresh: &mut BTreeMap<(String, bool), Notice>) {
        let n = self.apply(n);
        self.telemetry.page_queue("alertmanager", self.alerts.len());
        fresh.insert((n.rule.clone(), n.firing), n);
    }

    /// Fold a notice into the alert state; returns it for the record.
    fn apply(&mut self, n: Notice) -> Notice {
        let mut labels = BTreeMap::from([
            ("alertname".to_string(), "BackstopRuleFiring".to_string()),
            ("service".to_string(), self.ctx.service.clone()),
            ("rule".to_string(), n.rule.clone()),
            ("severity".to_string(), n.severity.as_str().to_string()),
            ("revision".to_string(), self.ctx.revision.clone()),
        ]);
        if let Some(ns) = &self.ctx.namespace {
            labels.insert("namespace".into(), ns.clone());
        }
        let annotations = BTreeMap::from([
            ("summary".to_string(), n.summary.clone()),
            ("description".to_string(), n.description.clone()),
        ]);
        match (n.firing, self.alerts.get_mut(&n.rule)) {
            (true, Some(a)) if a.resolved.is_none() => a.annotations = annotations,
            (true, _) => {
                let alert = Alert {
                    labels,
                    annotations,
                    starts_at: n.at,
                    resolved: None,
                };
                self.alerts.insert(n.rule.clone(), alert);
            }
            (false, Some(a)) => {
                a.annotations = annotations;
                a.resolved = Some((n.at, Instant::now()));
            }
            // Resolved without having fired here (e.g. fired before a restart): say so anyway.
            (false, None) => {
                let alert = Alert {
                    labels,
                    annotations,
                    starts_at: n.at,
                    resolved: Some((n.at, Instant::now())),
                };
                self.alerts.insert(n.rule.clone(), alert);
            }
        }
        n
    }

    /// Stop re-sending alerts resolved long enough ago.
    fn expire(&mut self, now: Instant) {
        self.alerts.retain(|_, a| {
            a.resolved
                .is_none_or(|(_, at)| now.saturating_duration_since(at) < RESOLVED_RESEND)
        });
    }

    /// The API v2 body: every alert, firing ones ending four intervals ahead.
    pub fn body(&self, now: SystemTime) -> serde_json::Value {
        let ahead = now + self.config.resend * 4;
        let alerts: Vec<serde_json::Value> = self
            .alerts
            .values()
            .map(|a| {
                let ends = a.resolved.map_or(ahead, |(at, _)| at);
                serde_json::json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": super::rfc3339(a.starts_at),
                    "endsAt": super::rfc3339(ends),
                    "generatorURL": self.ctx.generator_url,
                })
            })
            .collect();
        serde_json::Value::Array(alerts)
    }

    fn record(&self, n: Notice, delivery: &Delivery) {
        let firing = n.firing;
        let total = self.config.urls.len();
        let (outcome, mut detail) = match delivery.delivered {
            0 => (
                ActionOutcome::Failed,
                format!(
                    "no Alertmanager took the alert (of {total}); re-sent every {}",
                    humantime::format_duration(self.config.resend)
                ),
            ),
            n => (
                if firing {
                    ActionOutcome::Triggered
                } else {
                    ActionOutcome::Resolved
                },
                format!(
                    "{} alert sent to {n} of {total} Alertmanager(s)",
                    if firing { "firing" } else { "resolved" }
                ),
            ),
        };
        for note in &delivery.notes {
            detail.push_str(&format!("; {note}"));
        }
        let record = ActionRecord {
            at: super::rfc3339(SystemTime::now()),
            rule: n.rule,
            action: "page",
            outcome,
            detail,
            revision: self.ctx.revision.clone(),
            evidence: n.evidence,
        };
        self.telemetry.action(&record);
        self.log.push(record);
    }
}

/// How one post of the state to every Alertmanager went.
struct Delivery {
    /// How many took it.
    delivered: usize,
    /// Some gave up early because a newer state waits.
    superseded: bool,
    /// What went wrong reading the answers of those that took it.
    notes: Vec<String>,
}

/// Post `body` to every Alertmanager at once, each retried until `newer`
/// is set. Owns what it needs, so the pager can apply notices meanwhile.
async fn post_all(
    client: reqwest::Client,
    urls: Vec<url::Url>,
    limiters: Arc<Vec<DefaultDirectRateLimiter>>,
    telemetry: Telemetry,
    body: serde_json::Value,
    newer: Arc<AtomicBool>,
) -> Delivery {
    let body = Arc::new(body);
    // Dropped with this future (on stop), which cuts the posts in flight.
    let mut posts = JoinSet::new();
    for (i, base) in urls.into_iter().enumerate() {
        if limiters[i].check().is_err() {
            telemetry.page_delivery("alertmanager", "held");
            continue;
        }
        let (client, telemetry, body, newer) = (
            client.clone(),
            telemetry.clone(),
            body.clone(),
            newer.clone(),
        );
        posts.spawn(post_one(client, base, telemetry, body, newer));
    }
    let mut delivery = Delivery {
        delivered: 0,
        superseded: false,
        notes: Vec::new(),
    };
    while let Some(done) = posts.join_next().await {
        match done {
            Ok(Ok(answer)) => {
                delivery.delivered += 1;
                delivery.notes.extend(answer.note());
            }
            Ok(Err(retry::RetryError::Superseded { .. })) => delivery.superseded = true,
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "an Alertmanager post failed"),
        }
    }
    delivery.notes.dedup();
    delivery
}

/// Post `body` to one Alertmanager, counting and logging how it went.
async fn post_one(
    client: reqwest::Client,
    base: url::Url,
    telemetry: Telemetry,
    body: Arc<serde_json::Value>,
    newer: Arc<AtomicBool>,
) -> Result<retry::Answer, retry::RetryError> {
    let url = base.join("api/v2/alerts").map_err(|e| {
        tracing::error!(error = %e, "cannot build the Alertmanager alerts URL");
        retry::RetryError::Rejected(e.to_string())
    })?;
    let backoff = Backoff {
        attempts: 3,
        base: Duration::from_millis(200),
        max: Duration::from_secs(2),
    };
    let sent = retry::send_while(
        backoff,
        || client.post(url.clone()).json(&*body),
        |outcome| telemetry.action_attempt("page", outcome),
        || !newer.load(Ordering::Relaxed),
    )
    .await;
    match &sent {
        Ok(_) => telemetry.page_delivery("alertmanager", "ok"),
        Err(retry::RetryError::Superseded { .. }) => {
            telemetry.page_delivery("alertmanager", "failed");
            tracing::warn!(
                receiver = url.host_str().unwrap_or(""),
                "Alertmanager did not take the alerts; a post of the newer state goes instead"
            );
        }
        Err(e) => {
            telemetry.page_delivery("alertmanager", "failed");
            tracing::warn!(receiver = url.host_str().unwrap_or(""), error = %e, "Alertmanager did not take the alerts; they go out again at the next interval");
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use crate::rules::Evidence;

    fn pager() -> AlertSender {
        crate::init_tls();
        let config = Alertmanager {
            urls: vec!["http://127.0.0.1:9".parse().unwrap()],
            resend: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            max_per_minute: 30,
        };
        let ctx = AlertLabels {
            service: "checkout".into(),
            revision: "3".into(),
            namespace: Some("shop".into()),
            generator_url: "http://pod:9464/status".into(),
        };
        AlertSender::new(
            config,
            &Default::default(),
            ctx,
            Telemetry::detached(),
            ActionLog::default(),
        )
        .unwrap()
    }

    fn notice(firing: bool, at: SystemTime) -> Notice {
        Notice {
            rule: "health-down".into(),
            severity: Severity::Critical,
            firing,
            service: "checkout".into(),
            revision: "3".into(),
            summary: "s".into(),
            fact: crate::act::Fact {
                subject: "pods".into(),
                verb: "restarting",
                what: "4 container restarts in 10m".into(),
                limit: "3".into(),
            },
            description: "d".into(),
            evidence: Evidence::Restarts {
                window_seconds: 600.0,
                restarts: Some(4),
                above: 3,
                containers: "every container but backstop".into(),
            },
            actions: vec!["page"],
            rolled_back: false,
            rollback: None,
            at,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn firing_ends_four_intervals_ahead_and_resolved_ends_when_it_resolved() {
        let mut p = pager();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        p.apply(notice(true, t0));
        let body = p.body(t0 + Duration::from_secs(10));
        let a = &body[0];
        assert_eq!(a["labels"]["namespace"], "shop");
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["startsAt"], rfc(t0));
        assert_eq!(a["endsAt"], rfc(t0 + Duration::from_secs(250)));
        // Firing again while firing keeps the original start.
        p.apply(notice(true, t0 + Duration::from_secs(30)));
        assert_eq!(p.body(t0)[0]["startsAt"], rfc(t0));
        let resolved_at = t0 + Duration::from_secs(90);
        p.apply(notice(false, resolved_at));
        assert_eq!(
            p.body(t0 + Duration::from_secs(120))[0]["endsAt"],
            rfc(resolved_at)
        );
        // Re-sent for five minutes after resolving, then dropped.
        tokio::time::advance(RESOLVED_RESEND - Duration::from_secs(1)).await;
        p.expire(Instant::now());
        assert_eq!(p.body(t0).as_array().unwrap().len(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        p.expire(Instant::now());
        assert!(p.body(t0).as_array().unwrap().is_empty());
    }

    fn rfc(t: SystemTime) -> String {
        crate::act::rfc3339(t)
    }
}
