//! The file's sections other than `rules`, as written: the top level,
//! targets, SLOs, rollback, and the sections this build parses but cannot
//! act on yet.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{RawRule, Section, Unknown, present};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of configuration sections")]
pub(in crate::config) struct RawConfig {
    /// Service name, used in incidents, metric labels and dedup keys. Required;
    /// at most 63 characters among letters, digits, `.`, `_` and `-`.
    pub service: Option<Value>,
    /// Address and port of the admin server. Default `0.0.0.0:9464`.
    pub listen: Option<Value>,
    /// Endpoints to probe. Required, at least one.
    #[serde(default, deserialize_with = "present")]
    pub targets: Option<Vec<RawTarget>>,
    /// Service level objectives.
    #[serde(default, deserialize_with = "present")]
    pub slos: Option<Vec<RawSlo>>,
    /// Conditions and what to do when they hold.
    #[serde(default, deserialize_with = "present")]
    pub rules: Option<Vec<RawRule>>,
    /// How to roll back, and the guards around it.
    #[serde(default, deserialize_with = "present")]
    pub rollback: Option<RawRollback>,
    /// Where incidents go: PagerDuty, Alertmanager, Slack, a webhook.
    #[serde(default, deserialize_with = "present")]
    pub page: Option<RawPage>,
    /// Where annotations go: Grafana.
    #[serde(default, deserialize_with = "present")]
    pub annotate: Option<RawAnnotate>,
    /// OpenTelemetry trace export.
    #[serde(default, deserialize_with = "present")]
    pub otlp: Option<RawOtlp>,
    /// The admin API's mutating endpoints.
    #[serde(default, deserialize_with = "present")]
    pub admin: Option<RawAdmin>,
    /// Trust for outbound HTTPS.
    #[serde(default, deserialize_with = "present")]
    pub tls: Option<RawTls>,
    /// SLIs over the app's real requests, read from a `scrape: true` target.
    #[serde(default, deserialize_with = "present")]
    pub traffic: Option<Vec<RawTraffic>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawConfig,
    [
        "service", "listen", "targets", "slos", "rules", "rollback", "page", "annotate", "otlp",
        "admin", "tls", "traffic"
    ]
);

/// `traffic[]`: the app's own request counters, read from a scrape target.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of traffic settings")]
pub(in crate::config) struct RawTraffic {
    /// Unique among targets and traffic entries; stands wherever a target
    /// name can (`error_rate`/`latency` `target`, SLO `targets`). Required.
    pub name: Option<Value>,
    /// The `scrape: true` target whose body is read. Default: the only one.
    pub from: Option<Value>,
    /// PromQL selector of the counter(s) of all requests (matching series
    /// are summed), e.g. `http_requests_total{path=~"/api/.*"}`.
    pub requests: Option<Value>,
    /// Selector of the failed requests, a subset of `requests`. Needed by
    /// `error_rate` rules and availability SLOs on this entry.
    pub errors: Option<Value>,
    /// Selector of a histogram family (its `_bucket{le}` series). Needed by
    /// `latency` rules and latency SLOs on this entry.
    pub latency: Option<Value>,
    /// Instead of the three selectors: `otel-http`, `micrometer` or
    /// `http-requests-total`.
    pub preset: Option<Value>,
    /// Matchers added to every selector, e.g. `{http_route=~"/api/.*"}`.
    #[serde(rename = "match")]
    pub match_: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawTraffic,
    [
        "name", "from", "requests", "errors", "latency", "preset", "match"
    ]
);

