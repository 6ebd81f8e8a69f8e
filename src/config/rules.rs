//! Validation of `rules`: exactly one condition per rule with its references
//! resolved, defaults that keep a rule from firing on too few samples, and
//! actions that this build can actually carry out.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{self, RawBurnRate, RawErrorRate, RawLatency, RawRestarts, RawRule, RawWhen};
use super::types::{Action, Condition, Containers, Rule, Severity};
use super::units::{self, Zero, decimal, show};
use super::validate::Refs;
use super::values;

const CONDITIONS: &[&str] = &[
    "consecutive_failures",
    "error_rate",
    "burn_rate",
    "latency",
    "restarts",
];
const ACTIONS: &[&str] = &["rollback", "page"];
const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
const DEFAULT_SHORT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_LONG: Duration = Duration::from_secs(60 * 60);
const DEFAULT_RESTARTS_WINDOW: Duration = Duration::from_secs(10 * 60);
const DEFAULT_PERCENTILE: f64 = 95.0;
/// No window-based rule fires on fewer samples than this by default.
const MIN_SAMPLES_FLOOR: u64 = 10;

pub(super) fn rules(
    p: &mut Problems,
    raw: &Option<Vec<RawRule>>,
    refs: &Refs,
) -> Option<Vec<Rule>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().flatten().enumerate() {
        let path = error::index("rules", i);
        if let Some(Value::String(name)) = &r.name {
            if let Some(first) = seen.get(name.as_str()) {
                p.add(
                    &error::key(&path, "name"),
                    format!(
                        "{} is already the name of rules[{first}]",
                        values::quote(name)
                    ),
                );
            } else {
                seen.insert(name, i);
            }
        }
        out.push(rule(p, &path, r, refs));
    }
    out.into_iter().collect()
}

fn rule(p: &mut Problems, path: &str, r: &RawRule, refs: &Refs) -> Option<Rule> {
    raw::check_unknown(p, path, r);
    let at = |field: &str| error::key(path, field);
    let name =
        values::required(p, &at("name"), &r.name).and_then(|v| values::name(p, &at("name"), v));
    let when = match &r.when {
        Some(w) => condition(p, &at("when"), w, refs),
        None => {
            p.add(&at("when"), "is required");
            None
        }
    };
    let for_ = units::duration_or(p, &at("for"), &r.for_, Duration::ZERO, Zero::Allowed);
    let actions = match &r.actions {
        Some(v) => actions(p, &at("do"), v, refs),
        None => Some(Vec::new()),
    };
    // Read before giving up on bad actions, so a bad severity is reported too.
    let rolls_back = actions
        .as_ref()
        .is_some_and(|a| a.contains(&Action::Rollback));
    let severity = match &r.severity {
        None if rolls_back => Some(Severity::Critical),
        None => Some(Severity::Error),
        Some(v) => values::text(p, &at("severity"), v).and_then(|s| match s {
            "critical" => Some(Severity::Critical),
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            other => {
                p.add(
                    &at("severity"),
                    format!(
                        "{} is not one of critical, error, warning, info",
                        values::quote(other)
                    ),
                );
                None
            }
        }),
    };
    Some(Rule {
        name: name?,
        when: when?,
        for_: for_?,
        actions: actions?,
        severity: severity?,
    })
}

/// `when`: every condition present is checked, so that a rule with two of
/// them gets its other mistakes reported too; only then is the count judged.
fn condition(p: &mut Problems, path: &str, w: &RawWhen, refs: &Refs) -> Option<Condition> {
    raw::check_unknown(p, path, w);
    let outer = &w.target;
    let mut found = Vec::new();
    let mut results = Vec::new();
    if let Some(v) = &w.consecutive_failures {
        found.push("consecutive_failures");
        results.push(consecutive_failures(p, path, v, outer, refs));
    }
    if let Some(e) = &w.error_rate {
        found.push("error_rate");
        results.push(error_rate(p, path, e, outer, refs));
    }
    if let Some(b) = &w.burn_rate {
        found.push("burn_rate");
        refuse_outer_target(
            p,
            path,
            outer,
            "burn_rate",
            "it watches the targets of its SLO",
        );
        results.push(burn_rate(p, path, b, refs));
    }
    if let Some(l) = &w.latency {
        found.push("latency");
        results.push(latency(p, path, l, outer, refs));
    }
    if let Some(r) = &w.restarts {
        found.push("restarts");
        refuse_outer_target(
            p,
            path,
            outer,
            "restarts",
            "it counts the restarts of the pods",
        );
        results.push(restarts(p, path, r, refs));
    }
    if results.len() != 1 {
        let found = if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        };
        p.add(
            path,
            format!(
                "needs exactly one condition (one of: {}), found {found}",
                CONDITIONS.join(", ")
            ),
        );
        return None;
    }
    results.pop().flatten()
}

