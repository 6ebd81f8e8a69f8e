//! Turns the raw file into `Config`: the top-level keys and SLOs here;
//! targets, traffic, rules, the receivers (`receivers.rs`) and the rollback
//! (`rollback.rs`) have their own modules. Every problem is recorded, none
//! stops the run.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{self, RawConfig, RawOtlp, RawSlo, RawTarget};
use super::receivers::{grafana, page};
use super::rollback::rollback;
use super::types::{Config, Otlp, Slo};
use super::units::{self, Zero};
use super::values;
use super::{rules, security, targets, traffic, warnings};

/// Longest service name: it becomes a metric label and part of dedup keys,
/// and 63 is the Kubernetes name limit it usually mirrors.
const MAX_SERVICE_LEN: usize = 63;
pub(super) const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// backstop's container name in the shipped manifests (k8s/components/backstop).
pub(super) const DEFAULT_CONTAINER: &str = "backstop";

/// Names other sections refer to. Built from the raw file, so a reference to
/// a target or SLO that has some other problem is not reported a second time.
pub(super) struct Refs<'a> {
    /// Source names by index (the targets, then the traffic entries); None
    /// where the name itself is unusable.
    pub(super) targets: Vec<Option<&'a str>>,
    /// How many of `targets` are probe targets; the rest are traffic.
    pub(super) probes: usize,
    /// What each traffic entry can answer, by traffic index.
    pub(super) traffic: Vec<traffic::Has>,
    /// SLO names by index, with the objective as a fraction when it is valid.
    pub(super) slos: Vec<(Option<&'a str>, Option<f64>)>,
    /// `rollback.webhook` or `rollback.kubernetes` is present.
    pub(super) rollback_configured: bool,
    /// `rollback.kubernetes` is present (restart counts need it).
    pub(super) kubernetes: bool,
    /// backstop's own container, as `rollback.kubernetes.container` names
    /// it (or the default); its restarts are not the app's.
    pub(super) own_container: &'a str,
    /// A page receiver this build supports is present.
    pub(super) page_configured: bool,
}

impl Refs<'_> {
    /// Resolves a target name at `path` to its index.
    pub(super) fn target(&self, p: &mut Problems, path: &str, value: &Value) -> Option<usize> {
        let name = values::text(p, path, value)?;
        let found = self.targets.iter().position(|t| *t == Some(name));
        if found.is_none() {
            let known = self.targets.iter().flatten().copied();
            let what = if self.traffic.is_empty() {
                "target"
            } else {
                "target or traffic entry"
            };
            p.add(
                path,
                format!(
                    "no {what} named {name:?}{}",
                    error::did_you_mean(name, known)
                ),
            );
        }
        found
    }

    /// Source `i` is a traffic entry: what it can answer.
    pub(super) fn traffic_of(&self, i: usize) -> Option<traffic::Has> {
        self.traffic.get(i.checked_sub(self.probes)?).copied()
    }

    /// Reports, at `path`, that source `i` is a traffic entry without the
    /// selector (`errors` or `latency`) that `what` needs. True when fine.
    pub(super) fn traffic_can(
        &self,
        p: &mut Problems,
        path: &str,
        i: usize,
        latency: bool,
        what: &str,
    ) -> bool {
        let Some(has) = self.traffic_of(i) else {
            return true;
        };
        let (ok, field) = if latency {
            (has.latency, "latency")
        } else {
            (has.errors, "errors")
        };
        if !ok {
            let name = self.targets[i].unwrap_or_default();
            p.add(
                path,
                format!(
                    "traffic {} has no {field} selector, which {what} needs; \
                     add traffic[{}].{field} or a preset",
                    values::quote(name),
                    i - self.probes
                ),
            );
        }
        ok
    }
}

pub(super) fn config(p: &mut Problems, raw: &RawConfig) -> Option<Config> {
    raw::check_unknown(p, "", raw);
    let service = values::required(p, "service", &raw.service).and_then(|v| service(p, v));
    let listen = match &raw.listen {
        Some(v) => listen(p, v),
        None => Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9464))),
    };
    let targets = targets::targets(p, &raw.targets);
    let traffic = traffic::traffic(p, &raw.traffic, &raw.targets);
    let mut names = target_names(&raw.targets);
    let probes = names.len();
    names.extend(traffic::names(&raw.traffic));
    let mut refs = Refs {
        targets: names,
        probes,
        traffic: traffic::capabilities(&raw.traffic),
        slos: Vec::new(),
        rollback_configured: raw
            .rollback
            .as_ref()
            .is_some_and(|r| r.webhook.is_some() || r.kubernetes.is_some()),
        kubernetes: raw
            .rollback
            .as_ref()
            .is_some_and(|r| r.kubernetes.is_some()),
        own_container: match raw
            .rollback
            .as_ref()
            .and_then(|r| r.kubernetes.as_ref())
            .and_then(|k| k.container.as_ref())
        {
            Some(Value::String(name)) => name,
            _ => DEFAULT_CONTAINER,
        },
        page_configured: raw.page.as_ref().is_some_and(|p| {
            p.alertmanager.is_some()
                || p.pagerduty.is_some()
                || p.slack.is_some()
                || p.webhook.is_some()
        }),
    };
    let slos = slos(p, &raw.slos, &mut refs);
    let rules = rules::rules(p, &raw.rules, &refs);
    let rollback = rollback(p, &raw.rollback);
    let page = page(p, &raw.page);
    if let Some(annotate) = &raw.annotate {
        raw::check_unknown(p, "annotate", annotate);
    }
    let grafana = match raw.annotate.as_ref().and_then(|a| a.grafana.as_ref()) {
        None => Some(None),
        Some(g) => grafana(p, g).map(Some),
    };
    if let (Some(targets), Some(slos), Some(rules)) = (&targets, &slos, &rules) {
        super::thresholds::check(p, targets, slos, rules);
    }
    let otlp = otlp(p, &raw.otlp);
    let admin = security::admin(p, &raw.admin);
    let tls = security::tls(p, &raw.tls);
    let valid = warnings::Valid {
        slos: slos.as_deref(),
        rules: rules.as_deref(),
    };
    warnings::check(p, raw, &valid);
    Some(Config {
        service: service?,
        listen: listen?,
        targets: targets?,
        traffic: traffic?,
        slos: slos?,
        rules: rules?,
        rollback: rollback?,
        page: page?,
        grafana: grafana?,
        otlp: otlp?,
        admin: admin?,
        tls: tls?,
    })
}