/// `targets[]`: one probed endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of target settings")]
pub(in crate::config) struct RawTarget {
    /// Unique name (letters, digits, `.`, `_`, `-`), the `target` metric label. Required.
    pub name: Option<Value>,
    /// Absolute http or https URL. Required.
    pub url: Option<Value>,
    /// Time between probe starts, at least `100ms`. Default `5s`.
    pub interval: Option<Value>,
    /// Per-probe timeout, at least `10ms` and at most `interval`. Default
    /// the smaller of `interval` and `2s`.
    pub timeout: Option<Value>,
    /// Failures before the first success within this period after start are
    /// not counted (like a Kubernetes startupProbe). Default `0s`.
    pub warmup: Option<Value>,
    /// HTTP method: GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, any case. Default GET.
    pub method: Option<Value>,
    /// Request headers, name → value. Values may use `${VAR}`.
    #[serde(default, deserialize_with = "present")]
    pub headers: Option<BTreeMap<String, Value>>,
    /// Secret request headers, name → file whose trimmed contents are the
    /// value (never logged). A name may not also appear in `headers`.
    #[serde(default, deserialize_with = "present")]
    pub header_files: Option<BTreeMap<String, Value>>,
    /// Which redirects a probe follows: `none` (default: a 3xx is the
    /// answer, judged by `expect.status`, so it fails the default any-2xx)
    /// or `same-origin` (up to 10 hops, each to the same scheme, host and
    /// port as `url`; a hop elsewhere is not taken, so `headers` and
    /// `header_files` never reach another host, and the 3xx is the answer).
    pub follow_redirects: Option<Value>,
    /// What a good answer looks like. Default: any 2xx status.
    #[serde(default, deserialize_with = "present")]
    pub expect: Option<RawExpect>,
    /// The body is the app's metrics (Prometheus text 0.0.4 or OpenMetrics
    /// 1.0, asked for by `Accept` as Prometheus does and read by
    /// `Content-Type`) for `traffic` entries to read, up to 10 MiB. A scrape
    /// that fails, is longer, or does not parse is a failed probe (reasons
    /// `truncated`, `unparsable`). `expect.status` and `expect.max_latency`
    /// apply; body expectations do not. Default false.
    pub scrape: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawTarget,
    [
        "name",
        "url",
        "interval",
        "timeout",
        "warmup",
        "method",
        "headers",
        "header_files",
        "follow_redirects",
        "expect",
        "scrape"
    ]
);

/// `targets[].expect`: every given check must pass for a probe to succeed.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of expectations")]
pub(in crate::config) struct RawExpect {
    /// Accepted status codes (100-599): a list, or one code. Default any 2xx.
    pub status: Option<Value>,
    /// Text the body must contain, within its first 1 MiB (bodies are read
    /// up to that; a longer body without the text fails with reason
    /// `truncated`).
    pub body_contains: Option<Value>,
    /// Dotted JSON path (`data.items.0.id`) → expected value. The body must
    /// be a JSON document of at most 1 MiB; a longer one is not parsed and
    /// fails with reason `truncated`.
    #[serde(default, deserialize_with = "present")]
    pub json: Option<BTreeMap<String, Value>>,
    /// A slower answer counts as a failure.
    pub max_latency: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawExpect,
    ["status", "body_contains", "json", "max_latency"]
);

/// `slos[]`: a service level objective.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of SLO settings")]
pub(in crate::config) struct RawSlo {
    /// Unique name (letters, digits, `.`, `_`, `-`), the `slo` metric label. Required.
    pub name: Option<Value>,
    /// Percent of probes that must be good, strictly between 0 and 100
    /// (`99.9` or `"99.9%"`). Required.
    pub objective: Option<Value>,
    /// When set, a probe is good only if it succeeded within this latency.
    pub latency_threshold: Option<Value>,
    /// Names of the targets or traffic entries it covers. Default all
    /// probe targets (never traffic: a request and a probe are different units).
    pub targets: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawSlo,
    ["name", "objective", "latency_threshold", "targets"]
);

/// `rollback`: where rollbacks go and the guards around them.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of rollback settings")]
pub(in crate::config) struct RawRollback {
    /// Roll back the pod's Deployment like `kubectl rollout undo`.
    #[serde(default, deserialize_with = "present")]
    pub kubernetes: Option<RawKubernetes>,
    /// Ask a deployer to roll back with a JSON POST.
    #[serde(default, deserialize_with = "present")]
    pub webhook: Option<RawWebhook>,
    /// Only a revision younger than this is rolled back; older → page only. Default `30m`.
    pub bake: Option<Value>,
    /// Minimum time between two rollbacks. Default `10m`; may be `0s`.
    pub cooldown: Option<Value>,
    /// Log and count what would be done, do nothing. Default false.
    pub dry_run: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawRollback,
    ["kubernetes", "webhook", "bake", "cooldown", "dry_run"]
);

