//! The validated configuration: what the rest of backstop reads. Every value
//! here has passed validation, defaults are filled in and names are resolved,
//! so downstream code never re-checks the configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::traffic::Selector;

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Service name: used in incidents, metric labels and dedup keys.
    pub service: String,
    /// Address of the admin server (`/metrics`, `/status`, ...). Default `0.0.0.0:9464`.
    pub listen: SocketAddr,
    /// Endpoints to probe. Never empty.
    pub targets: Vec<Target>,
    /// SLIs over the app's real requests. Rules and SLOs name them like
    /// targets: their indexes follow the targets' (see [`Config::source_name`]).
    pub traffic: Vec<Traffic>,
    /// Service level objectives over the targets' probe results.
    pub slos: Vec<Slo>,
    /// Conditions that trigger actions.
    pub rules: Vec<Rule>,
    /// How (and whether) to roll back.
    pub rollback: Rollback,
    /// Where incidents go.
    pub page: Page,
    /// `annotate.grafana`: mark rollbacks and page incidents on Grafana dashboards.
    pub grafana: Option<Grafana>,
    /// `otlp`: export traces. Also on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp: Option<Otlp>,
    /// `admin`: who may use the admin API's mutating endpoints.
    pub admin: Admin,
    /// `tls`: trust for outbound HTTPS.
    pub tls: Tls,
}

/// `admin`: the admin API's mutating endpoints (`POST /api/v1/...`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Admin {
    /// Bearer token those endpoints require (from `token_file`). None: they
    /// are off and answer 403.
    pub token: Option<Secret>,
}

/// `tls`: which certificate authorities outbound HTTPS trusts (probes,
/// webhook, receivers). Verification itself is never turned off.
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// Extra CAs (`ca_file`), e.g. a cluster's internal PKI.
    pub ca_bundle: Option<CaBundle>,
    /// Trust the system's roots too (default); false: only `ca_file`.
    pub system_roots: bool,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            ca_bundle: None,
            system_roots: true,
        }
    }
}

/// A PEM file of CA certificates, read and checked when the configuration loads.
#[derive(Clone, PartialEq)]
pub struct CaBundle {
    pub path: String,
    pub pem: Vec<u8>,
    /// Certificates found in it (at least one).
    pub certificates: usize,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificates)", self.path, self.certificates)
    }
}

/// `otlp`: OpenTelemetry trace export.
#[derive(Debug, Clone, PartialEq)]
pub struct Otlp {
    /// Collector endpoint; None: from `OTEL_EXPORTER_OTLP_ENDPOINT` (or the SDK default).
    pub endpoint: Option<url::Url>,
}

/// `annotate.grafana`: Grafana's HTTP API (`POST /api/annotations`).
#[derive(Debug, Clone, PartialEq)]
pub struct Grafana {
    pub url: url::Url,
    /// Service account token, sent as a bearer token. Never printed.
    pub token: Option<Secret>,
    /// Annotations per minute. Default 30.
    pub max_per_minute: u32,
}

/// `page`: incident receivers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub alertmanager: Option<Alertmanager>,
    pub pagerduty: Option<PagerDuty>,
    pub slack: Option<Slack>,
    pub webhook: Option<NotifyWebhook>,
}

/// `page.slack`: a Slack incoming webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Slack {
    /// The incoming webhook (`webhook_url_file`, or `webhook_url` for
    /// `${VAR}`): its path is the credential. Never printed.
    pub url: SecretUrl,
    /// Posts per minute. Default 20.
    pub max_per_minute: u32,
    /// Per request. Default 5s.
    pub timeout: Duration,
}

/// `page.webhook`: backstop's notification JSON, POSTed to any endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyWebhook {
    /// Where it goes (`url`, or `url_file`). Never printed.
    pub url: SecretUrl,
    pub headers: BTreeMap<String, HeaderValue>,
    /// Posts per minute. Default 30.
    pub max_per_minute: u32,
    /// Per request. Default 5s.
    pub timeout: Duration,
}

