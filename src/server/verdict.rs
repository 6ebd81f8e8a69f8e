//! `GET /api/v1/verdict`: is the running revision good? `pass`, `fail` or
//! `inconclusive`, with the rules' states and evidence, for progressive
//! delivery tools: Argo Rollouts' `web` metric reads the JSON (always 200),
//! Flagger's webhooks (which POST) read the status code with
//! `?mode=status`: 200 pass, 412 fail, 503 inconclusive.
//!
//! The rules that judge the release are those that roll back; when no rule
//! rolls back (backstop only judges, the tool owns the rollout), every rule.
//! - `fail`: a judging rule is firing.
//! - `inconclusive`: not every target has been probed yet, a judging rule
//!   is pending (breached, but not for its `for:` yet: backstop itself
//!   would not act yet, so the judge neither passes nor fails it), or a
//!   judging rule has too few samples (below `min_samples`, no traffic)
//!   or a young window that is past the limit but not yet beyond doubt.
//! - `pass`: otherwise.
//!
//! A maintenance pause holds actions, not judgement: it does not change
//! the verdict.

use super::{Reply, Shared, reply, snapshot, text};
use crate::engine::{EngineStatus, RuleStatus};
use crate::rules::State;
use hyper::StatusCode;
use hyper::header::{HeaderValue, RETRY_AFTER};
use serde::Serialize;

pub const PATH: &str = "/api/v1/verdict";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

impl Verdict {
    /// The status code of `?mode=status`: only a pass lets a tool go on.
    fn status(self) -> StatusCode {
        match self {
            Verdict::Pass => StatusCode::OK,
            Verdict::Fail => StatusCode::PRECONDITION_FAILED,
            Verdict::Inconclusive => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The answer's JSON.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub verdict: Verdict,
    pub revision: &'a str,
    pub service: &'a str,
    /// Why, in one sentence.
    pub reason: String,
    /// Every rule, judging or not, with its state and evidence.
    pub rules: Vec<JudgedRule<'a>>,
}

#[derive(Debug, Serialize)]
pub struct JudgedRule<'a> {
    /// Whether this rule's state decides the verdict.
    pub judged: bool,
    #[serde(flatten)]
    pub rule: &'a RuleStatus,
}

/// The verdict on an engine snapshot, and why.
pub fn judge(engine: &EngineStatus) -> (Verdict, String, Vec<bool>) {
    let rolls_back = |r: &RuleStatus| r.actions.contains(&"rollback");
    let any_rollback = engine.rules.iter().any(rolls_back);
    let judged: Vec<bool> = engine
        .rules
        .iter()
        .map(|r| !any_rollback || rolls_back(r))
        .collect();
    let mut judging = engine.rules.iter().zip(&judged).filter(|(_, j)| **j);
    let about = |r: &RuleStatus| match &r.summary {
        Some(s) => format!("rule {} ({s})", r.name),
        None => format!("rule {}", r.name),
    };
    let (verdict, reason) = if engine.rules.is_empty() {
        (Verdict::Inconclusive, "no rule judges the release".into())
    } else if let Some((r, _)) = judging.clone().find(|(r, _)| r.state == State::Firing) {
        (Verdict::Fail, format!("{} is firing", about(r)))
    } else if !engine.ready {
        (
            Verdict::Inconclusive,
            "waiting for the first probe of every target".into(),
        )
    } else if let Some((r, _)) = judging.clone().find(|(r, _)| r.state == State::Pending) {
        (
            Verdict::Inconclusive,
            format!("{} is breached and pending for its `for:`", about(r)),
        )
    } else if let Some((r, _)) = judging.find(|(r, _)| r.breached.is_none()) {
        (
            Verdict::Inconclusive,
            format!(
                "{} cannot judge yet: too few samples, or a young window whose \
                 evidence is past the limit but not beyond reasonable doubt",
                about(r)
            ),
        )
    } else {
        (
            Verdict::Pass,
            "every rule that judges the release has enough data and none is breached".into(),
        )
    };
    (verdict, reason, judged)
}

/// `GET` (Argo Rollouts) or `POST` (Flagger, body ignored) the verdict.
pub async fn handle(shared: &Shared, query: Option<&str>) -> Reply {
    let by_status = query.unwrap_or("").split('&').any(|p| p == "mode=status");
    let Some(engine) = snapshot(shared).await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "engine stopped\n");
    };
    let config = shared.config();
    let (verdict, reason, judged) = judge(&engine);
    let doc = Document {
        verdict,
        revision: &shared.revision.id,
        service: &config.service,
        reason,
        rules: engine
            .rules
            .iter()
            .zip(judged)
            .map(|(rule, judged)| JudgedRule { judged, rule })
            .collect(),
    };
    let body =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let status = if by_status {
        verdict.status()
    } else {
        StatusCode::OK
    };
    let mut r = reply(status, "application/json", body);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("10"));
    }
    r
}
