//! `backstop alert-rules`: Prometheus recording rules and multi-window,
//! multi-burn-rate alerts (Google SRE workbook; the shape Sloth generates)
//! for the SLOs of a configuration, over backstop's own metrics,
//! aggregated over every sidecar of a service.
//!
//! The SLI is the one the sidecar computes: counted probes (warm-up
//! failures left out) of the SLO's targets, good when they succeeded and,
//! for a latency SLO, finished within `latency_threshold`. Prometheus can
//! count the latter exactly only when the threshold is a bucket bound of
//! `backstop_probe_duration_seconds`; other latency SLOs are left out with
//! a comment that says so.

use crate::config::{Config, Slo};
use std::fmt::Write;
use std::time::Duration;

/// Where the alerts' `runbook_url`s point: the README's runbook sections.
pub const RUNBOOK: &str = "https://github.com/backstop-dev/backstop/blob/main/README.md";

/// The SLO period the budget percentages refer to.
const PERIOD_HOURS: f64 = 30.0 * 24.0;

/// One row of the workbook's table: both windows must burn faster than
/// `factor` for the alert to fire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnWindow {
    pub severity: &'static str,
    pub long: &'static str,
    pub short: &'static str,
    pub factor: f64,
    long_hours: f64,
    /// `long`, said in words in the description.
    long_words: &'static str,
    urgent: bool,
}

pub const WINDOWS: [BurnWindow; 4] = [
    BurnWindow {
        severity: "page",
        long: "1h",
        short: "5m",
        factor: 14.4,
        long_hours: 1.0,
        long_words: "one hour",
        urgent: true,
    },
    BurnWindow {
        severity: "page",
        long: "6h",
        short: "30m",
        factor: 6.0,
        long_hours: 6.0,
        long_words: "six hours",
        urgent: true,
    },
    BurnWindow {
        severity: "ticket",
        long: "1d",
        short: "2h",
        factor: 3.0,
        long_hours: 24.0,
        long_words: "one day",
        urgent: false,
    },
    BurnWindow {
        severity: "ticket",
        long: "3d",
        short: "6h",
        factor: 1.0,
        long_hours: 72.0,
        long_words: "three days",
        urgent: false,
    },
];

/// Every window a recording rule is needed for, shortest first.
const RECORDED: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

impl BurnWindow {
    /// Percent of a 30-day error budget spent when the long window burns at
    /// exactly `factor` (2 % for 14.4× over 1h).
    pub fn budget_spent_percent(&self) -> f64 {
        round(self.factor * self.long_hours / PERIOD_HOURS * 100.0)
    }

    /// The error ratio at which this window alerts for an objective (a
    /// fraction): factor × (1 − objective). At 1 or more it can never fire.
    pub fn error_ratio_threshold(&self, objective: f64) -> f64 {
        round(self.factor * error_budget(objective))
    }
}

/// 1 − objective, without the float noise of the subtraction (1 − 0.999
/// is 0.0010000000000000009), so it prints as the number people wrote.
pub fn error_budget(objective: f64) -> f64 {
    round(1.0 - objective)
}

fn round(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// What to generate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Wrap the groups in a prometheus-operator `PrometheusRule`.
    pub prometheus_rule: bool,
    /// Rules for every service's sidecars, not only the configuration's
    /// `service` (the bundled `alerts/` are generated this way).
    pub all_services: bool,
}

/// The rule file (or `PrometheusRule`) for `config`'s SLOs.
pub fn generate(config: &Config, opts: Options) -> String {
    let groups = groups(config, opts);
    if !opts.prometheus_rule {
        return groups;
    }
    let name = if opts.all_services {
        "backstop-slo".to_string()
    } else {
        format!("backstop-slo-{}", config.service)
    };
    let mut out = String::new();
    let (header, body) = split_header(&groups);
    out.push_str(header);
    let _ = write!(
        out,
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {}\n  labels:\n    app.kubernetes.io/name: backstop\n    app.kubernetes.io/component: slo-alerts\nspec:\n",
        quote(&name)
    );
    for line in body.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// The leading comment lines, and the rest.
fn split_header(text: &str) -> (&str, &str) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with('#') && !line.trim().is_empty() {
            break;
        }
        at += line.len();
    }
    text.split_at(at)
}

/// How Prometheus counts an SLO's good and total probes, or why it cannot.
struct Sli {
    /// Matchers for the SLO's targets (empty: every target).
    targets: String,
    latency: Option<Latency>,
}

struct Latency {
    threshold: Duration,
    /// The `le` matcher of the bucket at the threshold.
    le: String,
}

