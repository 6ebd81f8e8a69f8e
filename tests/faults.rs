//! The fault matrix: the whole daemon against neighbours that misbehave,
//! one case per test.
//!
//! - A: the probed app hangs, resets, answers garbage or a truncated
//!   response, answers slowly, or refuses connections. Every probe fails
//!   with the right reason, the schedule keeps its pace, the daemon keeps
//!   serving, the rule fires once (one rollback call) and resolves once.
//! - B: a receiver (rollback webhook, PagerDuty, Alertmanager, the
//!   Kubernetes API) answers 5xx, 429, hangs or is unreachable, then
//!   recovers. The rollback or incident reaches it exactly once: retries
//!   are fine as long as the receiver takes the event once (a 500 or a hung
//!   request is not taken) and every retry carries the same dedup or
//!   idempotency key. Probing stays on schedule and what waits for delivery
//!   stays within its bound.
//! - C: PagerDuty down while a rule flaps fifty times: the queue stays at
//!   its bound, and after recovery PagerDuty gets the last state once.

mod common;

use backstop::act::ActionRecord;
use backstop::demo::app::{Behaviour, SampleApp};
use backstop::probe::{Outcome, Reason};
use backstop::rules::State;
use backstop::telemetry::Event;
use common::fake_alertmanager::FakeAlertmanager;
use common::fake_deployer::FakeDeployer;
use common::fake_kube::{FakeKube, checkout_cluster};
use common::fake_pagerduty::FakePagerDuty;
use common::faulty::{Fault, FaultyApp, Mode, Panics};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep};

const RULE: &str = "health-down";
const TARGET: &str = "health";

/// The whole daemon, its event stream, and the pace its target is probed at.
struct Daemon {
    running: backstop::Running,
    events: broadcast::Receiver<Event>,
    interval: Duration,
    /// Every action outcome seen while waiting for events.
    actions: Vec<ActionRecord>,
    /// One client for the admin endpoints: building one per request costs
    /// the test's thread (and so the daemon's) milliseconds of TLS setup.
    http: reqwest::Client,
}

/// Probes counted so far, and when.
struct Mark {
    at: Instant,
    probes: f64,
}

impl Daemon {
    async fn start(yaml: &str, interval: Duration) -> Daemon {
        Self::start_with(yaml, interval, backstop::Options::new("v2")).await
    }