/// A URL that is itself a credential (a Slack webhook's path is its
/// token). Debug prints the scheme and host only.
#[derive(Clone, PartialEq)]
pub struct SecretUrl(url::Url);

impl SecretUrl {
    pub fn new(url: url::Url) -> SecretUrl {
        SecretUrl(url)
    }
    /// The URL itself; call only where it is sent on the wire.
    pub fn expose(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.0.host_str().unwrap_or("");
        write!(f, "{}://{host}/<redacted>", self.0.scheme())
    }
}

/// `page.pagerduty`: PagerDuty Events API v2.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDuty {
    /// The integration's routing key (from `routing_key_file`, or
    /// `routing_key` for `${VAR}` from the environment). Never printed.
    pub routing_key: Secret,
    /// Events endpoint. Default https://events.pagerduty.com/v2/enqueue (EU: events.eu.pagerduty.com).
    pub url: url::Url,
    /// Events per minute (PagerDuty takes about 120 per routing key). Default 60.
    pub max_per_minute: u32,
    /// Per request. Default 10s.
    pub timeout: Duration,
}

/// `page.alertmanager`: Alertmanager API v2; every URL (an HA pair) gets every alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alertmanager {
    pub urls: Vec<url::Url>,
    /// Firing alerts are re-sent this often, with `endsAt` four intervals
    /// ahead; resolved ones for a few minutes after. Default 1m.
    pub resend: Duration,
    /// Per request. Default 5s.
    pub timeout: Duration,
    /// Posts per minute to each Alertmanager. Default 30.
    pub max_per_minute: u32,
}

/// How loud a rule's incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One probed endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Unique name, used as the `target` metric label.
    pub name: String,
    /// Absolute http(s) URL.
    pub url: url::Url,
    /// Time between probe starts. Default 5s.
    pub interval: Duration,
    /// Per-probe timeout, never above `interval`. Default min(interval, 2s).
    pub timeout: Duration,
    /// Failures before the first success within this period after start are
    /// not counted (like a Kubernetes startupProbe). Default 0s.
    pub warmup: Duration,
    /// HTTP method, upper case. Default GET.
    pub method: String,
    /// Request headers (values may come from `header_files`, hence `Secret`).
    pub headers: BTreeMap<String, HeaderValue>,
    /// Which redirects a probe follows. Default none.
    pub follow_redirects: Redirects,
    /// What a good answer looks like.
    pub expect: Expect,
    /// The body is the app's metrics exposition, read by `traffic` entries.
    pub scrape: bool,
}

/// `traffic[]`: SLIs over the app's real requests, from a scrape target.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// Unique among targets and traffic entries.
    pub name: String,
    /// Index into `Config::targets` of the scrape target it reads.
    pub from: usize,
    /// Counter(s) of all requests; `match` is already applied.
    pub requests: Selector,
    /// Counter(s) of failed requests, a subset of `requests`.
    pub errors: Option<Selector>,
    /// A histogram family: its `_bucket{le}` series.
    pub latency: Option<Selector>,
}

/// `targets[].follow_redirects`: which redirects a probe follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redirects {
    /// None: a 3xx is the answer, judged by `expect.status`.
    #[default]
    None,
    /// Only to the same scheme, host and port, so configured headers never
    /// leave the origin they were written for; a hop elsewhere is not taken.
    SameOrigin,
}

impl Redirects {
    /// The names the configuration accepts, in the order docs list them.
    pub const NAMES: [&'static str; 2] = ["none", "same-origin"];

    pub fn as_str(self) -> &'static str {
        match self {
            Redirects::None => "none",
            Redirects::SameOrigin => "same-origin",
        }
    }
}

/// A header value; secret ones are read from files and never printed.
#[derive(Clone, PartialEq)]
pub enum HeaderValue {
    Plain(String),
    Secret(Secret),
}

