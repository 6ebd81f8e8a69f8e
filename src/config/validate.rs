//! Turns the raw file into `Config`: the top-level keys, SLOs, rollback, and
//! the sections this build parses but cannot act on yet. Targets and rules
//! have their own modules; every problem is recorded, none stops the run.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{
    self, RawAlertmanager, RawConfig, RawGrafana, RawKubernetes, RawNotifyWebhook, RawOtlp,
    RawPage, RawPagerDuty, RawRollback, RawSlack, RawSlo, RawTarget, RawWebhook,
};
use super::types::{
    Alertmanager, Config, GitOps, Grafana, Kubernetes, NotifyWebhook, Otlp, Page, PagerDuty,
    Rollback, RollbackBackend, Secret, SecretUrl, Slack, Slo, Webhook,
};
use super::units::{self, Zero};
use super::values;
use super::{rules, security, targets, traffic, warnings};

/// Longest service name: it becomes a metric label and part of dedup keys,
/// and 63 is the Kubernetes name limit it usually mirrors.
const MAX_SERVICE_LEN: usize = 63;
const DEFAULT_BAKE: Duration = Duration::from_secs(30 * 60);
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10 * 60);
const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_PAGERDUTY_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_KUBERNETES_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Prometheus re-sends firing alerts every minute; so does backstop.
const DEFAULT_RESEND: Duration = Duration::from_secs(60);
/// backstop's container name in the shipped manifests (k8s/components/backstop).
const DEFAULT_CONTAINER: &str = "backstop";

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

fn grafana(p: &mut Problems, g: &RawGrafana) -> Option<Grafana> {
    let path = "annotate.grafana";
    raw::check_unknown(p, path, g);
    let url_path = error::key(path, "url");
    let url =
        values::required(p, &url_path, &g.url).and_then(|v| values::http_url(p, &url_path, v));
    let token = match &g.token_file {
        None => Some(None),
        Some(v) => values::secret_file(p, &error::key(path, "token_file"), v).map(Some),
    };
    let max = per_minute(p, path, &g.max_per_minute, 30);
    Some(Grafana {
        url: url?,
        token: token?,
        max_per_minute: max?,
    })
}

/// `max_per_minute` of a receiver: at least 1.
fn per_minute(p: &mut Problems, section: &str, v: &Option<Value>, default: u32) -> Option<u32> {
    match v {
        None => Some(default),
        Some(v) => units::whole(p, &error::key(section, "max_per_minute"), v, 1, 10_000)
            .map(|n| u32::try_from(n).unwrap_or(10_000)),
    }
}

fn page(p: &mut Problems, raw: &Option<RawPage>) -> Option<Page> {
    let Some(page) = raw else {
        return Some(Page::default());
    };
    raw::check_unknown(p, "page", page);
    // Both are checked before either can fail, so all problems are reported.
    let pagerduty = page.pagerduty.as_ref().map(|pd| pagerduty(p, pd));
    let alertmanager = page.alertmanager.as_ref().map(|am| alertmanager(p, am));
    let slack = page.slack.as_ref().map(|s| slack(p, s));
    let webhook = page.webhook.as_ref().map(|w| notify_webhook(p, w));
    Some(Page {
        alertmanager: alertmanager.map_or(Some(None), |a| a.map(Some))?,
        pagerduty: pagerduty.map_or(Some(None), |d| d.map(Some))?,
        slack: slack.map_or(Some(None), |s| s.map(Some))?,
        webhook: webhook.map_or(Some(None), |w| w.map(Some))?,
    })
}

fn slack(p: &mut Problems, raw: &RawSlack) -> Option<Slack> {
    let path = "page.slack";
    raw::check_unknown(p, path, raw);
    let url = secret_url(
        p,
        path,
        ("webhook_url_file", &raw.webhook_url_file),
        ("webhook_url", &raw.webhook_url),
    );
    let max = per_minute(p, path, &raw.max_per_minute, 20);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &raw.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    Some(Slack {
        url: url?,
        max_per_minute: max?,
        timeout: timeout?,
    })
}

fn notify_webhook(p: &mut Problems, raw: &RawNotifyWebhook) -> Option<NotifyWebhook> {
    let path = "page.webhook";
    raw::check_unknown(p, path, raw);
    let url = secret_url(p, path, ("url_file", &raw.url_file), ("url", &raw.url));
    let headers = targets::headers(p, path, &raw.headers, &raw.header_files);
    let max = per_minute(p, path, &raw.max_per_minute, 30);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &raw.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    Some(NotifyWebhook {
        url: url?,
        headers: headers?,
        max_per_minute: max?,
        timeout: timeout?,
    })
}