    async fn start_with(yaml: &str, interval: Duration, options: backstop::Options) -> Daemon {
        backstop::init_tls();
        let config = backstop::config::parse(yaml, &|_| None)
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = backstop::start(config, listener, options)
            .await
            .expect("daemon starts");
        let events = running.events();
        Daemon {
            running,
            events,
            interval,
            actions: Vec::new(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    async fn metrics(&self) -> String {
        let (code, text) = get(&self.http, &self.url("/metrics")).await;
        assert_eq!(code, 200, "/metrics");
        text
    }

    /// Wait (up to `within`) for an event matching `pred`.
    async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("no {what} within {within:?}"),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    panic!("missed {n} events while waiting for {what}")
                }
                Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
                Ok(Ok(e)) => {
                    if let Event::Action(r) = &e {
                        self.actions.push(r.clone());
                    }
                    if pred(&e) {
                        return e;
                    }
                }
            }
        }
    }

    /// Wait until the metrics say `done`.
    async fn wait_metrics(&self, what: &str, within: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.metrics().await) {
            assert!(Instant::now() < deadline, "no {what} within {within:?}");
            sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until `action` has failed `n` attempts in a retryable way.
    async fn wait_failed_attempts(&self, action: &str, n: f64) {
        let what = format!("{n} failed {action} attempts");
        self.wait_metrics(&what, Duration::from_secs(5), |text| {
            sum(
                text,
                "backstop_action_attempts_total",
                &[("action", action), ("outcome", "retryable")],
            ) >= n
        })
        .await;
    }

    async fn mark(&self) -> Mark {
        let probes = sum(
            &self.metrics().await,
            "backstop_probes_total",
            &[("target", TARGET)],
        );
        Mark {
            at: Instant::now(),
            probes,
        }
    }

    /// Since `since`, probes started once per interval (within a tolerance
    /// for the probes in flight at either end), and no probe ever started
    /// more than one interval after its tick. A stalled or drifting
    /// schedule fails both.
    async fn assert_on_schedule(&self, since: &Mark) {
        let text = self.metrics().await;
        let elapsed = since.at.elapsed();
        let probes = sum(&text, "backstop_probes_total", &[("target", TARGET)]) - since.probes;
        let expected = elapsed.as_secs_f64() / self.interval.as_secs_f64();
        let slack = (expected * 0.2).max(2.0);
        assert!(
            (probes - expected).abs() <= slack,
            "{probes} probes in {elapsed:?}, expected {expected:.1} ± {slack:.1}"
        );
        let lag = "backstop_probe_schedule_lag_seconds";
        let all = sum(&text, &format!("{lag}_count"), &[("target", TARGET)]);
        let within = |le: &str| {
            sum(
                &text,
                &format!("{lag}_bucket"),
                &[("target", TARGET), ("le", le)],
            )
        };
        let late = all - within(&self.interval.as_secs_f64().to_string());
        assert!(all > 0.0, "no schedule lag observed");
        assert_eq!(
            late, 0.0,
            "{late} of {all} probes started more than one interval late:\n{text}"
        );
    }

    /// The kubelet's and the person's endpoints still answer.
    async fn assert_serving(&self) {
        assert_eq!(
            get(&self.http, &self.url("/healthz")).await.0,
            200,
            "/healthz"
        );
        let (code, body) = get(&self.http, &self.url("/status")).await;
        assert_eq!(code, 200, "/status: {body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["targets"][0]["name"], TARGET);
    }

    /// Rule transitions into `to`, per the metrics.
    async fn transitions(&self, to: &str) -> f64 {
        sum(
            &self.metrics().await,
            "backstop_rule_transitions_total",
            &[("rule", RULE), ("to", to)],
        )
    }
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The sum of a metric's series whose labels include `want`.
fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    series(text, name)
        .into_iter()
        .filter(|(labels, _)| {
            want.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Every series of a metric in the text format, with its labels.
fn series(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split(',')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

fn probe_failed(target: &str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Probe { target: t, outcome: Outcome::Failure { .. }, .. } if t == target)
}

fn probe_succeeded(e: &Event) -> bool {
    matches!(e, Event::Probe { target, outcome: Outcome::Success { .. }, .. } if target == TARGET)
}

fn rule_went(to: State) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Transition { rule, to: t, .. } if rule == RULE && *t == to)
}

fn action(action: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Action(r) if r.action == action)
}

fn page(outcome: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Action(r) if r.action == "page" && r.outcome == outcome)
}

