//! The data behind a verdict, and the sentence that states it. A young
//! window says so in the words of [`slo::Young`], as `/status` and the
//! metrics do.

use crate::percent;
use crate::slo::{SloWindow, Young};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The data behind a verdict: what was measured and what it was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    ConsecutiveFailures {
        target: String,
        failures: u32,
        threshold: u32,
        last_failure: Option<String>,
    },
    ErrorRate {
        /// None: all targets together.
        target: Option<String>,
        window_seconds: f64,
        good: u64,
        bad: u64,
        /// `bad / (good + bad)`, as seen.
        error_ratio: Option<f64>,
        /// Set for a young window, judged on its lower bound.
        #[serde(skip_serializing_if = "Option::is_none")]
        young: Option<Young>,
        above: f64,
        min_samples: u64,
        /// The target is a traffic entry: the counts are the app's requests.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        traffic: bool,
    },
    BurnRate {
        slo: String,
        objective: f64,
        factor: f64,
        short: SloWindow,
        long: SloWindow,
        min_samples: u64,
    },
    Latency {
        target: String,
        percentile: f64,
        value_seconds: Option<f64>,
        above_seconds: f64,
        window_seconds: f64,
        samples: u64,
        /// Set for a young window, judged on the lower bound of the share
        /// of answers slower than `above` (the limit is `1 - percentile`).
        #[serde(skip_serializing_if = "Option::is_none")]
        young: Option<Young>,
        min_samples: u64,
        /// The target is a traffic entry: `samples` are requests, and the
        /// value is interpolated in the app's histogram buckets.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        traffic: bool,
    },
    Restarts {
        window_seconds: f64,
        /// None until the pods have been looked at.
        restarts: Option<u32>,
        above: u32,
        /// Whose restarts count: `every container but backstop`, `checkout`.
        containers: String,
    },
    /// Not a rule: a person asked through the admin API.
    Manual { reason: String },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::ConsecutiveFailures {
                target,
                failures,
                threshold,
                last_failure,
            } => {
                write!(
                    f,
                    "{target}: {failures} consecutive failures (threshold {threshold})"
                )?;
                if let Some(last) = last_failure {
                    write!(f, ", last: {last}")?;
                }
                Ok(())
            }
            Evidence::ErrorRate {
                target: Some(name),
                window_seconds,
                good,
                bad,
                young,
                above,
                traffic: true,
                ..
            } => {
                let total = good + bad;
                let last = secs(*window_seconds);
                if total == 0 {
                    return write!(f, "{name}: no traffic in the last {last}");
                }
                let young = young.map_or(String::new(), |y| {
                    format!(
                        "; {}: {}",
                        y.seen_of("requests"),
                        Young::at_least(pct(Some(y.error_ratio_at_least)))
                    )
                });
                write!(
                    f,
                    "{name}: {bad} of {total} requests failed ({:.1} %) in the last {last}, limit {} %{young}",
                    *bad as f64 * 100.0 / total as f64,
                    short(above * 100.0)
                )
            }
            Evidence::ErrorRate {
                target,
                window_seconds,
                good,
                bad,
                error_ratio,
                young,
                above,
                ..
            } => {
                let scope = target.as_deref().unwrap_or("all targets");
                let young = young.map_or(String::new(), |y| {
                    format!(
                        "; {}: {}",
                        y.seen_of("probes"),
                        Young::at_least(pct(Some(y.error_ratio_at_least)))
                    )
                });
                write!(
                    f,
                    "{scope}: error rate {} over {} ({bad} bad of {}{young}), threshold {}",
                    pct(*error_ratio),
                    secs(*window_seconds),
                    good + bad,
                    percent::configured(*above)
                )
            }
            Evidence::BurnRate {
                slo,
                factor,
                short,
                long,
                ..
            } => write!(
                f,
                "{slo}: burn rate {} and {}, threshold {factor}",
                burn(short),
                burn(long)
            ),
            Evidence::Latency {
                target,
                percentile,
                value_seconds,
                above_seconds,
                window_seconds,
                samples,
                traffic: true,
                ..
            } => {
                let last = secs(*window_seconds);
                if *samples == 0 {
                    return write!(f, "{target}: no traffic in the last {last}");
                }
                let value = value_seconds.map_or_else(
                    || "unknown (no finite bucket bound holds it)".to_owned(),
                    |v| format!("{:.0} ms", v * 1000.0),
                );
                write!(
                    f,
                    "{target}: p{} of {samples} requests {value} in the last {last}, limit {:.0} ms",
                    short(*percentile),
                    above_seconds * 1000.0
                )
            }
            Evidence::Latency {
                target,
                percentile,
                value_seconds,
                above_seconds,
                window_seconds,
                samples,
                young,
                ..
            } => {
                let ms = |s: f64| format!("{:.0}ms", s * 1000.0);
                let young = young.map_or(String::new(), |y| {
                    let share = format!(
                        "{} slower than {}",
                        pct(Some(y.error_ratio_at_least)),
                        ms(*above_seconds)
                    );
                    format!(
                        "; {}: {}, limit {}",
                        y.seen_of("probes"),
                        Young::at_least(share),
                        pct(Some(1.0 - percentile / 100.0))
                    )
                });
                write!(
                    f,
                    "{target}: p{percentile} {} over {} ({samples} samples{young}), threshold {}",
                    value_seconds.map_or("n/a".to_string(), ms),
                    secs(*window_seconds),
                    ms(*above_seconds)
                )
            }
            Evidence::Restarts {
                window_seconds,
                restarts,
                above,
                containers,
            } => match restarts {
                Some(n) => write!(
                    f,
                    "{n} container restarts ({containers}) of this revision's pods over {}, threshold {above}",
                    secs(*window_seconds)
                ),
                None => f.write_str("the revision's pods have not been looked at yet"),
            },
            Evidence::Manual { reason } => write!(f, "asked through the admin API: {reason}"),
        }
    }
}

/// "20.00 over 5m", and for a young window "(young window, …: at least
/// 15.20 at 99% confidence)" after it.
fn burn(w: &SloWindow) -> String {
    let seen = format!("{} over {}", num(w.burn_rate), secs(w.window_seconds));
    match w.young {
        None => seen,
        Some(y) => format!(
            "{seen} ({}: {})",
            y.seen_of("probes"),
            Young::at_least(num(y.burn_rate_at_least))
        ),
    }
}

/// A number without trailing zeros: 5, 0.5, 99.9.
fn short(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), percent::measured)
}
fn num(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.2}"))
}
fn secs(s: f64) -> String {
    humantime::format_duration(Duration::from_secs_f64(s)).to_string()
}