impl HeaderValue {
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(s) => s,
            HeaderValue::Secret(s) => s.expose(),
        }
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Plain(s) => write!(f, "{s:?}"),
            HeaderValue::Secret(s) => write!(f, "{s:?}"),
        }
    }
}

/// A value read from a `*_file` path. Debug and Display print `<redacted>`.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is sent on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Expectations a response must meet to count as a success.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expect {
    /// Accepted status codes; empty means any 2xx.
    pub status: Vec<u16>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// Dotted JSON path (`data.items.0.id`, array indexes as numbers) → expected value.
    pub json: BTreeMap<String, serde_json::Value>,
    /// A slower answer counts as a failure with reason `latency`.
    pub max_latency: Option<Duration>,
}

/// A service level objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Unique name, the `slo` metric label.
    pub name: String,
    /// Objective as a fraction strictly between 0 and 1 (config says percent: 99.9 → 0.999).
    pub objective: f64,
    /// When set, a probe is good only if it succeeded within this latency.
    pub latency_threshold: Option<Duration>,
    /// Source indexes (targets, then traffic: see [`Config::source_name`]);
    /// the default (every probe target) is already applied.
    pub targets: Vec<usize>,
}

/// A rule: a condition, how long it must hold, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name, the `rule` metric label.
    pub name: String,
    pub when: Condition,
    /// How long the condition must hold before firing. Default 0s.
    pub for_: Duration,
    /// Actions when it fires, in order. May be empty (observe only).
    pub actions: Vec<Action>,
    /// Incident severity. Default critical for rules that roll back, error otherwise.
    pub severity: Severity,
}

/// What a rule watches. Target and SLO references are resolved to indexes;
/// a target index is a source index (see [`Config::source_name`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `consecutive_failures: N` of one target (`target:` required).
    ConsecutiveFailures { target: usize, count: u32 },
    /// Error ratio over `window` of one target, or of all targets together when `target` is None.
    ErrorRate {
        target: Option<usize>,
        /// Fraction 0..=1 (config says percent: "5%" → 0.05).
        above: f64,
        window: Duration,
        min_samples: u64,
    },
    /// Multi-window burn rate: fires when both windows burn faster than `factor`.
    BurnRate {
        slo: usize,
        short: Duration,
        long: Duration,
        factor: f64,
        min_samples: u64,
    },
    /// A latency percentile of one target above a threshold.
    Latency {
        target: usize,
        /// Percentile in (0, 100), e.g. 95.0.
        percentile: f64,
        above: Duration,
        window: Duration,
        min_samples: u64,
    },
    /// Container restarts of the current revision's pods (needs `rollback.kubernetes`).
    Restarts {
        above: u32,
        window: Duration,
        containers: Containers,
    },
}

/// Which containers' restarts a `restarts` rule counts: a sidecar
/// OOM-killed three times is not the app crash-looping.
#[derive(Debug, Clone, PartialEq)]
pub enum Containers {
    /// Every container but backstop's own (`rollback.kubernetes.container`).
    AllBut(String),
    /// Only these (`restarts.containers`).
    Only(Vec<String>),
}

impl Containers {
    /// Whether restarts of the container `name` count.
    pub fn counts(&self, name: &str) -> bool {
        match self {
            Containers::AllBut(own) => name != own,
            Containers::Only(names) => names.iter().any(|n| n == name),
        }
    }

    /// For messages: `every container but backstop`, `checkout, worker`.
    pub fn describe(&self) -> String {
        match self {
            Containers::AllBut(own) => format!("every container but {own}"),
            Containers::Only(names) => names.join(", "),
        }
    }
}

/// What a firing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Rollback,
    Page,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rollback => "rollback",
            Action::Page => "page",
        }
    }
}

/// Rollback settings and guards.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// Where rollbacks go; None when no rollback backend is configured.
    pub backend: Option<RollbackBackend>,
    /// Only a revision younger than this is rolled back; older → page only. Default 30m.
    pub bake: Duration,
    /// Minimum time between two rollbacks. Default 10m.
    pub cooldown: Duration,
    /// Log and count what would be done, do nothing. Default false.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RollbackBackend {
    Webhook(Webhook),
    Kubernetes(Kubernetes),
}