async fn eventually(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within {within:?}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// The largest `backstop_page_queue_length` of a receiver, sampled every
/// 20 ms from `/metrics` while it lives.
struct QueueWatch {
    max: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl QueueWatch {
    fn start(d: &Daemon, receiver: &'static str) -> QueueWatch {
        let max = Arc::new(AtomicI64::new(-1));
        let (m, url, http) = (max.clone(), d.url("/metrics"), d.http.clone());
        let task = tokio::spawn(async move {
            loop {
                let (_, text) = get(&http, &url).await;
                let length = sum(
                    &text,
                    "backstop_page_queue_length",
                    &[("receiver", receiver)],
                );
                m.fetch_max(length as i64, Ordering::SeqCst);
                sleep(Duration::from_millis(20)).await;
            }
        });
        QueueWatch { max, task }
    }

    /// The largest length seen; -1 if the gauge never appeared.
    fn max(&self) -> i64 {
        self.max.load(Ordering::SeqCst)
    }
}

impl Drop for QueueWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- A

/// How the probed app misbehaves.
enum AppFault {
    Answer(Mode),
    Refused,
}

/// The probed app misbehaves for a while, then recovers.
async fn app_misbehaves(fault: AppFault, reason: Reason, expect: &str) {
    let panics = Panics::watch();
    let app = FaultyApp::start().await;
    let deployer = FakeDeployer::start().await;
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{app}"
    interval: 100ms
    timeout: 95ms
    expect: {{ json: {{ status: ok }}{expect} }}
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [rollback]
rollback:
  webhook: {{ url: "{hook}", timeout: 500ms }}
"#,
        app = app.url("/health"),
        hook = deployer.url()
    );
    let mut d = Daemon::start(&yaml, Duration::from_millis(100)).await;
    let second = Duration::from_secs(1);
    d.wait_for("a healthy probe", 3 * second, probe_succeeded)
        .await;

    match fault {
        AppFault::Answer(mode) => app.set(mode),
        AppFault::Refused => app.refuse().await,
    }
    let fault_at = d.mark().await;
    let e = d
        .wait_for("a failed probe", 2 * second, probe_failed(TARGET))
        .await;
    let Event::Probe {
        outcome: Outcome::Failure {
            reason: got,
            detail,
        },
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(got, reason, "{detail}");
    d.wait_for("the rule firing", 2 * second, rule_went(State::Firing))
        .await;
    // The fault lasts: the daemon keeps its pace and keeps serving.
    sleep(Duration::from_millis(800)).await;
    d.assert_on_schedule(&fault_at).await;
    d.assert_serving().await;
    eventually("the rollback call", 2 * second, || {
        !deployer.calls().is_empty()
    })
    .await;

    if matches!(fault, AppFault::Refused) {
        app.accept().await;
    }
    app.set(Mode::Healthy);
    d.wait_for("the rule resolving", 2 * second, rule_went(State::Ok))
        .await;
    // A few healthy probes more: nothing fires again.
    sleep(Duration::from_millis(300)).await;

    assert_eq!(d.transitions("firing").await, 1.0, "fired once");
    assert_eq!(d.transitions("ok").await, 1.0, "resolved once");
    let text = d.metrics().await;
    let failures: BTreeMap<String, f64> = series(&text, "backstop_probes_total")
        .into_iter()
        .filter(|(l, _)| l["target"] == TARGET && l["result"] == "failure")
        .map(|(l, v)| (l["reason"].clone(), v))
        .collect();
    assert_eq!(
        failures.keys().collect::<Vec<_>>(),
        [reason.metric_label()],
        "every failed probe has reason {}: {failures:?}",
        reason.metric_label()
    );
    assert!(failures[reason.metric_label()] >= 3.0, "{failures:?}");
    let calls = deployer.calls();
    assert_eq!(calls.len(), 1, "one rollback call: {calls:#?}");
    assert_eq!(calls[0].status, 200);
    assert_eq!(
        calls[0].idempotency_key.as_deref(),
        Some("backstop/checkout/v2")
    );
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
}

#[tokio::test]
async fn a1_app_hangs() {
    app_misbehaves(AppFault::Answer(Mode::Hang), Reason::Timeout, "").await;
}

#[tokio::test]
async fn a2_app_resets_connections() {
    app_misbehaves(AppFault::Answer(Mode::Reset), Reason::Connect, "").await;
}

/// Not HTTP at all: no exchange took place, as with a reset.
#[tokio::test]
async fn a3_app_answers_garbage() {
    app_misbehaves(AppFault::Answer(Mode::NotHttp), Reason::Connect, "").await;
}

#[tokio::test]
async fn a3_app_answers_a_truncated_response() {
    app_misbehaves(AppFault::Answer(Mode::Truncated), Reason::Body, "").await;
}

#[tokio::test]
async fn a4_app_answers_after_the_timeout() {
    let slow = Mode::Slow(Duration::from_millis(200));
    app_misbehaves(AppFault::Answer(slow), Reason::Timeout, "").await;
}

/// Just within the 90 ms timeout, over `max_latency`.
#[tokio::test]
async fn a4_app_answers_just_within_the_timeout() {
    let slow = Mode::Slow(Duration::from_millis(60));
    app_misbehaves(
        AppFault::Answer(slow),
        Reason::Latency,
        ", max_latency: 30ms",
    )
    .await;
}

#[tokio::test]
async fn a5_app_refuses_connections() {
    app_misbehaves(AppFault::Refused, Reason::Connect, "").await;
}

// ---------------------------------------------------------------- B

/// How a receiver misbehaves before it recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trouble {
    ServerError,
    /// 429 with `Retry-After: 1`, then 429 without.
    Throttled,
    /// Two requests never answered.
    Hang,
    /// Nothing listens until two attempts have failed.
    Unreachable,
}

impl Trouble {
    /// What the receiver answers its first requests with.
    fn faults(self) -> Vec<Fault> {
        match self {
            Trouble::ServerError => vec![Fault::Status(500), Fault::Status(500)],
            Trouble::Throttled => vec![Fault::Throttle(Some(1)), Fault::Throttle(None)],
            Trouble::Hang => vec![Fault::Hang, Fault::Hang],
            Trouble::Unreachable => vec![],
        }
    }

    /// The statuses the receiver answered before it took the event (0: never answered).
    fn refusals(self) -> Vec<u16> {
        match self {
            Trouble::ServerError => vec![500, 500],
            Trouble::Throttled => vec![429, 429],
            Trouble::Hang => vec![0, 0],
            Trouble::Unreachable => vec![],
        }
    }
}

/// A service probed every 100 ms whose rule does `actions`; `{app}` is the
/// sample app and `extra` adds the receiver's section.
fn config(app: &SampleApp, actions: &str, extra: &str) -> String {
    format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [{actions}]
{extra}"#,
        app.url("/health")
    )
}