fn sli(config: &Config, slo: &Slo) -> Result<Sli, String> {
    let traffic: Vec<&str> = slo
        .targets
        .iter()
        .filter(|t| config.traffic_index(**t).is_some())
        .map(|t| config.source_name(*t))
        .collect();
    if !traffic.is_empty() {
        return Err(format!(
            "it reads the app's own request counters (traffic {}), which Prometheus \
             scrapes from the app itself; these rules cover probe SLOs only, so \
             write that SLO's rules over the app's metrics",
            traffic.join(", ")
        ));
    }
    let targets = if slo.targets.len() == config.targets.len() {
        String::new()
    } else {
        let names: Vec<String> = slo
            .targets
            .iter()
            .map(|t| regex_escape(&config.targets[*t].name))
            .collect();
        format!("target=~\"{}\", ", promql_escape(&names.join("|")))
    };
    let latency = match slo.latency_threshold {
        None => None,
        Some(threshold) => {
            let bounds = duration_buckets();
            let secs = threshold.as_secs_f64();
            let Some(bound) = bounds.iter().find(|b| (*b - secs).abs() < 1e-9) else {
                let list: Vec<String> = bounds.iter().map(|b| format!("{b}")).collect();
                return Err(format!(
                    "its SLI counts probes that succeeded within {}, and \
                     backstop_probe_duration_seconds has no bucket bound at {secs} s \
                     (its bounds: {}), so Prometheus cannot count them exactly. \
                     Use one of those bounds as latency_threshold to get alerts for it.",
                    humantime::format_duration(threshold),
                    list.join(", ")
                ));
            };
            Some(Latency {
                threshold,
                le: le_matcher(*bound),
            })
        }
    };
    Ok(Sli { targets, latency })
}

/// The bucket bounds of `backstop_probe_duration_seconds`: the constant
/// the probers' histogram is built with, so they cannot drift apart.
pub fn duration_buckets() -> Vec<f64> {
    crate::telemetry::DURATION_BUCKETS.to_vec()
}

