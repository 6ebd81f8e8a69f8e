//! Validation of `traffic`: each entry's scrape target, its selectors (or a
//! preset, narrowed by `match`), and its name, which shares one namespace
//! with the targets because rules and SLOs name either.

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{self, RawTarget, RawTraffic};
use super::types::Traffic;
use super::values;
use crate::traffic::Selector;

/// The presets: name, then the requests, errors and latency selectors.
pub(super) const PRESETS: &[(&str, [&str; 3])] = &[
    (
        // OpenTelemetry HTTP server semantic conventions, as exported to
        // Prometheus (`http.server.request.duration`, seconds).
        "otel-http",
        [
            "http_server_request_duration_seconds_count",
            r#"http_server_request_duration_seconds_count{http_response_status_code=~"5.."}"#,
            "http_server_request_duration_seconds",
        ],
    ),
    (
        // Spring Boot / Micrometer's `http.server.requests` timer.
        "micrometer",
        [
            "http_server_requests_seconds_count",
            r#"http_server_requests_seconds_count{status=~"5.."}"#,
            "http_server_requests_seconds",
        ],
    ),
    (
        // The Prometheus client libraries' customary names.
        "http-requests-total",
        [
            "http_requests_total",
            r#"http_requests_total{code=~"5.."}"#,
            "http_request_duration_seconds",
        ],
    ),
];

/// What rules and SLOs need to know of an entry before it is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Has {
    pub errors: bool,
    pub latency: bool,
}

/// Which selectors each raw entry will have, by position.
pub(super) fn capabilities(raw: &Option<Vec<RawTraffic>>) -> Vec<Has> {
    raw.iter()
        .flatten()
        .map(|t| Has {
            errors: t.preset.is_some() || t.errors.is_some(),
            latency: t.preset.is_some() || t.latency.is_some(),
        })
        .collect()
}