async fn rollback_webhook_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let deployer = FakeDeployer::start().await;
    deployer.plan(&trouble.faults());
    let extra = format!(
        "rollback:\n  webhook: {{ url: \"{}\", timeout: 300ms }}\n",
        deployer.url()
    );
    let mut d = Daemon::start(
        &config(&app, "rollback", &extra),
        Duration::from_millis(100),
    )
    .await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        deployer.down().await;
    }
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("rollback", 2.0).await;
        deployer.up().await;
    }
    let e = d
        .wait_for(
            "the rollback outcome",
            Duration::from_secs(10),
            action("rollback"),
        )
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for(
        "the rule resolving",
        Duration::from_secs(3),
        rule_went(State::Ok),
    )
    .await;

    // Taken once; every attempt (the hung ones too) carried the same key.
    let calls = deployer.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    let mut expected = trouble.refusals();
    expected.push(200);
    assert_eq!(statuses, expected, "{calls:#?}");
    for c in &calls {
        assert_eq!(c.idempotency_key.as_deref(), Some("backstop/checkout/v2"));
        assert_eq!(c.body["idempotency_key"], "backstop/checkout/v2");
    }
    // One rollback in flight, within its attempts: what backstop tried is
    // what reached the deployer (plus the refused connections).
    let text = d.metrics().await;
    let attempts = sum(
        &text,
        "backstop_action_attempts_total",
        &[("action", "rollback")],
    );
    if trouble == Trouble::Unreachable {
        assert!((3.0..=5.0).contains(&attempts), "{attempts} attempts");
    } else {
        assert_eq!(attempts, calls.len() as f64);
    }
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
}

