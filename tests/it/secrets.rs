//! Secrets never leak. The backstop binary runs with a secret in every place
//! the configuration takes one (PagerDuty routing key, Grafana token, secret
//! and `${VAR}` headers of a target and of the rollback webhook, the Slack
//! and notification webhook URLs, a password in every URL), all logging on at `trace`, against in-test receivers some
//! of which fail. A rule fires and resolves, so every outbound call and its
//! error paths run. Then the whole log, `/metrics`, `/status`, `/`, every
//! exported span and `check-config`'s output (for a valid file and for one
//! with mistakes next to secrets) are searched for each secret, its random
//! tag and its HTTP Basic form; and the receivers are checked to have really
//! got the secrets, so the search cannot pass on an idle run.

use crate::common;
use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::fake_slack::{FakeNotify, FakeSlack};
use crate::common::faulty::Fault;
use crate::common::otlp::FakeCollector;
use crate::common::ports::{self, Closed};
use crate::common::process::{self, Process, spawn_on_free_port};
use crate::common::recorder::Recorder;
use crate::common::wait_until;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

/// Every secret the configurations below hold: its name (part of its value)
/// and, for a URL password, the URL's user name (the pair travels as HTTP
/// Basic credentials). A new kind of secret (the admin API token, ...) is
/// added here and to the configuration; every check then covers it.
const SECRETS_TO_CHECK: &[(&str, Option<&str>)] = &[
    ("routing-key", None),
    ("grafana-token", None),
    ("target-header-file", None),
    ("target-header-env", None),
    ("webhook-header-file", None),
    ("target-url", Some("probe")),
    ("down-target-url", Some("probe")),
    ("webhook-url", Some("deployer")),
    ("pagerduty-url", Some("events")),
    ("alertmanager-url", Some("am")),
    ("down-alertmanager-url", Some("am")),
    ("grafana-url", Some("grafana")),
    ("otlp-url", Some("otel")),
    ("admin-token", None),
    ("slack-url", None),
    ("notify-url", None),
    ("notify-header-file", None),
];

/// This run's secret values: `s3cr3t-<name>-<tag>`, the tag random, so any
/// piece of any secret is found by the tag alone.
struct Secrets {
    tag: String,
    /// A secret written as a YAML number (a PIN, an all-digit key).
    number: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            tag: format!("{:016x}", rand::random::<u64>()),
            number: rand::random_range(10_u64.pow(15)..10_u64.pow(18)).to_string(),
        }
    }

    fn get(&self, name: &str) -> String {
        assert!(
            SECRETS_TO_CHECK.iter().any(|(n, _)| *n == name),
            "{name} is not in SECRETS_TO_CHECK"
        );
        format!("s3cr3t-{name}-{}", self.tag)
    }

    /// What must appear nowhere: each value, its Basic credentials, the tag.
    fn needles(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("the random tag of every secret".into(), self.tag.clone()),
            ("the secret written as a number".into(), self.number.clone()),
        ];
        for (name, user) in SECRETS_TO_CHECK {
            let value = self.get(name);
            if let Some(user) = user {
                out.push((
                    format!("{name} as HTTP Basic credentials"),
                    base64(&format!("{user}:{value}")),
                ));
            }
            out.push((name.to_string(), value));
        }
        out
    }

    /// Panics naming the secret and the place if `text` holds any of them.
    fn assert_absent(&self, place: &str, text: &str) {
        for (what, needle) in self.needles() {
            if let Some(at) = text.find(&needle) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(200)
                    .map_or(0, |(i, _)| i);
                let to = (at + needle.len() + 200).min(text.len());
                let to = (to..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                panic!("{what} leaked into {place}:\n...{}...", &text[from..to]);
            }
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(&format!("{user}:{password}")))
}