fn target_names(raw: &Option<Vec<RawTarget>>) -> Vec<Option<&str>> {
    raw.iter()
        .flatten()
        .map(|t| match &t.name {
            Some(Value::String(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

fn service(p: &mut Problems, value: &Value) -> Option<String> {
    let name = values::name(p, "service", value)?;
    let chars = name.chars().count();
    if chars > MAX_SERVICE_LEN {
        p.add(
            "service",
            format!(
                "{} is {chars} characters long; at most {MAX_SERVICE_LEN} are allowed",
                values::quote(&name)
            ),
        );
        return None;
    }
    Some(name)
}

fn listen(p: &mut Problems, value: &Value) -> Option<SocketAddr> {
    let s = values::text(p, "listen", value)?;
    let parsed = s.trim().parse().ok();
    if parsed.is_none() {
        p.add(
            "listen",
            format!(
                "{} is not an IP address and port like {}",
                values::quote(s),
                super::DEFAULT_LISTEN
            ),
        );
    }
    parsed
}

/// `slos`; also records their names and objectives in `refs` for the rules.
fn slos<'a>(
    p: &mut Problems,
    raw: &'a Option<Vec<RawSlo>>,
    refs: &mut Refs<'a>,
) -> Option<Vec<Slo>> {
    let mut out = Vec::new();
    for (i, s) in raw.iter().flatten().enumerate() {
        let path = error::index("slos", i);
        let (slo, objective) = slo(p, &path, s, refs);
        let name = match &s.name {
            Some(Value::String(name)) => Some(name.as_str()),
            _ => None,
        };
        if let Some(first) = refs
            .slos
            .iter()
            .position(|(n, _)| name.is_some() && *n == name)
        {
            p.add(
                &error::key(&path, "name"),
                format!(
                    "{:?} is already the name of slos[{first}]",
                    name.unwrap_or_default()
                ),
            );
        }
        refs.slos.push((name, objective));
        out.push(slo);
    }
    out.into_iter().collect()
}

/// One SLO, and its objective as a fraction when that much is valid.
fn slo(p: &mut Problems, path: &str, s: &RawSlo, refs: &Refs) -> (Option<Slo>, Option<f64>) {
    raw::check_unknown(p, path, s);
    let at = |field: &str| error::key(path, field);
    let name =
        values::required(p, &at("name"), &s.name).and_then(|v| values::name(p, &at("name"), v));
    let objective = values::required(p, &at("objective"), &s.objective)
        .and_then(|v| units::percent(p, &at("objective"), v))
        .and_then(|pct| {
            // The fraction is checked too: rounding may carry 99.99999999999999 to 1.
            let fraction = units::fraction(pct);
            if pct > 0.0 && pct < 100.0 && fraction > 0.0 && fraction < 1.0 {
                Some(fraction)
            } else {
                p.add(
                    &at("objective"),
                    format!("must be between 0% and 100% (both excluded), got {pct}%"),
                );
                None
            }
        });
    let latency_threshold = match &s.latency_threshold {
        Some(v) => units::duration(p, &at("latency_threshold"), v, Zero::Forbidden).map(Some),
        None => Some(None),
    };
    let targets = match &s.targets {
        // Every probe target, never traffic: requests and probes are
        // different units and are not mixed unless asked for.
        None => Some((0..refs.probes).collect()),
        Some(v) => slo_targets(p, &at("targets"), v, refs).filter(|targets| {
            let latency = s.latency_threshold.is_some();
            let what = if latency {
                "a latency SLO (good = requests within latency_threshold)"
            } else {
                "an SLO (good = requests - errors)"
            };
            let items = values::list_or_one(&at("targets"), v);
            let mut ok = true;
            for ((item_path, _), &t) in items.iter().zip(targets) {
                ok &= refs.traffic_can(p, item_path, t, latency, what);
            }
            ok
        }),
    };
    let slo = || {
        Some(Slo {
            name: name?,
            objective: objective?,
            latency_threshold: latency_threshold?,
            targets: targets?,
        })
    };
    (slo(), objective)
}

fn slo_targets(p: &mut Problems, path: &str, value: &Value, refs: &Refs) -> Option<Vec<usize>> {
    let items = values::list_or_one(path, value);
    if items.is_empty() {
        p.add(
            path,
            "must name at least one target (leave it out for all targets)",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (item_path, item) in items {
        match refs.target(p, &item_path, item) {
            Some(index) if out.contains(&index) => {
                p.add(
                    &item_path,
                    format!("{} is listed twice", values::describe(item)),
                );
                ok = false;
            }
            Some(index) => out.push(index),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn otlp(p: &mut Problems, raw: &Option<RawOtlp>) -> Option<Option<Otlp>> {
    let Some(otlp) = raw else {
        return Some(None);
    };
    raw::check_unknown(p, "otlp", otlp);
    let endpoint = match &otlp.endpoint {
        None => None,
        Some(v) => Some(values::http_url(p, "otlp.endpoint", v)?),
    };
    Some(Some(Otlp { endpoint }))
}