#[tokio::test]
async fn b_webhook_answers_500() {
    rollback_webhook_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_webhook_answers_429() {
    rollback_webhook_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_webhook_hangs() {
    rollback_webhook_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_webhook_is_unreachable() {
    rollback_webhook_misbehaves(Trouble::Unreachable).await;
}

const DEDUP_KEY: &str = "backstop/local/checkout/health-down";

async fn pagerduty_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    pd.plan(&trouble.faults());
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let extra = format!(
        "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\", timeout: 300ms }}\n",
        key.path().display(),
        pd.url
    );
    let mut d = Daemon::start(&config(&app, "page", &extra), Duration::from_millis(100)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        pd.down().await;
    }
    let queue = QueueWatch::start(&d, "pagerduty");
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("page", 2.0).await;
        pd.up().await;
    }
    d.wait_for("the trigger", Duration::from_secs(10), page("triggered"))
        .await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for("the resolve", Duration::from_secs(5), page("resolved"))
        .await;

    // PagerDuty took one trigger and one resolve; what it saw before (the
    // hung requests too) was the same event under the same dedup key.
    let accepted = pd.accepted();
    let taken: Vec<(String, String)> = accepted
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (field("event_action"), field("dedup_key"))
        })
        .collect();
    let want = |a: &str| (a.to_string(), DEDUP_KEY.to_string());
    assert_eq!(taken, [want("trigger"), want("resolve")], "{accepted:#?}");
    let seen = pd.seen();
    let statuses: Vec<u16> = seen.iter().map(|(s, _)| *s).collect();
    let mut expected = trouble.refusals();
    expected.extend([202, 202]);
    assert_eq!(statuses, expected);
    for (_, body) in &seen[..trouble.refusals().len()] {
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["dedup_key"], DEDUP_KEY);
    }
    // At most a trigger and a resolve wait, and nothing once delivered.
    assert!(
        (1..=2).contains(&queue.max()),
        "queue reached {}",
        queue.max()
    );
    let text = d.metrics().await;
    assert_eq!(
        sum(
            &text,
            "backstop_page_queue_length",
            &[("receiver", "pagerduty")]
        ),
        0.0
    );
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
}