/// `rollback.kubernetes`: undo the pod's own Deployment like `kubectl rollout undo`.
#[derive(Debug, Clone, PartialEq)]
pub struct Kubernetes {
    /// The Deployment to roll back; None: the one that owns this pod (found
    /// through its ReplicaSet). When set, it must own this pod.
    pub deployment: Option<String>,
    /// Its namespace; None: the pod's own. When set, it must be the pod's.
    pub namespace: Option<String>,
    /// Per attempt (the reads and the write of one try): the in-cluster
    /// client itself never gives up on an API server that stops answering. Default 10s.
    pub timeout: Duration,
    /// backstop's own container in the pod (its restarts are not the app's).
    /// Default `backstop`.
    pub container: String,
    /// The API token file, mounted into the sidecar only; None: the pod's
    /// service-account token. Read at load to check it, re-read by the
    /// client as the token rotates.
    pub token_file: Option<std::path::PathBuf>,
    /// What to do when Argo CD or Flux manages the Deployment.
    pub gitops: GitOps,
    /// Where Argo CD keeps its Applications (for a tracking id or instance
    /// label that names no namespace). Default `argocd`.
    pub argocd_namespace: String,
}

/// `rollback.kubernetes.gitops`: a rollback of a Deployment that Argo CD or
/// Flux syncs from Git lasts only until their next sync, unless their
/// automatic sync is stopped first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GitOps {
    /// Stop the owner's automatic sync, then roll back; page if it cannot be stopped.
    #[default]
    Suspend,
    /// Do not roll back a Deployment that Git owns: page only.
    Page,
    /// Roll back as if nobody synced it (the owner will undo it).
    Ignore,
}

impl GitOps {
    pub fn as_str(self) -> &'static str {
        match self {
            GitOps::Suspend => "suspend",
            GitOps::Page => "page",
            GitOps::Ignore => "ignore",
        }
    }
}

/// `rollback.webhook`: a JSON POST to a deployer.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: url::Url,
    pub headers: BTreeMap<String, HeaderValue>,
    /// Per-attempt timeout. Default 5s.
    pub timeout: Duration,
}

impl Config {
    /// Sources are the probe targets, then the traffic entries: rules and
    /// SLOs refer to either by one index. This is the name of source `i`.
    ///
    /// # Panics
    /// If `i` is not below `targets.len() + traffic.len()`.
    pub fn source_name(&self, i: usize) -> &str {
        match self.traffic_index(i) {
            Some(t) => &self.traffic[t].name,
            None => &self.targets[i].name,
        }
    }

    /// Probe targets and traffic entries together.
    pub fn sources(&self) -> usize {
        self.targets.len() + self.traffic.len()
    }

    /// The index into `traffic` of source `i`, None for a probe target.
    pub fn traffic_index(&self, i: usize) -> Option<usize> {
        i.checked_sub(self.targets.len())
    }

    /// The longest window of the `restarts` rules, if there are any.
    pub fn restarts_window(&self) -> Option<Duration> {
        self.rules
            .iter()
            .filter_map(|r| match r.when {
                Condition::Restarts { window, .. } => Some(window),
                _ => None,
            })
            .max()
    }

    /// The longest span any rule or SLO queries; windows keep this much history.
    pub fn longest_window(&self) -> Duration {
        self.rules
            .iter()
            .map(|r| match &r.when {
                Condition::ErrorRate { window, .. } | Condition::Latency { window, .. } => *window,
                Condition::BurnRate { short, long, .. } => (*short).max(*long),
                Condition::ConsecutiveFailures { .. } | Condition::Restarts { .. } => {
                    Duration::ZERO
                }
            })
            .max()
            .unwrap_or_default()
            .max(crate::config::DEFAULT_STATUS_WINDOW)
    }
}