/// The names of the raw entries, by position; None where unusable.
pub(super) fn names(raw: &Option<Vec<RawTraffic>>) -> Vec<Option<&str>> {
    raw.iter()
        .flatten()
        .map(|t| match &t.name {
            Some(Value::String(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// `traffic`: every entry, reading a `scrape: true` target.
pub(super) fn traffic(
    p: &mut Problems,
    raw: &Option<Vec<RawTraffic>>,
    targets: &Option<Vec<RawTarget>>,
) -> Option<Vec<Traffic>> {
    let targets: Vec<(Option<&str>, bool)> = targets
        .iter()
        .flatten()
        .map(|t| {
            let name = match &t.name {
                Some(Value::String(n)) => Some(n.as_str()),
                _ => None,
            };
            (name, matches!(t.scrape, Some(Value::Bool(true))))
        })
        .collect();
    let mut out = Vec::new();
    let mut seen: Vec<Option<&str>> = Vec::new();
    for (i, t) in raw.iter().flatten().enumerate() {
        let path = error::index("traffic", i);
        let name_path = error::key(&path, "name");
        if let Some(Value::String(name)) = &t.name {
            if let Some(j) = targets.iter().position(|(n, _)| *n == Some(name)) {
                p.add(
                    &name_path,
                    format!(
                        "{} is already the name of targets[{j}]; rules and SLOs name \
                         targets and traffic alike, so names must differ",
                        values::quote(name)
                    ),
                );
            } else if let Some(j) = seen.iter().position(|n| *n == Some(name.as_str())) {
                p.add(
                    &name_path,
                    format!(
                        "{} is already the name of traffic[{j}]",
                        values::quote(name)
                    ),
                );
            }
            seen.push(Some(name));
        } else {
            seen.push(None);
        }
        out.push(entry(p, &path, t, &targets));
    }
    out.into_iter().collect()
}

fn entry(
    p: &mut Problems,
    path: &str,
    t: &RawTraffic,
    targets: &[(Option<&str>, bool)],
) -> Option<Traffic> {
    raw::check_unknown(p, path, t);
    let at = |field: &str| error::key(path, field);
    let name =
        values::required(p, &at("name"), &t.name).and_then(|v| values::name(p, &at("name"), v));
    let from = from(p, &at("from"), &t.from, targets);
    let narrow = match &t.match_ {
        None => Some(None),
        Some(v) => matchers(p, &at("match"), v).map(Some),
    };
    let selectors = match &t.preset {
        Some(v) => preset(p, path, v, t),
        None => {
            let requests = match &t.requests {
                Some(v) => selector(p, &at("requests"), v).map(Some),
                None => {
                    p.add(
                        &at("requests"),
                        format!(
                            "is required (a counter selector such as \
                             'http_requests_total'), or use a preset: {}",
                            preset_names()
                        ),
                    );
                    None
                }
            };
            let errors = optional(p, &at("errors"), &t.errors);
            let latency = optional(p, &at("latency"), &t.latency);
            Some([requests?, errors?, latency?])
        }
    };
    let narrow = narrow?;
    let [requests, errors, latency] =
        selectors?.map(|s| s.map(|s| narrow.as_ref().map_or(s.clone(), |n| s.and(n))));
    Some(Traffic {
        name: name?,
        from: from?,
        requests: requests?,
        errors,
        latency,
    })
}

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The preset's three selectors; giving one of them as well is an error.
fn preset(
    p: &mut Problems,
    path: &str,
    value: &Value,
    t: &RawTraffic,
) -> Option<[Option<Selector>; 3]> {
    let at = error::key(path, "preset");
    let given: Vec<&str> = [
        ("requests", &t.requests),
        ("errors", &t.errors),
        ("latency", &t.latency),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(n, _)| n)
    .collect();
    let name = values::text(p, &at, value)?;
    let Some((_, selectors)) = PRESETS.iter().find(|(n, _)| *n == name) else {
        p.add(
            &at,
            format!(
                "no preset named {} (known: {}){}",
                values::quote(name),
                preset_names(),
                error::did_you_mean(name, PRESETS.iter().map(|(n, _)| *n))
            ),
        );
        return None;
    };
    if !given.is_empty() {
        p.add(
            &at,
            format!(
                "a preset gives requests, errors and latency; remove {} or the preset \
                 (use match to narrow a preset)",
                given.join(" and ")
            ),
        );
        return None;
    }
    Some(selectors.map(|s| Some(Selector::parse(s).expect("preset selectors parse"))))
}

fn optional(p: &mut Problems, path: &str, value: &Option<Value>) -> Option<Option<Selector>> {
    match value {
        None => Some(None),
        Some(v) => selector(p, path, v).map(Some),
    }
}

/// A selector with a metric name.
fn selector(p: &mut Problems, path: &str, value: &Value) -> Option<Selector> {
    let text = values::text(p, path, value)?;
    let s = match Selector::parse(text) {
        Ok(s) => s,
        Err(e) => {
            p.add(
                path,
                format!("{} is not a PromQL selector: {e}", values::quote(text)),
            );
            return None;
        }
    };
    let named = s.name().is_some()
        || s.matchers()
            .iter()
            .any(|m| m.label() == "__name__" && m.op() == crate::traffic::MatchOp::Equal);
    if !named {
        p.add(
            path,
            format!(
                "{} has no metric name; write it first, as in 'http_requests_total{{...}}'",
                values::quote(text)
            ),
        );
        return None;
    }
    Some(s)
}

/// `match`: label matchers only, such as `{http_route=~"/api/.*"}`.
fn matchers(p: &mut Problems, path: &str, value: &Value) -> Option<Selector> {
    let text = values::text(p, path, value)?;
    match Selector::parse_narrowing(text) {
        Ok(s) if s.name().is_some() => {
            p.add(
                path,
                format!(
                    "{} names a metric; match only adds label matchers, as in \
                     '{{http_route=~\"/api/.*\"}}'",
                    values::quote(text)
                ),
            );
            None
        }
        Ok(s) => Some(s),
        Err(e) => {
            p.add(
                path,
                format!(
                    "{} is not a list of label matchers: {e}",
                    values::quote(text)
                ),
            );
            None
        }
    }
}

/// `from`: a scrape target by name; default the only one.
fn from(
    p: &mut Problems,
    path: &str,
    value: &Option<Value>,
    targets: &[(Option<&str>, bool)],
) -> Option<usize> {
    let scraped: Vec<usize> = (0..targets.len()).filter(|&i| targets[i].1).collect();
    let Some(value) = value else {
        return match scraped.as_slice() {
            [only] => Some(*only),
            [] => {
                p.add(
                    path,
                    "no target has scrape: true; add one for the app's /metrics \
                     and name it here",
                );
                None
            }
            many => {
                let names: Vec<String> = many
                    .iter()
                    .filter_map(|&i| targets[i].0.map(values::quote))
                    .collect();
                p.add(
                    path,
                    format!(
                        "is required when several targets are scraped (one of {})",
                        names.join(", ")
                    ),
                );
                None
            }
        };
    };
    let name = values::text(p, path, value)?;
    match targets.iter().position(|(n, _)| *n == Some(name)) {
        Some(i) if targets[i].1 => Some(i),
        Some(i) => {
            p.add(
                path,
                format!(
                    "targets[{i}] ({}) is probed, not scraped; set scrape: true on it",
                    values::quote(name)
                ),
            );
            None
        }
        None => {
            let known = scraped.iter().filter_map(|&i| targets[i].0);
            p.add(
                path,
                format!(
                    "no scrape target named {}{}",
                    values::quote(name),
                    error::did_you_mean(name, known)
                ),
            );
            None
        }
    }
}