/// `rollback.kubernetes`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of Kubernetes rollback settings")]
pub(in crate::config) struct RawKubernetes {
    /// Deployment to roll back. Required.
    pub deployment: Option<Value>,
    /// Its namespace. Default the pod's own.
    pub namespace: Option<Value>,
    /// Per-attempt timeout (the reads and the write of one try). Default `10s`.
    pub timeout: Option<Value>,
    /// The name of backstop's own container in the pod, whose restarts a
    /// `restarts` rule leaves out (they are not the app's). Default `backstop`.
    pub container: Option<Value>,
    /// The API token to roll back with, mounted into the sidecar only (from
    /// a dedicated ServiceAccount's token Secret); re-read as it rotates.
    /// Default: the pod's own service-account token.
    pub token_file: Option<Value>,
    /// What to do when Argo CD or Flux manages the Deployment: `suspend`
    /// (default: stop its automatic sync, then roll back), `page` (page
    /// only), `ignore` (roll back anyway).
    pub gitops: Option<Value>,
    /// Where Argo CD keeps its Applications, for an owner named without a
    /// namespace. Default `argocd`.
    pub argocd_namespace: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawKubernetes,
    [
        "deployment",
        "namespace",
        "timeout",
        "container",
        "token_file",
        "gitops",
        "argocd_namespace"
    ]
);

/// `rollback.webhook`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of webhook settings")]
pub(in crate::config) struct RawWebhook {
    /// http or https URL that receives the rollback request. Required.
    pub url: Option<Value>,
    /// Request headers, name → value.
    #[serde(default, deserialize_with = "present")]
    pub headers: Option<BTreeMap<String, Value>>,
    /// Secret request headers, name → file holding the value.
    #[serde(default, deserialize_with = "present")]
    pub header_files: Option<BTreeMap<String, Value>>,
    /// Per-attempt timeout. Default `5s`.
    pub timeout: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawWebhook, ["url", "headers", "header_files", "timeout"]);

/// `page`: incident receivers.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of page receivers")]
pub(in crate::config) struct RawPage {
    /// PagerDuty Events v2.
    #[serde(default, deserialize_with = "present")]
    pub pagerduty: Option<RawPagerDuty>,
    /// Alertmanager v2.
    #[serde(default, deserialize_with = "present")]
    pub alertmanager: Option<RawAlertmanager>,
    /// A Slack incoming webhook.
    #[serde(default, deserialize_with = "present")]
    pub slack: Option<RawSlack>,
    /// Any HTTP endpoint that takes backstop's notification JSON.
    #[serde(default, deserialize_with = "present")]
    pub webhook: Option<RawNotifyWebhook>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawPage, ["pagerduty", "alertmanager", "slack", "webhook"]);

/// `page.slack`: a message in a channel for every incident change.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of Slack settings")]
pub(in crate::config) struct RawSlack {
    /// File holding the incoming webhook's URL (a mounted Secret: the URL
    /// is the credential, so it is never logged or shown).
    pub webhook_url_file: Option<Value>,
    /// The URL itself, for `"${SLACK_WEBHOOK_URL}"` from the environment;
    /// give this or `webhook_url_file`.
    pub webhook_url: Option<Value>,
    /// Most posts per minute; more wait (counted as held). Default 20
    /// (Slack takes about one message a second per webhook).
    pub max_per_minute: Option<Value>,
    /// Per-request timeout. Default `5s`.
    pub timeout: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawSlack,
    [
        "webhook_url_file",
        "webhook_url",
        "max_per_minute",
        "timeout"
    ]
);

