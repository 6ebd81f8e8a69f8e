//! The fields the mutation tests change: two valid configurations that use
//! every section between them, what kind of value each field holds, and
//! values that are wrong for each kind.

use std::sync::LazyLock;

use super::tree::Node;
use crate::config::error;

/// Uses every section and rule kind but `restarts`, which needs Kubernetes,
/// and rolls back through a webhook.
const WITH_WEBHOOK: &str = r#"
service: checkout
listen: 127.0.0.1:9464
targets:
  - name: health
    url: http://127.0.0.1:8080/health
    interval: 1s
    timeout: 800ms
    warmup: 10s
    method: GET
    headers: { Authorization: "Bearer ${APP_TOKEN}", X-Team: checkout }
    follow_redirects: same-origin
    expect:
      status: [200, 204]
      body_contains: ok
      json: { status: ok, checks.0.up: true, version: 3, data.items: [1, 2.5, "x"] }
      max_latency: 700ms
  - name: analytics-executive
    url: http://127.0.0.1:8080/api/v1/analytics/executive
    interval: 10s
    method: post
    expect: { status: 200 }
slos:
  - name: availability
    objective: 99.9
    targets: [health]
  - name: analytics-latency
    objective: "95%"
    latency_threshold: 200ms
    targets: analytics-executive
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: health }
    do: [rollback, page]
    severity: critical
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4, min_samples: 20 } }
    do: [rollback, page]
  - name: error-rate
    when: { error_rate: { above: "5%", window: 10m, min_samples: 30, target: health } }
    do: page
  - name: slow-analytics
    when: { latency: { target: analytics-executive, percentile: 95, above: 200ms, window: 5m, min_samples: 40 } }
    for: 1m
    do: [page]
    severity: warning
rollback:
  webhook: { url: "http://deployer/rollback", headers: { X-Team: checkout }, timeout: 3s }
  bake: 30m
  cooldown: 10m
  dry_run: false
page:
  pagerduty: { routing_key: "${PD_ROUTING_KEY}", url: "https://events.pagerduty.com/v2/enqueue", max_per_minute: 60 }
  alertmanager:
    url: [http://alertmanager-0:9093, http://alertmanager-1:9093]
    resend_interval: 1m
    timeout: 5s
    max_per_minute: 30
annotate:
  grafana: { url: "http://grafana:3000", max_per_minute: 30 }
otlp: { endpoint: "http://otel-collector:4317" }
"#;

/// The same with a Kubernetes rollback, which the `restarts` rule needs.
fn with_kubernetes() -> String {
    WITH_WEBHOOK
        .replace(
            r#"webhook: { url: "http://deployer/rollback", headers: { X-Team: checkout }, timeout: 3s }"#,
            "kubernetes: { deployment: checkout, namespace: shop }",
        )
        .replace(
            "rollback:\n",
            "  - name: crashloop\n    \
             when: { restarts: { above: 3, window: 10m } }\n    \
             do: [rollback, page]\nrollback:\n",
        )
}

/// Both valid configurations, as trees (parsed once: YAML is slow to
/// parse in a debug build, and every case starts from them).
pub(super) fn bases() -> &'static [Node; 2] {
    static BASES: LazyLock<[Node; 2]> =
        LazyLock::new(|| [Node::parse(WITH_WEBHOOK), Node::parse(&with_kubernetes())]);
    &BASES
}

/// The variables the configurations use.
pub(super) fn env(name: &str) -> Option<String> {
    match name {
        "PD_ROUTING_KEY" => Some("R0UT1NGKEY".to_owned()),
        other => super::super::env(other),
    }
}

/// What a field holds, which decides the values that are wrong for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    /// A map of known fields.
    Section,
    /// A list of sections that may be empty (`slos`, `rules`).
    Sections,
    /// `targets`: a list of sections, at least one.
    Targets,
    Service,
    Name,
    Listen,
    Url,
    /// A URL or a list of them.
    Urls,
    Duration,
    DurationOrZero,
    /// `targets[].interval`: at least 100ms.
    Interval,
    /// `targets[].timeout`: at least 10ms.
    ProbeTimeout,
    /// `none` or `same-origin`.
    Redirects,
    Method,
    /// A map of header name → value.
    Headers,
    HeaderValue,
    /// A status code or a list of them.
    Statuses,
    Status,
    BodyText,
    /// `expect.json`: dotted path → any value.
    JsonMap,
    JsonValue,
    Objective,
    ErrorRateAbove,
    Percentile,
    Factor,
    Count,
    MinSamples,
    RestartsAbove,
    PerMinute,
    Bool,
    Severity,
    TargetRef,
    /// A target name or a list of them.
    TargetRefs,
    SloRef,
    /// An action or a list of them.
    Actions,
    Action,
    KubeName,
    Secret,
}