fn refuse_outer_target(p: &mut Problems, when: &str, outer: &Option<Value>, kind: &str, why: &str) {
    if outer.is_some() {
        p.add(
            &error::key(when, "target"),
            format!("is not allowed with {kind} ({why})"),
        );
    }
}

/// The target of an `error_rate` or `latency` condition, given in the
/// condition's own map or as `when.target`. Outer None: none was given.
fn chosen_target(
    p: &mut Problems,
    when: &str,
    kind: &str,
    inner: &Option<Value>,
    outer: &Option<Value>,
    refs: &Refs,
) -> Option<Option<usize>> {
    let inner_path = error::key(&error::key(when, kind), "target");
    let outer_path = error::key(when, "target");
    let inner_index = inner.as_ref().map(|v| refs.target(p, &inner_path, v));
    let outer_index = outer.as_ref().map(|v| refs.target(p, &outer_path, v));
    match (inner_index, outer_index) {
        (Some(None), _) | (_, Some(None)) => None,
        (Some(Some(a)), Some(Some(b))) if a != b => {
            p.add(
                &outer_path,
                format!(
                    "{} differs from {kind}.target {}; give the target once",
                    outer.as_ref().map(values::describe).unwrap_or_default(),
                    inner.as_ref().map(values::describe).unwrap_or_default(),
                ),
            );
            None
        }
        (Some(Some(index)), _) | (None, Some(Some(index))) => Some(Some(index)),
        (None, None) => Some(None),
    }
}

/// Where a condition's target was given: in its own map, or as `when.target`.
fn target_path(when: &str, kind: &str, inner: &Option<Value>) -> String {
    match inner {
        Some(_) => error::key(&error::key(when, kind), "target"),
        None => error::key(when, "target"),
    }
}

fn consecutive_failures(
    p: &mut Problems,
    when: &str,
    value: &Value,
    outer: &Option<Value>,
    refs: &Refs,
) -> Option<Condition> {
    let count_path = error::key(when, "consecutive_failures");
    let count = units::whole(p, &count_path, value, 1, u64::from(u32::MAX));
    let target_path = error::key(when, "target");
    let target = match outer {
        Some(v) => refs.target(p, &target_path, v).filter(|&t| {
            let traffic = refs.traffic_of(t).is_some();
            if traffic {
                p.add(
                    &target_path,
                    format!(
                        "{} is a traffic entry; consecutive_failures counts probes in a row, \
                         so name a probe target (use error_rate for traffic)",
                        values::describe(v)
                    ),
                );
            }
            !traffic
        }),
        None => {
            p.add(
                &target_path,
                "is required with consecutive_failures (name the target to watch)",
            );
            None
        }
    };
    Some(Condition::ConsecutiveFailures {
        target: target?,
        count: u32::try_from(count?).ok()?,
    })
}

fn error_rate(
    p: &mut Problems,
    when: &str,
    e: &RawErrorRate,
    outer: &Option<Value>,
    refs: &Refs,
) -> Option<Condition> {
    let path = error::key(when, "error_rate");
    raw::check_unknown(p, &path, e);
    let at = |field: &str| error::key(&path, field);
    let target = chosen_target(p, when, "error_rate", &e.target, outer, refs).filter(|t| {
        let path = target_path(when, "error_rate", &e.target);
        t.is_none_or(|t| refs.traffic_can(p, &path, t, false, "error_rate"))
    });
    let above = values::required(p, &at("above"), &e.above)
        .and_then(|v| units::percent(p, &at("above"), v))
        .and_then(|pct| {
            // A threshold that rounds to a 0 fraction is 0 for the evaluator.
            let problem = if units::fraction(pct) == 0.0 && pct >= 0.0 {
                format!("{pct}% would fire on any failure; use consecutive_failures")
            } else if !(0.0..=100.0).contains(&pct) {
                format!("must be between 0% and 100%, got {pct}%")
            } else {
                return Some(pct);
            };
            p.add(&at("above"), problem);
            None
        });
    let window = units::duration_or(p, &at("window"), &e.window, DEFAULT_WINDOW, Zero::Forbidden);
    // One failure among n probes is a rate of 1/n; more than 1/above probes
    // keep that below the threshold.
    let default = above.map(|pct| (units::floor_tolerant(100.0 / pct) as u64).saturating_add(1));
    let min_samples = min_samples(p, &at("min_samples"), &e.min_samples, default);
    Some(Condition::ErrorRate {
        target: target?,
        above: units::fraction(above?),
        window: window?,
        min_samples: min_samples?,
    })
}