#[tokio::test]
async fn b_pagerduty_answers_500() {
    pagerduty_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_pagerduty_answers_429() {
    pagerduty_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_pagerduty_hangs() {
    pagerduty_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_pagerduty_is_unreachable() {
    pagerduty_misbehaves(Trouble::Unreachable).await;
}

async fn alertmanager_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let am = FakeAlertmanager::start().await;
    am.plan(&trouble.faults());
    // A long resend interval: every post the fake sees is a delivery, not a reminder.
    let extra = format!(
        "page:\n  alertmanager: {{ url: \"{}\", timeout: 300ms, resend_interval: 10m }}\n",
        am.url()
    );
    let mut d = Daemon::start(&config(&app, "page", &extra), Duration::from_millis(100)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        am.down().await;
    }
    let queue = QueueWatch::start(&d, "alertmanager");
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("page", 2.0).await;
        am.up().await;
    }
    d.wait_for(
        "the firing alert",
        Duration::from_secs(10),
        page("triggered"),
    )
    .await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for(
        "the resolved alert",
        Duration::from_secs(5),
        page("resolved"),
    )
    .await;

    // One alert (one label set, one start) taken firing, then resolved.
    let taken = am.taken();
    assert_eq!(taken.len(), 2, "{taken:#?}");
    let (firing, resolved) = (&taken[0], &taken[1]);
    assert!(!firing.resolved && resolved.resolved, "{taken:#?}");
    assert_eq!(firing.alert["labels"], resolved.alert["labels"]);
    assert_eq!(firing.alert["labels"]["rule"], RULE);
    assert_eq!(firing.alert["startsAt"], resolved.alert["startsAt"]);
    let posts = am.posts();
    let statuses: Vec<u16> = posts.iter().map(|(s, _)| *s).collect();
    let mut expected = trouble.refusals();
    expected.extend([200, 200]);
    assert_eq!(statuses, expected);
    for (_, body) in &posts[..trouble.refusals().len()] {
        assert_eq!(
            body[0]["labels"], firing.alert["labels"],
            "a retry is the same alert"
        );
    }
    // One alert per rule is all that is held.
    assert_eq!(queue.max(), 1);
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
}

#[tokio::test]
async fn b_alertmanager_answers_500() {
    alertmanager_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_alertmanager_answers_429() {
    alertmanager_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_alertmanager_hangs() {
    alertmanager_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_alertmanager_is_unreachable() {
    alertmanager_misbehaves(Trouble::Unreachable).await;
}

const NS: &str = "shop";
const DEPLOYMENT: &str = "/deployments/checkout";

async fn kubernetes_misbehaves(trouble: Trouble) {
    let panics = Panics::watch();
    let fake = FakeKube::start().await;
    checkout_cluster(&fake);
    let app = SampleApp::start("1.43.0").await.unwrap();
    match trouble {
        Trouble::ServerError => fake.fail_next("PATCH", DEPLOYMENT, 500, 2),
        Trouble::Throttled => fake.fail_next("PATCH", DEPLOYMENT, 429, 2),
        // Held far beyond the test: never applied, never answered.
        Trouble::Hang => fake.delay("PATCH", DEPLOYMENT, Duration::from_secs(3600), 2),
        Trouble::Unreachable => {}
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Like the in-cluster client: no read timeout of its own.
    let mut kube_config = kube::Config::new(fake.url().parse().unwrap());
    kube_config.default_namespace = NS.into();
    let mut options = backstop::Options::new("ignored-in-a-pod");
    options.kubernetes = Some(backstop::cluster::Context {
        client: kube::Client::try_from(kube_config).unwrap(),
        namespace: NS.into(),
        pod: "checkout-5f7c9d8e4b-abcde".into(),
    });
    let extra = "rollback:\n  kubernetes: { deployment: checkout, timeout: 300ms }\n";
    let yaml = config(&app, "rollback", extra);
    let mut d = Daemon::start_with(&yaml, Duration::from_millis(100), options).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    if trouble == Trouble::Unreachable {
        fake.down().await;
    }
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    if trouble == Trouble::Unreachable {
        d.wait_failed_attempts("rollback", 2.0).await;
        fake.up().await;
    }
    let e = d
        .wait_for(
            "the rollback outcome",
            Duration::from_secs(10),
            action("rollback"),
        )
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    app.set(Behaviour::Healthy);
    d.wait_for(
        "the rule resolving",
        Duration::from_secs(3),
        rule_went(State::Ok),
    )
    .await;

    // One write applied; the refused and hung ones were not.
    assert_eq!(fake.patches().len(), 1);
    let patches: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    let mut expected = trouble.refusals();
    expected.push(200);
    assert_eq!(patches, expected);
    let text = d.metrics().await;
    let attempts = sum(
        &text,
        "backstop_action_attempts_total",
        &[("action", "rollback")],
    );
    assert!(attempts <= 5.0, "{attempts} attempts");
    assert_eq!(d.transitions("firing").await, 1.0);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
    fake.assert_no_unexpected();
}

#[tokio::test]
async fn b_kubernetes_answers_500() {
    kubernetes_misbehaves(Trouble::ServerError).await;
}

#[tokio::test]
async fn b_kubernetes_answers_429() {
    kubernetes_misbehaves(Trouble::Throttled).await;
}

#[tokio::test]
async fn b_kubernetes_hangs() {
    kubernetes_misbehaves(Trouble::Hang).await;
}

#[tokio::test]
async fn b_kubernetes_is_unreachable() {
    kubernetes_misbehaves(Trouble::Unreachable).await;
}

// ---------------------------------------------------------------- C

/// PagerDuty is down while the rule fires and resolves fifty times.
#[tokio::test]
async fn c_pagerduty_down_while_a_rule_flaps() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    pd.down().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 50ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 1, target: health }}
    do: [page]
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}", timeout: 300ms, max_per_minute: 10000 }}
"#,
        app.url("/health"),
        key.path().display(),
        pd.url
    );
    let mut d = Daemon::start(&yaml, Duration::from_millis(50)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let queue = QueueWatch::start(&d, "pagerduty");
    let mark = d.mark().await;
    flap(&mut d, &app, 50).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    assert_eq!(queue.max(), 2, "a trigger and a resolve wait, no more");

    pd.up().await;
    // Undelivered events go out again within 10 s.
    eventually(
        "the last state at PagerDuty",
        Duration::from_secs(15),
        || pd.incident(DEDUP_KEY).len() == 2,
    )
    .await;
    sleep(Duration::from_millis(300)).await;
    // Whatever was in flight when PagerDuty came back may land as well
    // (a trigger into the open incident is deduplicated): one incident,
    // opened and resolved, and resolved is the last word.
    let accepted = pd.accepted();
    assert!(
        accepted.iter().all(|e| e["dedup_key"] == DEDUP_KEY),
        "{accepted:#?}"
    );
    assert!(
        accepted.len() <= 3,
        "the state, not a backlog: {accepted:#?}"
    );
    assert_eq!(
        pd.incident(DEDUP_KEY),
        ["opened", "resolved"],
        "{accepted:#?}"
    );
    assert_eq!(accepted.last().unwrap()["event_action"], "resolve");
    let text = d.metrics().await;
    assert_eq!(
        sum(
            &text,
            "backstop_page_queue_length",
            &[("receiver", "pagerduty")]
        ),
        0.0
    );
    assert_nothing_lost(&d);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
}

/// Alertmanager is down while the rule fires and resolves fifty times.
#[tokio::test]
async fn c_alertmanager_down_while_a_rule_flaps() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let am = FakeAlertmanager::start().await;
    am.down().await;
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{}"
    interval: 50ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 1, target: health }}
    do: [page]