/// `page.webhook`: a JSON POST for every incident change, with the same
/// fields as the rollback webhook's body and the incident's.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of notification webhook settings")]
pub(in crate::config) struct RawNotifyWebhook {
    /// http or https URL (never logged or shown: it may hold a token).
    pub url: Option<Value>,
    /// File holding the URL instead (a mounted Secret); give this or `url`.
    pub url_file: Option<Value>,
    /// Request headers, name → value.
    #[serde(default, deserialize_with = "present")]
    pub headers: Option<BTreeMap<String, Value>>,
    /// Secret request headers, name → file holding the value.
    #[serde(default, deserialize_with = "present")]
    pub header_files: Option<BTreeMap<String, Value>>,
    /// Most posts per minute; more wait (counted as held). Default 30.
    pub max_per_minute: Option<Value>,
    /// Per-request timeout. Default `5s`.
    pub timeout: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawNotifyWebhook,
    [
        "url",
        "url_file",
        "headers",
        "header_files",
        "max_per_minute",
        "timeout"
    ]
);

/// `page.pagerduty`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of PagerDuty settings")]
pub(in crate::config) struct RawPagerDuty {
    /// File holding the Events v2 routing key (a mounted Secret).
    pub routing_key_file: Option<Value>,
    /// The routing key itself, for `"${PAGERDUTY_ROUTING_KEY}"` from the
    /// environment; give this or `routing_key_file`.
    pub routing_key: Option<Value>,
    /// Events API URL. Default `https://events.pagerduty.com/v2/enqueue`.
    pub url: Option<Value>,
    /// Most posts per minute to this receiver; more wait (counted as held). Default 60.
    pub max_per_minute: Option<Value>,
    /// Per-request timeout. Default `10s`.
    pub timeout: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawPagerDuty,
    [
        "routing_key_file",
        "routing_key",
        "url",
        "max_per_minute",
        "timeout"
    ]
);

/// `page.alertmanager`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of Alertmanager settings")]
pub(in crate::config) struct RawAlertmanager {
    /// Alertmanager base URL, or a list of them (an HA pair): every one
    /// receives every alert. Required.
    pub url: Option<Value>,
    /// How often firing alerts are re-sent (`endsAt` is four intervals
    /// ahead). Default `1m`.
    pub resend_interval: Option<Value>,
    /// Per-request timeout. Default `5s`.
    pub timeout: Option<Value>,
    /// Most posts per minute to this receiver; more wait (counted as held). Default 30.
    pub max_per_minute: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawAlertmanager,
    ["url", "resend_interval", "timeout", "max_per_minute"]
);

/// `annotate`: where rollbacks and incidents are marked.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of annotation targets")]
pub(in crate::config) struct RawAnnotate {
    /// Grafana annotations API.
    #[serde(default, deserialize_with = "present")]
    pub grafana: Option<RawGrafana>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawAnnotate, ["grafana"]);

/// `annotate.grafana`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of Grafana settings")]
pub(in crate::config) struct RawGrafana {
    /// Grafana base URL.
    pub url: Option<Value>,
    /// File holding the service account token (sent as a bearer token).
    pub token_file: Option<Value>,
    /// Most posts per minute to this receiver; more wait (counted as held). Default 30.
    pub max_per_minute: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawGrafana, ["url", "token_file", "max_per_minute"]);

/// `otlp`: OpenTelemetry trace export.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of OTLP settings")]
pub(in crate::config) struct RawOtlp {
    /// Collector endpoint (gRPC, or HTTP/protobuf when
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`). Default: from
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawOtlp, ["endpoint"]);

/// `admin`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of admin API settings")]
pub(in crate::config) struct RawAdmin {
    /// File holding the bearer token that `POST /api/v1/...` requires.
    /// Without it those endpoints are off.
    pub token_file: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawAdmin, ["token_file"]);

/// `tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of TLS settings")]
pub(in crate::config) struct RawTls {
    /// PEM file of CA certificates to trust for outbound HTTPS.
    pub ca_file: Option<Value>,
    /// Also trust the system's roots. Default true.
    pub system_roots: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawTls, ["ca_file", "system_roots"]);
