//! The words a person reads first: a rule's evidence as a plain fact about
//! an endpoint ("/api/orders failing, 41 of 512 probes failed in 1m (8 %),
//! limit 5 %"), and an incident's one-line summary (service, revision, the
//! facts, what backstop did). Built from the structured evidence and the
//! configuration, never by parsing the evidence's text; the arithmetic goes
//! to the incident's details.

use super::{ActionOutcome, Prevented};
use crate::config::Config;
use crate::rules::Evidence;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What a rule saw, in words: `{subject} {verb}, {what}, limit {limit}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    /// What is wrong: an endpoint's path, several, or "pods".
    pub subject: String,
    /// `failing`, `slow`, `restarting`.
    pub verb: &'static str,
    /// The measurement, counts first.
    pub what: String,
    /// The threshold it was held to, in the same unit.
    pub limit: String,
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}, {}", self.subject, self.verb, self.what)?;
        if !self.limit.is_empty() {
            write!(f, ", limit {}", self.limit)?;
        }
        Ok(())
    }
}

impl Fact {
    /// The plain fact behind `evidence`; `config` names the endpoints.
    pub fn of(config: &Config, evidence: &Evidence) -> Fact {
        match evidence {
            Evidence::ConsecutiveFailures {
                target,
                failures,
                threshold,
                last_failure,
            } => Fact {
                subject: path(config, target),
                verb: "failing",
                what: match last_failure {
                    Some(last) => format!("{failures} failed probes in a row (last: {last})"),
                    None => format!("{failures} failed probes in a row"),
                },
                limit: format!("{threshold} in a row"),
            },
            Evidence::ErrorRate {
                target,
                window_seconds,
                good,
                bad,
                error_ratio,
                above,
                traffic,
                young,
                ..
            } => Fact {
                subject: match target {
                    Some(t) => path(config, t),
                    None => paths(config, 0..config.targets.len()),
                },
                verb: "failing",
                what: format!(
                    "{bad} of {} {} failed in {}{}",
                    good + bad,
                    unit(*traffic),
                    span(covered(*window_seconds, young.as_ref())),
                    error_ratio.map_or(String::new(), |r| format!(" ({})", percent(r)))
                ),
                limit: percent(*above),
            },
            Evidence::BurnRate {
                slo, factor, short, ..
            } => {
                let targets = config.slos.iter().find(|s| &s.name == slo);
                let traffic = targets
                    .is_some_and(|s| s.targets.iter().any(|t| config.traffic_index(*t).is_some()));
                let measured = short.total;
                let bad = short.total - short.good.min(short.total);
                Fact {
                    subject: targets.map_or(slo.clone(), |s| paths(config, s.targets.clone())),
                    verb: "failing",
                    what: format!(
                        "{bad} of {measured} {} failed in {}, so SLO {slo} burns its error \
                         budget {} as fast as it may",
                        unit(traffic),
                        span(covered(short.window_seconds, short.young.as_ref())),
                        short.burn_rate.map_or("n/a".into(), times)
                    ),
                    limit: times(*factor),
                }
            }
            Evidence::Latency {
                target,
                percentile,
                value_seconds,
                above_seconds,
                window_seconds,
                samples,
                traffic,
                ..
            } => Fact {
                subject: path(config, target),
                verb: "slow",
                what: format!(
                    "p{percentile} {} in {} ({samples} {})",
                    value_seconds.map_or("n/a".into(), seconds),
                    span(*window_seconds),
                    unit(*traffic)
                ),
                limit: seconds(*above_seconds),
            },
            Evidence::Restarts {
                window_seconds,
                restarts,
                above,
                containers,
            } => Fact {
                subject: "pods".into(),
                verb: "restarting",
                what: match restarts {
                    Some(n) => format!(
                        "{n} container restarts ({containers}) in {}",
                        span(*window_seconds)
                    ),
                    None => "restarts not counted yet".into(),
                },
                limit: above.to_string(),
            },
            Evidence::Manual { reason } => Fact {
                subject: "rollback".into(),
                verb: "asked for",
                what: format!("through the admin API: {reason}"),
                limit: String::new(),
            },
        }
    }
}

/// Where a rollback stands, as an incident tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RollbackNote {
    /// Asked of the backend; the outcome follows in an update.
    Started,
    /// The backend answered (or gave up).
    Done {
        outcome: ActionOutcome,
        detail: String,
        /// The revision running now, when the backend said.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// A guard held it back.
    Prevented { reason: Prevented, detail: String },
}

impl RollbackNote {
    /// What backstop did, in a few words for the end of a summary.
    pub fn words(&self) -> String {
        match self {
            RollbackNote::Started => "rolling back".into(),
            RollbackNote::Done { outcome, to, .. } => match outcome {
                ActionOutcome::Succeeded => match to {
                    Some(to) => format!("rolled back to {to}; needs a person"),
                    None => "rolled back; needs a person".into(),
                },
                ActionOutcome::DryRun => "dry run: would have rolled back".into(),
                ActionOutcome::Failed => "rollback FAILED; needs a person".into(),
                ActionOutcome::Prevented(why) => not_rolled_back(*why),
                other => other.as_str().into(),
            },
            RollbackNote::Prevented { reason, .. } => not_rolled_back(*reason),
        }
    }
}

fn not_rolled_back(why: Prevented) -> String {
    match why {
        Prevented::AlreadyRolledBack => "already rolled back".into(),
        Prevented::Baked => "not rolled back: older than bake".into(),
        Prevented::Maintenance => "not rolled back: maintenance window".into(),
        other => format!(
            "not rolled back: {}",
            other.metric_label().replace('_', " ")
        ),
    }
}

/// The one line a person reads first: `checkout v2: /api/orders failing,
/// 41 of 512 probes failed in 1m (8 %), limit 5 %; rolled back`. `facts`
/// are the firing rules' in the order they fired (the first leads, the
/// others are named by rule); `rollback` is None when no firing rule rolls
/// back.
pub fn headline(
    service: &str,
    revision: &str,
    facts: &[(&str, &Fact)],
    rollback: Option<&RollbackNote>,
) -> String {
    let mut line = format!("{service} {revision}: ");
    match facts {
        [] => line.push_str("no rule fires any more"),
        [(_, first), rest @ ..] => {
            line.push_str(&first.to_string());
            if !rest.is_empty() {
                let names: Vec<&str> = rest.iter().map(|(rule, _)| *rule).collect();
                line.push_str(&format!("; also {}", names.join(", ")));
            }
        }
    }
    line.push_str("; ");
    match rollback {
        Some(r) => line.push_str(&r.words()),
        None => line.push_str("paging only, no rollback"),
    }
    line
}