/// Standard base64 with padding, as HTTP Basic authentication uses.
fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Fetch `/status` until `pred` holds on it (up to `within`).
async fn status_until(
    admin: &str,
    what: &str,
    within: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = common::get(&format!("{admin}/status")).await;
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if code == 200 && pred(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {within:?}; /status:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rule_state(status: &serde_json::Value, rule: &str) -> String {
    status["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == rule)
        .map(|r| r["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// How many of `/status`'s action records match (`rule` "*": of any rule).
fn actions(status: &serde_json::Value, rule: &str, action: &str, outcome: &str) -> usize {
    status["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| rule == "*" || a["rule"] == rule)
        .filter(|a| a["action"] == action && a["outcome"] == outcome)
        .count()
}

/// Write a secret to its own file (as a mounted Kubernetes Secret would be).
fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path.display().to_string()
}

/// The receivers a running backstop talks to.
struct Receivers {
    app: Recorder,
    webhook: Recorder,
    alertmanager: Recorder,
    grafana: Recorder,
    pagerduty: FakePagerDuty,
    slack: FakeSlack,
    notify: FakeNotify,
    collector: FakeCollector,
    /// Where nothing listens: a target and an Alertmanager.
    down: Closed,
}

/// The configuration: a secret everywhere one can be, every receiver on.
fn config(s: &Secrets, r: &Receivers, dir: &Path, admin_port: u16) -> String {
    let pd_url = format!(
        "http://events:{}@{}",
        s.get("pagerduty-url"),
        r.pagerduty.url.trim_start_matches("http://")
    );
    let down = r.down.port();
    format!(
        r#"
service: checkout
listen: 127.0.0.1:{admin_port}
targets:
  - name: health
    url: "{target}"
    interval: 100ms
    headers: {{ X-Env-Token: "${{BACKSTOP_TEST_TARGET_TOKEN}}" }}
    header_files: {{ X-Api-Key: "{target_file}" }}
  - name: unreachable
    url: "http://probe:{down_target}@127.0.0.1:{down}/health"
    interval: 200ms
rules:
  - name: health-flaky
    when: {{ consecutive_failures: 2, target: health }}
    do: [page]
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [rollback, page]
rollback:
  webhook:
    url: "{webhook}"
    header_files: {{ X-Deploy-Token: "{webhook_file}" }}
page:
  pagerduty: {{ routing_key_file: "{key_file}", url: "{pd_url}" }}
  alertmanager:
    url: ["{am}", "http://am:{down_am}@127.0.0.1:{down}/"]
    timeout: 1s
  slack: {{ webhook_url_file: "{slack_file}" }}
  webhook: {{ url: "{notify}", header_files: {{ X-Notify-Token: "{notify_file}" }} }}
annotate:
  grafana: {{ url: "{grafana}", token_file: "{token_file}" }}
otlp: {{ endpoint: "http://otel:{otlp}@127.0.0.1:{otlp_port}" }}
admin: {{ token_file: "{admin_file}" }}
"#,
        target = r.app.url("probe", &s.get("target-url"), "/health"),
        target_file = secret_file(dir, "target", &s.get("target-header-file")),
        down_target = s.get("down-target-url"),
        webhook = r
            .webhook
            .url("deployer", &s.get("webhook-url"), "/rollback"),
        webhook_file = secret_file(dir, "webhook", &s.get("webhook-header-file")),
        key_file = secret_file(dir, "routing", &s.get("routing-key")),
        am = r.alertmanager.url("am", &s.get("alertmanager-url"), "/"),
        down_am = s.get("down-alertmanager-url"),
        grafana = r.grafana.url("grafana", &s.get("grafana-url"), "/"),
        token_file = secret_file(dir, "grafana", &s.get("grafana-token")),
        otlp = s.get("otlp-url"),
        otlp_port = r.collector.port(),
        admin_file = secret_file(dir, "admin", &s.get("admin-token")),
        slack_file = secret_file(dir, "slack", &r.slack.url()),
        notify = r.notify.url(),
        notify_file = secret_file(dir, "notify", &s.get("notify-header-file")),
    )
}

/// A configuration with mistakes next to secrets: `check-config` must name
/// each mistake without showing the secret beside it.
fn mistakes(s: &Secrets, dir: &Path) -> String {
    let broken_file = dir.join("broken-header.txt");
    std::fs::write(
        &broken_file,
        format!("{}\nX-Injected: 1\n", s.get("webhook-header-file")),
    )
    .unwrap();
    format!(
        r#"
service: checkout
targets:
  - name: health
    url: "http://probe:{target}@127.0.0.1:99999/health"
    headers: {{ X-Env-Token: "${{BACKSTOP_TEST_TARGET_TOKEN}}", "Bad Name": "${{BACKSTOP_TEST_TARGET_TOKEN}}", X-Pin: {number} }}
  - name: other
    url: "htp://probe:{down_target}@127.0.0.1/health"
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [rollback, page]
rollback:
  webhook: {{ url: "http://deployer:{webhook}@/rollback", header_files: {{ X-Deploy-Token: "{broken}" }} }}
page:
  pagerduty: {{ routing_key: {number}, url: "ftp://events:{pd}@127.0.0.1/v2/enqueue" }}
  alertmanager: {{ url: ["http://am:{am}@127.0.0.1:9093/", "http://am:{down_am}@127.0.0.1:70000/"] }}
annotate:
  grafana: {{ url: "grafana:{grafana}@127.0.0.1:3000", token_file: "{token_file}", max_per_minute: 0 }}
otlp: {{ endpoint: "http://otel:{otlp}@127.0.0.1:4317:4318" }}
"#,
        target = s.get("target-url"),
        down_target = s.get("down-target-url"),
        webhook = s.get("webhook-url"),
        broken = broken_file.display(),
        number = s.number,
        pd = s.get("pagerduty-url"),
        am = s.get("alertmanager-url"),
        down_am = s.get("down-alertmanager-url"),
        grafana = s.get("grafana-url"),
        token_file = secret_file(dir, "grafana", &s.get("grafana-token")),
        otlp = s.get("otlp-url"),
    )
}

/// Run `check-config` on `yaml`; its exit code and everything it printed.
fn check_config(s: &Secrets, dir: &Path, name: &str, yaml: &str) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    let out = backstop(s).arg("check-config").arg(&path).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn backstop(s: &Secrets) -> Command {
    let mut cmd = process::backstop();
    cmd.env("BACKSTOP_TEST_TARGET_TOKEN", s.get("target-header-env"))
        // Everything, dependencies included, at the most verbose level.
        .env("RUST_LOG", "trace")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_metrics_spans_pages_and_errors() {
    backstop::init_tls();
    let s = Secrets::new();
    let r = Receivers {
        app: Recorder::start().await,
        webhook: Recorder::start().await,
        alertmanager: Recorder::start().await,
        grafana: Recorder::start().await,
        pagerduty: FakePagerDuty::start_with_key(&s.get("routing-key")).await,
        slack: FakeSlack::slack(&s.get("slack-url")).await,
        notify: FakeNotify::notify(&format!("/hooks/{}", s.get("notify-url"))).await,
        collector: FakeCollector::grpc().await,
        down: Closed::new(),
    };
    // Receivers fail at first (and one Alertmanager and one target are
    // unreachable): the error paths log what went wrong. Each rule posts
    // to Grafana on its own, three attempts a post: six failures exhaust a
    // post whichever way the two rules' attempts mix. PagerDuty has one
    // incident for both, one post at a time: three exhaust its first.
    r.webhook.fail_next(&[500]);
    r.grafana.fail_next(&[500; 6]);
    r.pagerduty.fail_next(&[500; 3]);
    r.slack.plan(&[Fault::Status(500)]);
    r.notify.plan(&[Fault::Status(503)]);

    let dir = tempfile::tempdir().unwrap();
    // check-config binds nothing: any port will do.
    let (code, valid) = check_config(
        &s,
        dir.path(),
        "valid.yaml",
        &config(&s, &r, dir.path(), ports::pick()),
    );
    assert_eq!(code, Some(0), "{valid}");
    assert!(
        valid.contains("valid (2 targets, 0 SLOs, 2 rules)"),
        "{valid}"
    );
    let (code, invalid) = check_config(&s, dir.path(), "mistakes.yaml", &mistakes(&s, dir.path()));
    assert_eq!(code, Some(2), "{invalid}");
    for path in [
        r#"targets[0] "health".url"#,
        r#"targets[0] "health".headers["Bad Name"]"#,
        r#"targets[1] "other".url"#,
        "rollback.webhook.url",
        "rollback.webhook.header_files.X-Deploy-Token",
        r#"targets[0] "health".headers.X-Pin"#,
        "page.pagerduty.routing_key",
        "page.pagerduty.url",
        "page.alertmanager.url[1]",
        "annotate.grafana.url",
        "annotate.grafana.max_per_minute",
        "otlp.endpoint",
    ] {
        assert!(invalid.contains(path), "no {path} in:\n{invalid}");
    }
    // Still a useful message: the URL is shown, its credentials are not.
    assert!(
        invalid.contains(r#""http://***@127.0.0.1:99999/health" is not an absolute URL"#),
        "{invalid}"
    );
    // A YAML syntax error inside a secret: the parser must not quote the line.
    let broken_yaml = format!(
        "service: checkout\npage:\n  pagerduty: {{ routing_key: \"{}, url: [\n",
        s.get("routing-key")
    );
    let (code, syntax) = check_config(&s, dir.path(), "syntax.yaml", &broken_yaml);
    assert_eq!(code, Some(2), "{syntax}");
    assert!(syntax.contains("invalid YAML"), "{syntax}");

    let config_path = dir.path().join("backstop.yaml");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let started = std::time::Instant::now();
    let (mut child, admin_port) =
        spawn_on_free_port(&stderr_path, "backstop started", |admin_port| {
            std::fs::write(&config_path, config(&s, &r, dir.path(), admin_port)).unwrap();
            let mut cmd = backstop(&s);
            cmd.args(["run", "--config"])
                .arg(&config_path)
                .stdout(std::fs::File::create(&stdout_path).unwrap());
            cmd
        })
        .await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let log = || {
        let mut text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&stderr_path).unwrap_or_default());
        text
    };

    wait_until("probes of the app", Duration::from_secs(10), || {
        r.app.calls().len() >= 3
    })
    .await;
    r.app.answer(500);
    status_until(
        &admin,
        "both rules firing and a rollback",
        Duration::from_secs(15),
        |st| {
            rule_state(st, "health-flaky") == "firing"
                && rule_state(st, "health-down") == "firing"
                && actions(st, "health-down", "rollback", "succeeded") == 1
                // Alertmanager's alert of each rule, and PagerDuty's one incident.
                && actions(st, "health-flaky", "page", "triggered") >= 1
                && actions(st, "health-down", "page", "triggered") >= 1
                && actions(st, "*", "page", "triggered") >= 3
        },
    )
    .await;
    r.app.answer(200);
    status_until(
        &admin,
        "both rules resolved and paged",
        Duration::from_secs(15),
        |st| {
            rule_state(st, "health-flaky") == "ok"
                && rule_state(st, "health-down") == "ok"
                // Alertmanager's alerts resolve; PagerDuty's incident
                // stays open after the rollback.
                && actions(st, "health-flaky", "page", "resolved") >= 1
                && actions(st, "health-down", "page", "resolved") >= 1
                && actions(st, "*", "page", "left_open") >= 1
        },
    )
    .await;
    wait_until("three Grafana marks taken", Duration::from_secs(10), || {
        r.grafana.ok_calls().len() >= 3
    })
    .await;

    // The admin API: a wrong token is refused (and logged without either
    // token), the right one pauses and resumes.
    let client = reqwest::Client::new();
    let post = |path: &str, token: String| {
        client
            .post(format!("{admin}{path}"))
            .bearer_auth(token)
            .body(r#"{"duration": "5m", "reason": "secrets test"}"#)
            .send()
    };
    let wrong = format!("{}-wrong", s.get("admin-token"));
    assert_eq!(post("/api/v1/pause", wrong).await.unwrap().status(), 401);
    let paused = post("/api/v1/pause", s.get("admin-token")).await.unwrap();
    assert_eq!(paused.status(), 200);
    let resumed = client
        .post(format!("{admin}/api/v1/resume"))
        .bearer_auth(s.get("admin-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);

    let (_, metrics) = common::get(&format!("{admin}/metrics")).await;
    let (_, status) = common::get(&format!("{admin}/status")).await;
    let (_, page) = common::get(&format!("{admin}/")).await;
    child.signal("TERM");
    assert_eq!(child.wait(), Some(0), "{}", log());
    let ran = started.elapsed();
    let log = log();

    // It really ran, with the secrets in use.
    let target_auth = basic("probe", &s.get("target-url"));
    let probe = r
        .app
        .calls()
        .into_iter()
        .find(|c| c.path == "/health")
        .unwrap();
    assert_eq!(probe.header("authorization"), [target_auth.as_str()]);
    assert_eq!(
        probe.header("x-api-key"),
        [s.get("target-header-file").as_str()]
    );
    assert_eq!(
        probe.header("x-env-token"),
        [s.get("target-header-env").as_str()]
    );
    let hooks = r.webhook.calls();
    assert_eq!(hooks.len(), 2, "one 500, then taken: {hooks:#?}");
    for hook in &hooks {
        assert_eq!(hook.path, "/rollback");
        assert!(
            hook.body.contains("\"rule\":\"health-down\""),
            "{}",
            hook.body
        );
        assert_eq!(
            hook.header("x-deploy-token"),
            [s.get("webhook-header-file").as_str()]
        );
        assert_eq!(
            hook.header("authorization"),
            [basic("deployer", &s.get("webhook-url")).as_str()]
        );
    }
    // One incident for the release, left open after its rollback.
    let pd = r.pagerduty.accepted();
    assert!(
        pd.iter().any(|e| e["event_action"] == "trigger")
            && pd.iter().all(|e| e["event_action"] != "resolve")
            && pd
                .iter()
                .all(|e| e["routing_key"] == s.get("routing-key").as_str()),
        "{pd:#?}"
    );
    assert!(!r.slack.taken().is_empty(), "{:#?}", r.slack.seen());
    let told = r.notify.taken();
    assert!(!told.is_empty(), "{:#?}", r.notify.seen());
    assert!(
        r.notify
            .header("x-notify-token")
            .iter()
            .all(|v| *v == s.get("notify-header-file"))
    );
    let pd_auth = basic("events", &s.get("pagerduty-url"));
    assert!(r.pagerduty.authorizations().iter().all(|a| *a == pd_auth));
    let am = r.alertmanager.calls();
    assert!(am.len() >= 2, "{am:#?}");
    for call in &am {
        assert_eq!(call.path, "/api/v2/alerts");
        assert!(call.body.contains("BackstopRuleFiring"), "{}", call.body);
        assert_eq!(
            call.header("authorization"),
            [basic("am", &s.get("alertmanager-url")).as_str()]
        );
    }
    let marks = r.grafana.calls();
    for mark in &marks {
        assert_eq!(mark.path, "/api/annotations");
        // The token wins over the URL's credentials: one Authorization header.
        let bearer = format!("Bearer {}", s.get("grafana-token"));
        assert_eq!(mark.header("authorization"), [bearer.as_str()]);
    }
    let collector = basic("otel", &s.get("otlp-url"));
    assert!(
        r.collector
            .get()
            .authorizations
            .iter()
            .all(|a| *a == collector),
        "the collector did not get the endpoint's credentials"
    );
    let span_names = r.collector.get().names();
    for name in [
        "GET health",
        "GET unreachable",
        "rule health-down firing",
        "rollback",
        "page",
    ] {
        assert!(
            span_names.iter().any(|n| n == name),
            "no {name:?} span: {span_names:?}"
        );
    }
    // The failures were logged, and dependencies did log at trace level.
    for failure in [
        "PagerDuty did not take the event",
        "Grafana did not take an annotation",
        "Alertmanager did not take the alerts",
    ] {
        assert!(log.contains(failure), "no {failure:?} in the log");
    }
    // The unreachable target's outage is one line, with its count.
    assert!(
        log.lines().any(|l| l.contains("failing since")
            && l.contains(r#""target_name":"unreachable""#)
            && l.contains(r#""failures":3"#)
            && l.contains(r#""reason":"connect""#)),
        "no line saying the unreachable target is failing"
    );
    for dependency in [
        "\"target\":\"hyper",
        "\"target\":\"reqwest",
        "\"target\":\"h2",
    ] {
        assert!(log.contains(dependency), "no trace logs of {dependency}");
    }
    assert!(
        metrics
            .contains(r#"backstop_page_deliveries_total{receiver="alertmanager",result="failed"}"#)
    );
    assert!(status.contains("webhook accepted the rollback"));
    assert!(page.contains("health-down"));

    // ...and no secret anywhere.
    s.assert_absent("the log", &log);
    s.assert_absent("/metrics", &metrics);
    s.assert_absent("/status", &status);
    s.assert_absent("the / page", &page);
    s.assert_absent("the exported spans", &r.collector.get().text);
    s.assert_absent("check-config output", &valid);
    s.assert_absent("check-config's problems", &invalid);
    s.assert_absent("check-config's YAML error", &syntax);
    // A page carries links for the person paged: credentials have no place there.
    let mut events: Vec<serde_json::Value> =
        r.pagerduty.seen().into_iter().map(|(_, e)| e).collect();
    for e in &mut events {
        e.as_object_mut().unwrap().remove("routing_key");
    }
    s.assert_absent(
        "the PagerDuty events",
        &serde_json::to_string(&events).unwrap(),
    );
    for (place, fake) in [
        ("the webhook", &r.webhook),
        ("Alertmanager", &r.alertmanager),
        ("Grafana", &r.grafana),
    ] {
        let bodies: Vec<String> = fake.calls().into_iter().map(|c| c.body).collect();
        s.assert_absent(&format!("what {place} was sent"), &bodies.join("\n"));
    }
    let bytes = log.len();
    eprintln!(
        "ran {ran:?}; searched {bytes} bytes of log and {} spans",
        span_names.len()
    );
}

/// The OTLP/HTTP exporter hands its URL to a client that logs it at trace
/// level; the endpoint's credentials must reach the collector as a header,
/// never through the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_endpoint_credentials_stay_out_of_the_log() {
    backstop::init_tls();
    let s = Secrets::new();
    let app = Recorder::start().await;
    let spans = FakeCollector::http().await;
    let port = spans.port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "service: checkout\nlisten: 127.0.0.1:0\ntargets:\n  - {{ name: health, url: \"{}\", interval: 100ms }}\n\
         otlp: {{ endpoint: \"http://otel:{}@127.0.0.1:{port}/\" }}\n",
        app.url("probe", &s.get("target-url"), "/health"),
        s.get("otlp-url"),
    );
    let config_path = dir.path().join("backstop.yaml");
    std::fs::write(&config_path, yaml).unwrap();
    let stderr_path = dir.path().join("stderr");
    let mut child = Process::spawn(
        backstop(&s)
            .args(["run", "--config"])
            .arg(&config_path)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stderr(std::fs::File::create(&stderr_path).unwrap()),
    );
    wait_until("two span exports", Duration::from_secs(10), || {
        spans.get().authorizations.len() >= 2
    })
    .await;
    child.signal("TERM");
    assert_eq!(child.wait(), Some(0));
    let log = std::fs::read_to_string(&stderr_path).unwrap();

    s.assert_absent("the log", &log);
    s.assert_absent("the exported spans", &spans.get().text);
    let collector = basic("otel", &s.get("otlp-url"));
    assert!(spans.get().authorizations.iter().all(|a| *a == collector));
    assert!(spans.get().names().iter().any(|n| n == "GET health"));
    assert!(
        log.contains("\"target\":\"hyper_util::client::legacy::pool\""),
        "no trace logs of the exporter's client"
    );
}