use Kind::*;

/// Every field of the two configurations by path pattern: `[*]` for any
/// list index, `*` for any key of a map whose keys are free.
const KINDS: &[(&str, Kind)] = &[
    ("service", Service),
    ("listen", Listen),
    ("targets", Targets),
    ("targets[*]", Section),
    ("targets[*].name", Name),
    ("targets[*].url", Url),
    ("targets[*].interval", Interval),
    ("targets[*].timeout", ProbeTimeout),
    ("targets[*].warmup", DurationOrZero),
    ("targets[*].method", Method),
    ("targets[*].headers", Headers),
    ("targets[*].headers.*", HeaderValue),
    ("targets[*].follow_redirects", Redirects),
    ("targets[*].expect", Section),
    ("targets[*].expect.status", Statuses),
    ("targets[*].expect.status[*]", Status),
    ("targets[*].expect.body_contains", BodyText),
    ("targets[*].expect.json", JsonMap),
    ("targets[*].expect.json.*", JsonValue),
    ("targets[*].expect.max_latency", Duration),
    ("slos", Sections),
    ("slos[*]", Section),
    ("slos[*].name", Name),
    ("slos[*].objective", Objective),
    ("slos[*].latency_threshold", Duration),
    ("slos[*].targets", TargetRefs),
    ("slos[*].targets[*]", TargetRef),
    ("rules", Sections),
    ("rules[*]", Section),
    ("rules[*].name", Name),
    ("rules[*].when", Section),
    ("rules[*].when.target", TargetRef),
    ("rules[*].when.consecutive_failures", Count),
    ("rules[*].when.burn_rate", Section),
    ("rules[*].when.burn_rate.slo", SloRef),
    ("rules[*].when.burn_rate.short", Duration),
    ("rules[*].when.burn_rate.long", Duration),
    ("rules[*].when.burn_rate.factor", Factor),
    ("rules[*].when.burn_rate.min_samples", MinSamples),
    ("rules[*].when.error_rate", Section),
    ("rules[*].when.error_rate.above", ErrorRateAbove),
    ("rules[*].when.error_rate.window", Duration),
    ("rules[*].when.error_rate.min_samples", MinSamples),
    ("rules[*].when.error_rate.target", TargetRef),
    ("rules[*].when.latency", Section),
    ("rules[*].when.latency.target", TargetRef),
    ("rules[*].when.latency.percentile", Percentile),
    ("rules[*].when.latency.above", Duration),
    ("rules[*].when.latency.window", Duration),
    ("rules[*].when.latency.min_samples", MinSamples),
    ("rules[*].when.restarts", Section),
    ("rules[*].when.restarts.above", RestartsAbove),
    ("rules[*].when.restarts.window", Duration),
    ("rules[*].for", DurationOrZero),
    ("rules[*].do", Actions),
    ("rules[*].do[*]", Action),
    ("rules[*].severity", Severity),
    ("rollback", Section),
    ("rollback.webhook", Section),
    ("rollback.webhook.url", Url),
    ("rollback.webhook.headers", Headers),
    ("rollback.webhook.headers.*", HeaderValue),
    ("rollback.webhook.timeout", Duration),
    ("rollback.kubernetes", Section),
    ("rollback.kubernetes.deployment", KubeName),
    ("rollback.kubernetes.namespace", KubeName),
    ("rollback.bake", Duration),
    ("rollback.cooldown", DurationOrZero),
    ("rollback.dry_run", Bool),
    ("page", Section),
    ("page.pagerduty", Section),
    ("page.pagerduty.routing_key", Secret),
    ("page.pagerduty.url", Url),
    ("page.pagerduty.max_per_minute", PerMinute),
    ("page.alertmanager", Section),
    ("page.alertmanager.url", Urls),
    ("page.alertmanager.url[*]", Url),
    ("page.alertmanager.resend_interval", Duration),
    ("page.alertmanager.timeout", Duration),
    ("page.alertmanager.max_per_minute", PerMinute),
    ("annotate", Section),
    ("annotate.grafana", Section),
    ("annotate.grafana.url", Url),
    ("annotate.grafana.max_per_minute", PerMinute),
    ("otlp", Section),
    ("otlp.endpoint", Url),
];