/// A target's path (what a person recognises), or the name as given when
/// it is no probe target.
fn path(config: &Config, target: &str) -> String {
    config
        .targets
        .iter()
        .find(|t| t.name == target)
        .map_or_else(|| target.to_string(), |t| t.url.path().to_string())
}

/// What a count counts: the app's requests (traffic) or backstop's probes.
fn unit(traffic: bool) -> &'static str {
    if traffic { "requests" } else { "probes" }
}

/// Up to three targets' paths (a traffic entry by its name), then how many more.
fn paths(config: &Config, targets: impl IntoIterator<Item = usize>) -> String {
    let all: Vec<String> = targets
        .into_iter()
        .filter(|&i| i < config.targets.len() + config.traffic.len())
        .map(|i| match config.targets.get(i) {
            Some(t) => t.url.path().to_string(),
            None => config.source_name(i).to_string(),
        })
        .collect();
    match all.len() {
        0 => "no endpoint".into(),
        1..=3 => all.join(", "),
        n => format!("{} and {} more", all[..3].join(", "), n - 3),
    }
}

/// `8 %`, `0.1 %`, `12.5 %` (a fraction in, as the config's percent out).
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    let text = if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.3}")
    } else {
        format!("{p:.1}")
    };
    format!("{} %", trim(&text))
}

fn times(x: f64) -> String {
    format!("{}×", trim(&format!("{x:.1}")))
}

/// `12.50` → `12.5`, `10.0` → `10` (the text always has a decimal point).
fn trim(text: &str) -> &str {
    text.trim_end_matches('0').trim_end_matches('.')
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{} s", trim(&format!("{s:.2}")))
    }
}

/// The time a window's counts cover: all of it once full; for a young
/// window, the share of its events seen so far (its `expected` events are
/// the ones seen plus those its missing part would hold at the same rate).
fn covered(window_seconds: f64, young: Option<&crate::slo::Young>) -> f64 {
    match young {
        Some(y) if y.expected > 0 => window_seconds * y.seen as f64 / y.expected as f64,
        _ => window_seconds,
    }
}

fn span(s: f64) -> String {
    humantime::format_duration(Duration::from_secs_f64(s.max(0.0).round())).to_string()
}

#[cfg(test)]
mod tests;