fn burn_rate(p: &mut Problems, when: &str, b: &RawBurnRate, refs: &Refs) -> Option<Condition> {
    let path = error::key(when, "burn_rate");
    raw::check_unknown(p, &path, b);
    let at = |field: &str| error::key(&path, field);
    let slo = values::required(p, &at("slo"), &b.slo)
        .and_then(|v| values::text(p, &at("slo"), v))
        .and_then(|name| {
            let found = refs.slos.iter().position(|(n, _)| *n == Some(name));
            if found.is_none() {
                let known = refs.slos.iter().filter_map(|(n, _)| *n);
                p.add(
                    &at("slo"),
                    format!("no SLO named {name:?}{}", error::did_you_mean(name, known)),
                );
            }
            found
        });
    let short = units::duration_or(p, &at("short"), &b.short, DEFAULT_SHORT, Zero::Forbidden);
    let long = units::duration_or(p, &at("long"), &b.long, DEFAULT_LONG, Zero::Forbidden);
    let windows = match (short, long) {
        (Some(short), Some(long)) if short >= long => {
            p.add(
                &at("short"),
                format!("{} is not shorter than long {}", show(short), show(long)),
            );
            None
        }
        (short, long) => short.zip(long),
    };
    let factor = values::required(p, &at("factor"), &b.factor)
        .and_then(|v| units::number(p, &at("factor"), v))
        .and_then(|f| {
            if f > 0.0 {
                return Some(f);
            }
            p.add(&at("factor"), format!("must be greater than 0, got {f}"));
            None
        });
    let objective = slo.and_then(|i| refs.slos[i].1);
    // The error ratio that burns at exactly `factor`; at or above 100% it can
    // never be exceeded.
    let ratio = factor.zip(objective).map(|(f, o)| f * (1.0 - o));
    let ratio = match (ratio, objective) {
        (Some(ratio), Some(objective)) if ratio >= 1.0 => {
            p.add(
                &at("factor"),
                format!(
                    "burning {} times the error budget of {}% (objective {}%) needs {}% of probes to fail, \
                     which can never be exceeded; the rule could never fire",
                    decimal(factor.unwrap_or_default()),
                    decimal((1.0 - objective) * 100.0),
                    decimal(objective * 100.0),
                    decimal(ratio * 100.0),
                ),
            );
            None
        }
        (ratio, _) => ratio,
    };
    let default = ratio.map(|r| (units::floor_tolerant(1.0 / r) as u64).saturating_add(1));
    let min_samples = min_samples(p, &at("min_samples"), &b.min_samples, default);
    let (short, long) = windows?;
    Some(Condition::BurnRate {
        slo: slo?,
        short,
        long,
        factor: factor?,
        min_samples: min_samples?,
    })
}

fn latency(
    p: &mut Problems,
    when: &str,
    l: &RawLatency,
    outer: &Option<Value>,
    refs: &Refs,
) -> Option<Condition> {
    let path = error::key(when, "latency");
    raw::check_unknown(p, &path, l);
    let at = |field: &str| error::key(&path, field);
    let target = match chosen_target(p, when, "latency", &l.target, outer, refs) {
        Some(None) => {
            p.add(&at("target"), "is required (here or as when.target)");
            None
        }
        chosen => chosen.flatten().filter(|&t| {
            let path = target_path(when, "latency", &l.target);
            refs.traffic_can(p, &path, t, true, "a latency rule")
        }),
    };
    let percentile = match &l.percentile {
        None => Some(DEFAULT_PERCENTILE),
        Some(v) => units::percent(p, &at("percentile"), v).and_then(|pct| {
            if pct > 0.0 && pct < 100.0 {
                return Some(pct);
            }
            p.add(
                &at("percentile"),
                format!("must be between 0 and 100 (both excluded), got {pct}"),
            );
            None
        }),
    };
    let above = values::required(p, &at("above"), &l.above)
        .and_then(|v| units::duration(p, &at("above"), v, Zero::Forbidden));
    let window = units::duration_or(p, &at("window"), &l.window, DEFAULT_WINDOW, Zero::Forbidden);
    // Below 100 / (100 - p) samples the percentile is simply the slowest one.
    let default = percentile.map(|pct| units::ceil_tolerant(100.0 / (100.0 - pct)) as u64);
    let min_samples = min_samples(p, &at("min_samples"), &l.min_samples, default);
    Some(Condition::Latency {
        target: target?,
        percentile: percentile?,
        above: above?,
        window: window?,
        min_samples: min_samples?,
    })
}

