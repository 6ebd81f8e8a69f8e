//! Values that are valid but almost certainly meant otherwise: an objective
//! written as a fraction (`0.999`), a bare `above` below 1 (0.1 %, not
//! 10 %), a window longer than a day. Each is a warning at the value's
//! path; none stops a start. (A latency threshold not below the timeout
//! is an error, not a warning: it can never be passed.)

use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::RawConfig;
use super::types::{Condition, Rule, Slo};
use super::units::{decimal, show};

/// Windows live in memory and start empty with every pod; past a day they
/// are judged on far less than they say.
const LONGEST_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// An objective below this is a fraction typed for a percentage, or a
/// target so loose that it is no objective at all.
const LOWEST_OBJECTIVE: f64 = 50.0;

/// The validated sections that were valid (None: not checked here, their
/// errors say enough).
pub(super) struct Valid<'a> {
    pub(super) slos: Option<&'a [Slo]>,
    pub(super) rules: Option<&'a [Rule]>,
}

pub(super) fn check(p: &mut Problems, raw: &RawConfig, valid: &Valid) {
    if let Some(slos) = valid.slos {
        objectives(p, slos);
    }
    bare_fractions(p, raw);
    if let Some(rules) = valid.rules {
        long_windows(p, rules);
    }
}

fn objectives(p: &mut Problems, slos: &[Slo]) {
    for (i, slo) in slos.iter().enumerate() {
        let pct = slo.objective * 100.0;
        if pct >= LOWEST_OBJECTIVE {
            continue;
        }
        let path = error::key(&error::index("slos", i), "objective");
        let message = if pct < 1.0 {
            format!(
                "{written} means {written} % of probes must be good, which almost anything meets; \
                 objectives are percentages: for {meant} % write {meant}",
                written = decimal(pct),
                meant = decimal(pct * 100.0),
            )
        } else {
            format!(
                "{written} % lets {failing} % of probes fail before the objective is missed; \
                 objectives are percentages (99.9 means 99.9 %)",
                written = decimal(pct),
                failing = decimal(100.0 - pct),
            )
        };
        p.warn(&path, message);
    }
}

/// `error_rate.above` written as a bare number below 1: the config takes
/// percentages, but Argo and Flagger users write fractions.
fn bare_fractions(p: &mut Problems, raw: &RawConfig) {
    for (i, rule) in raw.rules.iter().flatten().enumerate() {
        let Some(above) = rule
            .when
            .as_ref()
            .and_then(|w| w.error_rate.as_ref())
            .and_then(|e| e.above.as_ref())
        else {
            continue;
        };
        let bare = match above {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if !s.contains('%') => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(pct) = bare.filter(|x| *x > 0.0 && *x < 1.0) else {
            continue;
        };
        let path = error::index("rules", i) + ".when.error_rate.above";
        p.warn(
            &path,
            format!(
                "{written} means {written} % of probes (1 in {every}), not {meant} %: a bare \
                 number is a percentage; write \"{meant}%\" if that is what you meant, or \
                 \"{written}%\" to keep it and silence this warning",
                written = decimal(pct),
                every = decimal((100.0 / pct).round()),
                meant = decimal(pct * 100.0),
            ),
        );
    }
}

fn long_windows(p: &mut Problems, rules: &[Rule]) {
    for (i, rule) in rules.iter().enumerate() {
        let when = error::key(&error::index("rules", i), "when");
        let windows: Vec<(&str, Duration)> = match &rule.when {
            Condition::ErrorRate { window, .. } => vec![("error_rate.window", *window)],
            Condition::Latency { window, .. } => vec![("latency.window", *window)],
            Condition::Restarts { window, .. } => vec![("restarts.window", *window)],
            Condition::BurnRate { short, long, .. } => {
                vec![("burn_rate.short", *short), ("burn_rate.long", *long)]
            }
            Condition::ConsecutiveFailures { .. } => Vec::new(),
        };
        for (field, window) in windows {
            if window > LONGEST_WINDOW {
                p.warn(
                    &format!("{when}.{field}"),
                    format!(
                        "{} is longer than a day: backstop keeps its windows in memory and every \
                         new pod starts them empty, so this rule judges on far less than {0}; \
                         leave long windows to Prometheus (backstop alert-rules)",
                        show(window)
                    ),
                );
            }
        }
    }
}