/// A URL that is a credential, from a file or from the text itself (one
/// of the two); a bad one is described, never shown.
fn secret_url(
    p: &mut Problems,
    section: &str,
    (file_key, file): (&str, &Option<Value>),
    (text_key, text): (&str, &Option<Value>),
) -> Option<SecretUrl> {
    let (at, value) = match (file, text) {
        (Some(f), None) => {
            let at = error::key(section, file_key);
            let secret = values::secret_file(p, &at, f)?;
            (at, secret.expose().to_string())
        }
        (None, Some(v)) => {
            let at = error::key(section, text_key);
            let value = values::secret_text(p, &at, v)?.trim().to_string();
            (at, value)
        }
        (Some(_), Some(_)) => {
            p.add(section, format!("give {file_key} or {text_key}, not both"));
            return None;
        }
        (None, None) => {
            p.add(section, format!("needs {file_key} (or {text_key})"));
            return None;
        }
    };
    match url::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Some(SecretUrl::new(url))
        }
        Ok(url) => {
            p.add(
                &at,
                format!(
                    "must be an http or https URL with a host, not {} (the URL is not shown: it is a secret)",
                    url.scheme()
                ),
            );
            None
        }
        Err(e) => {
            p.add(
                &at,
                format!("is not an absolute URL: {e} (the URL is not shown: it is a secret)"),
            );
            None
        }
    }
}

fn pagerduty(p: &mut Problems, pd: &RawPagerDuty) -> Option<PagerDuty> {
    let path = "page.pagerduty";
    raw::check_unknown(p, path, pd);
    let key = match (&pd.routing_key_file, &pd.routing_key) {
        (Some(file), None) => values::secret_file(p, &error::key(path, "routing_key_file"), file),
        (None, Some(v)) => {
            let at = error::key(path, "routing_key");
            values::secret_text(p, &at, v).and_then(|k| {
                if k.trim().is_empty() {
                    p.add(&at, "must not be empty");
                    None
                } else {
                    Some(Secret::new(k.trim()))
                }
            })
        }
        (Some(_), Some(_)) => {
            p.add(path, "give routing_key_file or routing_key, not both");
            None
        }
        (None, None) => {
            p.add(path, "needs routing_key_file (or routing_key)");
            None
        }
    };
    let url_path = error::key(path, "url");
    let url = match &pd.url {
        Some(v) => values::http_url(p, &url_path, v),
        None => Some(url::Url::parse(DEFAULT_PAGERDUTY_URL).expect("a valid constant URL")),
    };
    let max = per_minute(p, path, &pd.max_per_minute, 60);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &pd.timeout,
        DEFAULT_PAGERDUTY_TIMEOUT,
        Zero::Forbidden,
    );
    Some(PagerDuty {
        routing_key: key?,
        url: url?,
        max_per_minute: max?,
        timeout: timeout?,
    })
}