/// Restart counts come from the Kubernetes API, so the rule needs
/// `rollback.kubernetes` (which tells backstop who it is); without it the
/// rule could never see a crash loop, and silence would be a lie.
fn restarts(p: &mut Problems, when: &str, r: &RawRestarts, refs: &Refs) -> Option<Condition> {
    let path = error::key(when, "restarts");
    raw::check_unknown(p, &path, r);
    let at = |field: &str| error::key(&path, field);
    let above = values::required(p, &at("above"), &r.above)
        .and_then(|v| units::whole(p, &at("above"), v, 0, u64::from(u32::MAX)));
    let window = units::duration_or(
        p,
        &at("window"),
        &r.window,
        DEFAULT_RESTARTS_WINDOW,
        Zero::Forbidden,
    );
    let containers = match &r.containers {
        None => Some(Containers::AllBut(refs.own_container.to_owned())),
        Some(v) => containers(p, &at("containers"), v).map(Containers::Only),
    };
    if !refs.kubernetes {
        p.add(
            &path,
            "needs rollback.kubernetes: restart counts come from the Kubernetes API",
        );
        return None;
    }
    Some(Condition::Restarts {
        above: u32::try_from(above?).ok()?,
        window: window?,
        containers: containers?,
    })
}

/// `restarts.containers`: at least one container name, each once.
fn containers(p: &mut Problems, path: &str, value: &Value) -> Option<Vec<String>> {
    let items = values::list_or_one(path, value);
    if items.is_empty() {
        p.add(
            path,
            "must name at least one container (leave it out for every container but backstop's own)",
        );
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (item_path, item) in items {
        match values::container_name(p, &item_path, item) {
            Some(name) if out.contains(&name) => {
                p.add(&item_path, format!("{name:?} is listed twice"));
                ok = false;
            }
            Some(name) => out.push(name),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `min_samples` when given (at least 1), else the rule kind's default raised
/// to `MIN_SAMPLES_FLOOR`; None when the default depends on a bad value.
fn min_samples(
    p: &mut Problems,
    path: &str,
    value: &Option<Value>,
    default: Option<u64>,
) -> Option<u64> {
    match value {
        Some(v) => units::whole(p, path, v, 1, u64::MAX),
        None => default.map(|d| d.max(MIN_SAMPLES_FLOOR)),
    }
}

fn actions(p: &mut Problems, path: &str, value: &Value, refs: &Refs) -> Option<Vec<Action>> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut ok = true;
    for (item_path, item) in values::list_or_one(path, value) {
        let Some(name) = values::text(p, &item_path, item) else {
            ok = false;
            continue;
        };
        let repeated = seen.contains(&name);
        seen.push(name);
        let problem = match name {
            _ if repeated => format!("{} is listed twice", values::quote(name)),
            "rollback" if refs.rollback_configured => {
                out.push(Action::Rollback);
                continue;
            }
            "rollback" => {
                r#""rollback" needs rollback.webhook (or rollback.kubernetes)"#.to_owned()
            }
            "page" if refs.page_configured => {
                out.push(Action::Page);
                continue;
            }
            "page" => {
                r#""page" needs page.pagerduty, page.alertmanager, page.slack or page.webhook"#
                    .to_owned()
            }
            other => format!(
                "unknown action {} (valid: {}){}",
                values::quote(other),
                ACTIONS.join(", "),
                error::did_you_mean(other, ACTIONS.iter().copied())
            ),
        };
        p.add(&item_path, problem);
        ok = false;
    }
    ok.then_some(out)
}