/// Matches the `le` label of the bucket at `bound` as the sidecar writes it
/// (`1`, `0.2`) and as Prometheus 3 normalises it on ingestion (`1.0`).
pub fn le_matcher(bound: f64) -> String {
    if bound.fract() == 0.0 {
        format!("le=~\"{bound}|{bound}\\\\.0\"")
    } else {
        format!("le=\"{bound}\"")
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn promql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A YAML single-quoted scalar.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn percent(objective: f64) -> String {
    format!("{}", round(objective * 100.0))
}

fn groups(config: &Config, opts: Options) -> String {
    let mut out = String::new();
    let scope = if opts.all_services {
        "every service".to_string()
    } else {
        format!("service {:?}", config.service)
    };
    let _ = writeln!(
        out,
        "# Generated by `backstop alert-rules` (backstop {}) for {scope}: per-SLO error\n\
         # ratios over all of a service's backstop sidecars, and multi-window multi-burn-rate\n\
         # alerts on them (Google SRE workbook):\n\
         #\n\
         #   severity  long  short  factor  budget spent when it fires (30 days)",
        env!("CARGO_PKG_VERSION")
    );
    for w in WINDOWS {
        let _ = writeln!(
            out,
            "#   {:<8}  {:<4}  {:<5}  {:<6}  {} % in {}",
            w.severity,
            w.long,
            w.short,
            w.factor,
            w.budget_spent_percent(),
            w.long_words
        );
    }
    let _ = writeln!(
        out,
        "#\n\
         # An alert's value is the burn rate over its long window: error ratio / (1 - objective).\n\
         # Do not edit: change the SLOs in the configuration and generate again."
    );
    let slos: Vec<(&Slo, Result<Sli, String>)> =
        config.slos.iter().map(|s| (s, sli(config, s))).collect();
    for (slo, sli) in &slos {
        if let Err(why) = sli {
            let _ = writeln!(out, "#\n# SLO {:?} is left out: {why}", slo.name);
        }
    }
    let service = if opts.all_services {
        String::new()
    } else {
        format!("{{service=\"{}\"}}", promql_escape(&config.service))
    };
    let usable: Vec<(&Slo, &Sli)> = slos
        .iter()
        .filter_map(|(s, r)| r.as_ref().ok().map(|r| (*s, r)))
        .collect();
    if usable.is_empty() {
        out.push_str("groups: []\n");
        return out;
    }
    out.push_str("\ngroups:\n  - name: backstop-recording\n    rules:\n");
    for (slo, sli) in &usable {
        for window in RECORDED {
            recording(&mut out, slo, sli, window, &service);
        }
    }
    out.push_str("\n  - name: backstop-slo\n    rules:\n");
    for (slo, sli) in &usable {
        for w in WINDOWS {
            alert(&mut out, slo, sli, &w);
        }
    }
    out
}

/// `backstop:slo_error_ratio:rate<window>{slo}`: failed over counted
/// probes of the SLO's targets, over all sidecars of each service. A pod
/// that is gone counts for as long as its probes are inside the window.
fn recording(out: &mut String, slo: &Slo, sli: &Sli, window: &str, service: &str) {
    let t = &sli.targets;
    let join = format!(
        "* on (job, namespace, pod, instance) group_left (service)\n\
         \x20             max by (job, namespace, pod, instance, service) (max_over_time(backstop_build_info{service}[{window}]))"
    );
    let total = format!(
        "sum by (job, namespace, service) (\n\
         \x20             rate(backstop_probes_total{{{t}result!=\"warmup\"}}[{window}])\n\
         \x20           {join}\n\
         \x20         )"
    );
    let expr = match &sli.latency {
        None => format!(
            "sum by (job, namespace, service) (\n\
             \x20             (\n\
             \x20                 rate(backstop_probes_total{{{t}result=\"failure\"}}[{window}])\n\
             \x20               or\n\
             \x20                 0 * rate(backstop_probes_total{{{t}result!=\"warmup\"}}[{window}])\n\
             \x20             )\n\
             \x20           {join}\n\
             \x20         )\n\
             \x20         /\n\
             \x20         {total}"
        ),
        // Good: successes within the threshold, the bucket at it; the
        // duration histogram counts every probe once, warm-up ones apart.
        Some(l) => {
            let le = &l.le;
            let count = format!(
                "sum by (job, namespace, service) (\n\
                 \x20             rate(backstop_probe_duration_seconds_count{{{t}result!=\"warmup\"}}[{window}])\n\
                 \x20           {join}\n\
                 \x20         )"
            );
            format!(
                "1 - (\n\
                 \x20         sum by (job, namespace, service) (\n\
                 \x20             (\n\
                 \x20                 rate(backstop_probe_duration_seconds_bucket{{{t}result=\"success\", {le}}}[{window}])\n\
                 \x20               or\n\
                 \x20                 0 * rate(backstop_probe_duration_seconds_count{{{t}result!=\"warmup\"}}[{window}])\n\
                 \x20             )\n\
                 \x20           {join}\n\
                 \x20         )\n\
                 \x20         /\n\
                 \x20         {count}\n\
                 \x20         )"
            )
        }
    };
    let _ = write!(
        out,
        "      - record: backstop:slo_error_ratio:rate{window}\n\
         \x20       expr: |\n\
         \x20         {expr}\n\
         \x20       labels:\n\
         \x20         slo: {}\n",
        quote(&slo.name)
    );
}

fn alert(out: &mut String, slo: &Slo, sli: &Sli, w: &BurnWindow) {
    let objective = percent(slo.objective);
    let budget = error_budget(slo.objective);
    let threshold = w.error_ratio_threshold(slo.objective);
    if threshold >= 1.0 {
        let _ = writeln!(
            out,
            "      # {} {}/{}: left out. At {objective} % a {}x burn needs an error ratio of {threshold}: it cannot happen.",
            w.severity, w.long, w.short, w.factor
        );
        return;
    }
    let name = promql_escape(&slo.name);
    let good = match &sli.latency {
        None => "as backstop's probes see it".to_string(),
        Some(l) => format!(
            "a probe being good when it succeeds within {}",
            humantime::format_duration(l.threshold)
        ),
    };
    let advice = if w.urgent {
        "Find what broke now: a bad release (see backstop's rules and rollbacks), a dependency, \
         or a target that is down."
    } else {
        "Not urgent, but the objective will be missed if this goes on: find which targets fail and why."
    };
    let _ = write!(
        out,
        "      - alert: BackstopErrorBudgetBurn\n\
         \x20       expr: |\n\
         \x20         backstop:slo_error_ratio:rate{long}{{slo=\"{name}\"}} / {budget} > {factor}\n\
         \x20           and\n\
         \x20         backstop:slo_error_ratio:rate{short}{{slo=\"{name}\"}} / {budget} > {factor}\n\
         \x20       labels:\n\
         \x20         severity: {severity}\n\
         \x20         long_window: {long}\n\
         \x20         short_window: {short}\n\
         \x20         slo: {slo_label}\n\
         \x20       annotations:\n\
         \x20         summary: {summary}\n\
         \x20         description: >-\n\
         \x20           {{{{ $labels.service }}}}{{{{ with $labels.namespace }}}} in namespace {{{{ . }}}}{{{{ end }}}} has spent its\n\
         \x20           {objective} % {slo} error budget, {good}, {{{{ $value | printf \"%.1f\" }}}}x as fast\n\
         \x20           as allowed over the last {long}, and still faster than {factor}x over the last {short} (job {{{{ $labels.job }}}}).\n\
         \x20           At {factor}x a service spends {spent} % of a 30-day error budget in {words}.\n\
         \x20           {advice}\n\
         \x20         runbook_url: {runbook}\n",
        long = w.long,
        short = w.short,
        factor = w.factor,
        severity = w.severity,
        summary = quote(&format!(
            "{{{{ $labels.service }}}} burns its {} error budget {{{{ $value | printf \"%.1f\" }}}}x too fast",
            slo.name
        )),
        slo = slo.name,
        slo_label = quote(&slo.name),
        spent = w.budget_spent_percent(),
        words = w.long_words,
        runbook = quote(&format!("{RUNBOOK}#backstoperrorbudgetburn")),
    );
}

#[cfg(test)]
mod tests;