fn alertmanager(p: &mut Problems, am: &RawAlertmanager) -> Option<Alertmanager> {
    let path = "page.alertmanager";
    raw::check_unknown(p, path, am);
    let url_path = error::key(path, "url");
    let urls = values::required(p, &url_path, &am.url).and_then(|v| {
        let mut urls = Vec::new();
        let mut ok = true;
        for (item_path, item) in values::list_or_one(&url_path, v) {
            match values::http_url(p, &item_path, item) {
                Some(u) => urls.push(u),
                None => ok = false,
            }
        }
        if ok && urls.is_empty() {
            p.add(&url_path, "needs at least one URL");
            ok = false;
        }
        ok.then_some(urls)
    });
    let resend = units::duration_or(
        p,
        &error::key(path, "resend_interval"),
        &am.resend_interval,
        DEFAULT_RESEND,
        Zero::Forbidden,
    );
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &am.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    let max = per_minute(p, path, &am.max_per_minute, 30);
    Some(Alertmanager {
        urls: urls?,
        resend: resend?,
        timeout: timeout?,
        max_per_minute: max?,
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

fn rollback(p: &mut Problems, raw: &Option<RawRollback>) -> Option<Rollback> {
    let none = RawRollback::default();
    let r = raw.as_ref().unwrap_or(&none);
    raw::check_unknown(p, "rollback", r);
    let kubernetes = r.kubernetes.as_ref().map(|k| kubernetes(p, k));
    let webhook = r.webhook.as_ref().map(|w| webhook(p, w));
    if r.kubernetes.is_some() && r.webhook.is_some() {
        p.add("rollback", "set either kubernetes or webhook, not both");
    }
    let bake = units::duration_or(p, "rollback.bake", &r.bake, DEFAULT_BAKE, Zero::Forbidden);
    let cooldown = units::duration_or(
        p,
        "rollback.cooldown",
        &r.cooldown,
        DEFAULT_COOLDOWN,
        Zero::Allowed,
    );
    let dry_run = match &r.dry_run {
        Some(v) => units::boolean(p, "rollback.dry_run", v),
        None => Some(false),
    };
    let backend = match (webhook, kubernetes) {
        (Some(w), _) => Some(RollbackBackend::Webhook(w?)),
        (None, Some(k)) => Some(RollbackBackend::Kubernetes(k?)),
        (None, None) => None,
    };
    Some(Rollback {
        backend,
        bake: bake?,
        cooldown: cooldown?,
        dry_run: dry_run?,
    })
}

fn kubernetes(p: &mut Problems, k: &RawKubernetes) -> Option<Kubernetes> {
    let path = "rollback.kubernetes";
    raw::check_unknown(p, path, k);
    let mut ok = true;
    // Kubernetes object names are DNS subdomains: lower-case alphanumerics,
    // '-' and '.', starting and ending alphanumeric, at most 253 characters.
    let mut name = |field: &str, v: &Option<Value>| {
        let path = error::key(path, field);
        let got = values::text(p, &path, v.as_ref()?)?;
        let dns = !got.is_empty()
            && got.len() <= 253
            && got
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.'))
            && got.starts_with(|c: char| c.is_ascii_alphanumeric())
            && got.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !dns {
            p.add(
                &path,
                format!(
                    "{} is not a Kubernetes object name (lower-case letters, digits, '-' and '.')",
                    values::quote(got)
                ),
            );
            ok = false;
            return None;
        }
        Some(got.to_owned())
    };
    let deployment = name("deployment", &k.deployment);
    let namespace = name("namespace", &k.namespace);
    let argocd_namespace = name("argocd_namespace", &k.argocd_namespace);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &k.timeout,
        DEFAULT_KUBERNETES_TIMEOUT,
        Zero::Forbidden,
    );
    let container = match &k.container {
        Some(v) => values::container_name(p, &error::key(path, "container"), v),
        None => Some(DEFAULT_CONTAINER.to_owned()),
    };
    let token_file = k.token_file.as_ref().and_then(|v| {
        let path = error::key(path, "token_file");
        let file = values::text(p, &path, v)?;
        match values::secret_file(p, &path, v) {
            None => {
                ok = false;
                None
            }
            // The client sends the file as it is: a newline would make
            // every request's Authorization header invalid.
            Some(_) if std::fs::read(file).is_ok_and(|b| b.trim_ascii().len() != b.len()) => {
                p.add(
                    &path,
                    format!(
                        "the token in {file} has spaces or a newline around it, which would be \
                         sent as part of the token; mount the Secret's `token` key as it is"
                    ),
                );
                ok = false;
                None
            }
            Some(_) => Some(std::path::PathBuf::from(file)),
        }
    });
    let gitops = match &k.gitops {
        None => Some(GitOps::default()),
        Some(v) => {
            let path = error::key(path, "gitops");
            values::text(p, &path, v).and_then(|s| match s {
                "suspend" => Some(GitOps::Suspend),
                "page" => Some(GitOps::Page),
                "ignore" => Some(GitOps::Ignore),
                other => {
                    p.add(
                        &path,
                        format!(
                            "{} is not one of suspend, page, ignore",
                            values::quote(other)
                        ),
                    );
                    None
                }
            })
        }
    };
    ok.then_some(Kubernetes {
        deployment,
        namespace,
        timeout: timeout?,
        container: container?,
        token_file,
        gitops: gitops?,
        argocd_namespace: argocd_namespace.unwrap_or_else(|| "argocd".into()),
    })
}

fn webhook(p: &mut Problems, w: &RawWebhook) -> Option<Webhook> {
    let path = "rollback.webhook";
    raw::check_unknown(p, path, w);
    let url_path = error::key(path, "url");
    let url =
        values::required(p, &url_path, &w.url).and_then(|v| values::http_url(p, &url_path, v));
    let headers = targets::headers(p, path, &w.headers, &w.header_files);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &w.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    Some(Webhook {
        url: url?,
        headers: headers?,
        timeout: timeout?,
    })
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
