//! The harness of the fault matrix (`tests/faults.rs`): the whole daemon
//! with its event stream and admin endpoints, `/metrics` read back as
//! numbers, and the checks every case shares (the probe schedule, the
//! admin endpoints, the page queue's bound).

use backstop::act::ActionRecord;
use backstop::probe::Outcome;
use backstop::rules::State;
use backstop::telemetry::Event;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep};

/// The rule and target every case's configuration names.
pub const RULE: &str = "health-down";
pub const TARGET: &str = "health";

/// The whole daemon, its event stream, and the pace its target is probed at.
pub struct Daemon {
    pub running: backstop::Running,
    events: broadcast::Receiver<Event>,
    interval: Duration,
    /// Every action outcome seen while waiting for events.
    pub actions: Vec<ActionRecord>,
    /// One client for the admin endpoints: building one per request costs
    /// the test's thread (and so the daemon's) milliseconds of TLS setup.
    pub http: reqwest::Client,
}

/// Probes counted so far, and when.
pub struct Mark {
    at: Instant,
    probes: f64,
}

impl Daemon {
    pub async fn start(yaml: &str, interval: Duration) -> Daemon {
        Self::start_with(yaml, interval, backstop::Options::new("v2")).await
    }

    pub async fn start_with(yaml: &str, interval: Duration, options: backstop::Options) -> Daemon {
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    pub async fn metrics(&self) -> String {
        let (code, text) = get(&self.http, &self.url("/metrics")).await;
        assert_eq!(code, 200, "/metrics");
        text
    }

    /// Wait (up to `within`) for an event matching `pred`.
    pub async fn wait_for(
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
    pub async fn wait_metrics(&self, what: &str, within: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.metrics().await) {
            assert!(Instant::now() < deadline, "no {what} within {within:?}");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until `action` has failed `n` attempts in a retryable way.
    pub async fn wait_failed_attempts(&self, action: &str, n: f64) {
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

    pub async fn mark(&self) -> Mark {
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
    pub async fn assert_on_schedule(&self, since: &Mark) {
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
    pub async fn assert_serving(&self) {
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
    pub async fn transitions(&self, to: &str) -> f64 {
        sum(
            &self.metrics().await,
            "backstop_rule_transitions_total",
            &[("rule", RULE), ("to", to)],
        )
    }
}

pub async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The sum of a metric's series whose labels include `want`.
pub fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
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
pub fn series(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
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

pub fn probe_failed(target: &str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Probe { target: t, outcome: Outcome::Failure { .. }, .. } if t == target)
}

pub fn probe_succeeded(e: &Event) -> bool {
    matches!(e, Event::Probe { target, outcome: Outcome::Success { .. }, .. } if target == TARGET)
}

pub fn rule_went(to: State) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Transition { rule, to: t, .. } if rule == RULE && *t == to)
}

pub fn action(action: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Action(r) if r.action == action)
}

pub fn page(outcome: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Action(r) if r.action == "page" && r.outcome == outcome)
}

pub async fn eventually(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within {within:?}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// The largest `backstop_page_queue_length` of a receiver, sampled every
/// 20 ms from `/metrics` while it lives.
pub struct QueueWatch {
    max: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl QueueWatch {
    pub fn start(d: &Daemon, receiver: &'static str) -> QueueWatch {
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
    pub fn max(&self) -> i64 {
        self.max.load(Ordering::SeqCst)
    }
}

impl Drop for QueueWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