/// Values that no well-typed field accepts.
const ANY_SCALAR: &[&str] = &["{x: 1}", "[{x: 1}]", ".nan", "1e400", "'${UNSET_VAR}'"];
/// Values the YAML parser itself refuses, wherever they are.
const YAML_REFUSED: &[&str] = &["!!int x", "!!float x", "*nope", "!!binary \"/w==\""];

/// Whether `value` is wrong for any field alike, rather than for its kind.
pub(super) fn is_generic(value: &str) -> bool {
    ANY_SCALAR.contains(&value) || YAML_REFUSED.contains(&value)
}
const DURATION: &[&str] = &[
    "-5m",
    "1e400s",
    "999999999999h",
    "99999999999999999999h",
    "5",
    "'5'",
    "1.5",
    "fast",
    "2y",
    "366d",
    "true",
    "'5 parsecs'",
];
const NAME: &[&str] = &["''", "a b", "x/y", "ünï", "5", "true", "1.5", "'${'"];
const URL: &[&str] = &["ftp://x/y", "/health", "'http://'", "not a url", "5", "''"];
/// One character more than a service name may have.
const LONG_NAME: &str = "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss";
const WHOLE: &[&str] = &["-1", "1.5", "'x'", "true", "99999999999999999999", "1e30"];

impl Kind {
    /// Values wrong for this kind that pass the structural step and are
    /// refused by validation, which collects every problem.
    pub(super) fn invalid(self) -> Vec<&'static str> {
        let own: Vec<&str> = match self {
            Section | JsonMap => vec![],
            Sections => vec![],
            Targets => vec!["[]"],
            Service => [NAME, &[LONG_NAME]].concat(),
            Name => NAME.to_vec(),
            Listen => vec!["nope", "9464", "0.0.0.0", "'0.0.0.0:99999'", "'[::1]'"],
            Url => URL.to_vec(),
            Urls => [URL, &["[]", "[5]", "[ftp://x]", "[http://ok, /rel]"]].concat(),
            Duration => [DURATION, &["0s", "0ms"]].concat(),
            DurationOrZero => DURATION.to_vec(),
            Interval => [DURATION, &["0s", "1ns", "1ms", "99ms"]].concat(),
            ProbeTimeout => [DURATION, &["0s", "1ns", "9ms"]].concat(),
            Redirects => vec!["all", "same_origin", "''", "true", "5", "[none]"],
            Method => vec!["FETCH", "5", "''", "G E T"],
            Headers => vec!["{Bad Header: x}", "{X-Num: 5}", "{X-Line: \"a\\nb\"}"],
            HeaderValue => vec!["5", "true", "\"a\\nb\"", "\"a\\u0000b\"", "[x]"],
            Statuses => vec!["'2xx'", "600", "99", "[600]", "[200, '2xx']"],
            Status => vec!["99", "600", "-1", "1.5", "'abc'", "'2xx'", "true"],
            BodyText => vec!["''", "5", "true", "[x]"],
            // Any value is a valid expectation, but JSON has no NaN.
            JsonValue => vec![".nan", "1e400", "'${UNSET_VAR}'"],
            Objective => vec![
                "0",
                "100",
                "101",
                "'101%'",
                "-1",
                "'NaN'",
                "'abc'",
                "'1e400'",
                "'100%'",
                "99.99999999999999",
                "true",
                "[]",
            ],
            ErrorRateAbove => vec![
                "0", "-5", "101", "'101%'", "'abc'", "1e-20", "'NaN'", "true",
            ],
            Percentile => vec!["0", "100", "150", "-1", "'x'", "'100%'"],
            // Not a factor so large the rule can never fire: that depends
            // on the SLO, which another mutation may have broken.
            Factor => vec!["0", "-1", "'abc'", "'NaN'", "true", "'inf'"],
            Count => [WHOLE, &["0", "4294967296"]].concat(),
            MinSamples => [WHOLE, &["0"]].concat(),
            RestartsAbove => [WHOLE, &["4294967296"]].concat(),
            PerMinute => [WHOLE, &["0", "10001"]].concat(),
            Bool => vec!["yes", "1", "maybe", "on", "'t'"],
            Severity => vec!["fatal", "1", "''", "CRITICAL"],
            TargetRef => vec!["nope", "5", "''", "healthz"],
            TargetRefs => vec!["nope", "[nope]", "[]", "[health, health]", "5"],
            SloRef => vec!["nope", "5", "''", "availabilty"],
            Actions => vec!["nope", "[nope]", "[page, page]", "5"],
            Action => vec!["nope", "5", "rollbak", "''"],
            KubeName => vec!["Upper", "-x", "''", "5", "a_b"],
            Secret => vec!["''", "'  '", "5", "true"],
        };
        let any: &[&str] = match self {
            Section | Sections | Targets | Headers | JsonMap | JsonValue => &[],
            _ => ANY_SCALAR,
        };
        [&own[..], any].concat()
    }

    /// Values wrong for this kind that stop reading early, with a single
    /// error: YAML the parser refuses in place (a tag that does not fit,
    /// an unknown alias), or a mismatch of the file's structure (a map
    /// where a list must be).
    pub(super) fn misshapen(self) -> Vec<&'static str> {
        let structural: &[&str] = match self {
            Section => &["5", "'text'", "[1]", "true"],
            Sections | Targets => &["5", "'text'", "{x: 1}", "[5]"],
            Headers => &["5", "'text'", "[x]"],
            JsonMap => &["5", "'text'", "[x]", "true"],
            _ => &[],
        };
        [structural, YAML_REFUSED].concat()
    }

    /// Keys that do not belong in a map of this kind.
    pub(super) fn bad_keys(self, present: &[String]) -> Vec<String> {
        match self {
            Section => [
                "colour",
                "intervall",
                "Name",
                "extra-field",
                "x.y",
                "1",
                "ürl",
            ]
            .map(str::to_owned)
            .to_vec(),
            Headers => {
                let mut keys: Vec<String> = ["Bad Header", "x:y", "", "é", "a\tb"]
                    .map(str::to_owned)
                    .to_vec();
                // Names are case-insensitive; the lower-case one sorts
                // after, so it is the one reported.
                keys.extend(
                    present
                        .iter()
                        .filter(|k| k.chars().any(|c| c.is_ascii_uppercase()))
                        .map(|k| k.to_ascii_lowercase()),
                );
                keys
            }
            JsonMap => ["", ".", "a.", ".a", "a..b", "[", "items[0].id", "a]"]
                .map(str::to_owned)
                .to_vec(),
            _ => Vec::new(),
        }
    }
}