page:
  alertmanager: {{ url: "{}", timeout: 300ms, resend_interval: 1s, max_per_minute: 10000 }}
"#,
        app.url("/health"),
        am.url()
    );
    let mut d = Daemon::start(&yaml, Duration::from_millis(50)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let queue = QueueWatch::start(&d, "alertmanager");
    let mark = d.mark().await;
    flap(&mut d, &app, 50).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    assert_eq!(queue.max(), 1, "one alert per rule, no more");

    am.up().await;
    // The current state (resolved) goes out at once, or at the next
    // interval. A post in flight when it came back may land first with the
    // state it started with; the resolved alert is the last word.
    eventually("the resolved alert", Duration::from_secs(3), || {
        am.taken().last().is_some_and(|t| t.resolved)
    })
    .await;
    sleep(Duration::from_millis(300)).await;
    let taken = am.taken();
    assert!(taken.last().unwrap().resolved, "{taken:#?}");
    assert!(taken.len() <= 3, "the state, not a backlog: {taken:#?}");
    assert!(taken.iter().all(|t| t.alert["labels"]["rule"] == RULE));
    assert_nothing_lost(&d);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.running.shutdown().await;
}

/// Make the rule fire and resolve `times` times.
async fn flap(d: &mut Daemon, app: &SampleApp, times: usize) {
    let within = Duration::from_secs(2);
    for _ in 0..times {
        app.set(Behaviour::Status(500));
        d.wait_for("the rule firing", within, rule_went(State::Firing))
            .await;
        app.set(Behaviour::Healthy);
        d.wait_for("the rule resolving", within, rule_went(State::Ok))
            .await;
    }
    assert_eq!(d.transitions("firing").await, times as f64);
}

/// No notice was dropped on its way from the actor to a receiver.
fn assert_nothing_lost(d: &Daemon) {
    let lost: Vec<&ActionRecord> = d
        .actions
        .iter()
        .filter(|r| r.action == "page" && r.detail.contains("queue is full"))
        .collect();
    assert!(
        lost.is_empty(),
        "notices lost on the way to a receiver: {lost:#?}"
    );
}

/// A receiver that never answers (with its default timeout) holds up
/// neither probing nor shutdown.
async fn shutdown_while_hanging(receiver: &str) {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = FakePagerDuty::start().await;
    let am = FakeAlertmanager::start().await;
    pd.plan(&[Fault::Hang; 3]);
    am.plan(&[Fault::Hang; 3]);
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let extra = match receiver {
        "pagerduty" => format!(
            "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\" }}\n",
            key.path().display(),
            pd.url
        ),
        _ => format!("page:\n  alertmanager: {{ url: \"{}\" }}\n", am.url()),
    };
    let mut d = Daemon::start(&config(&app, "page", &extra), Duration::from_millis(100)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    eventually("a hung request", Duration::from_secs(3), || {
        !pd.seen().is_empty() || !am.posts().is_empty()
    })
    .await;
    sleep(Duration::from_millis(500)).await;
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    let started = Instant::now();
    d.running.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
}

#[tokio::test]
async fn b_shutdown_is_bounded_while_pagerduty_hangs() {
    shutdown_while_hanging("pagerduty").await;
}

#[tokio::test]
async fn b_shutdown_is_bounded_while_alertmanager_hangs() {
    shutdown_while_hanging("alertmanager").await;
}