/// A place in a tree that a mutation can change.
#[derive(Clone, Debug)]
pub(super) struct Point {
    /// Child positions from the root.
    pub(super) steps: Vec<usize>,
    /// The field's path as errors name it.
    pub(super) path: String,
    pub(super) kind: Kind,
}

/// Every node of `tree` below the root, with its kind. Panics on a field
/// `KINDS` does not list, so the table cannot fall behind the bases.
pub(super) fn points(tree: &Node) -> Vec<Point> {
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), "", "", false, &mut out);
    out
}

fn walk(
    node: &Node,
    steps: &mut Vec<usize>,
    path: &str,
    pattern: &str,
    free_keys: bool,
    out: &mut Vec<Point>,
) {
    let children: Vec<(String, String)> = match node {
        Node::Raw(_) | Node::Text(_) => return,
        Node::List(items) => (0..items.len())
            .map(|i| (error::index(path, i), format!("{pattern}[*]")))
            .collect(),
        Node::Map(entries) => entries
            .iter()
            .map(|(k, _)| {
                let key = if free_keys { "*" } else { k.as_str() };
                let pattern = if pattern.is_empty() {
                    key.to_owned()
                } else {
                    format!("{pattern}.{key}")
                };
                (error::key(path, k), pattern)
            })
            .collect(),
    };
    for (i, (path, pattern)) in children.into_iter().enumerate() {
        let kind = KINDS
            .iter()
            .find(|(p, _)| *p == pattern)
            .map(|(_, k)| *k)
            .unwrap_or_else(|| panic!("no kind for {pattern}; add it to KINDS"));
        steps.push(i);
        let child = match node {
            Node::List(items) => &items[i],
            Node::Map(entries) => &entries[i].1,
            Node::Raw(_) | Node::Text(_) => unreachable!(),
        };
        out.push(Point {
            steps: steps.clone(),
            path: path.clone(),
            kind,
        });
        // An expected JSON value is any value, down to its leaves.
        if kind != JsonValue {
            let free = matches!(kind, Headers | JsonMap);
            walk(child, steps, &path, &pattern, free, out);
        }
        steps.pop();
    }
}
